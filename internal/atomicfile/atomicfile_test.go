package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "satd.toml")
	for _, content := range []string{"old\n", "new content\n"} {
		if err := WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "satd.toml")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 1000))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapping boom", err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "old" {
		t.Fatalf("file = %q, want old content", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %v", entries)
	}
}

// TestCleanTemps (issue 16 row 20): the temporary files of writes killed
// before their rename are removed at start, and nothing else is.
func TestCleanTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "satd.toml")
	for _, n := range []string{".satd.toml.tmp-1", ".satd.toml.tmp-22", ".web-password.tmp-3", "satd.toml", ".satd.toml.bak", "other"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	if n, err := CleanTemps(path); n != 2 || err != nil {
		t.Fatalf("CleanTemps: %d %v, want 2", n, err)
	}
	if n, err := CleanDirTemps(dir); n != 1 || err != nil {
		t.Fatalf("CleanDirTemps: %d %v, want 1", n, err)
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 3 {
		t.Errorf("left %d files, want satd.toml, .satd.toml.bak, other", len(es))
	}
}
