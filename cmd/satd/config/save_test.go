package config

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"satd.dev/satd/internal/atomicfile"
)

// saveVersion builds one of two large, distinct, valid configurations, so a
// save takes long enough for a kill to land in the middle of it.
func saveVersion(n int) *Config {
	cfg := Default()
	for i := 0; i < 100; i++ {
		r := DefaultReader()
		r.Label = fmt.Sprintf("v%d-reader%03d", n, i)
		r.Protocol = "sim"
		cfg.Readers = append(cfg.Readers, r)
	}
	return cfg
}

func encoded(t testing.TB, c *Config) []byte {
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSaveChild is the child process of TestSaveSurvivesSIGKILL: it saves the
// two versions in turn until it is killed.
func TestSaveChild(t *testing.T) {
	path := os.Getenv("SATD_SAVE_CHILD")
	if path == "" {
		t.Skip("child process of TestSaveSurvivesSIGKILL")
	}
	versions := []*Config{saveVersion(0), saveVersion(1)}
	os.WriteFile(path+".ready", nil, 0o600)
	for i := 0; ; i++ {
		if err := Save(path, versions[i%2]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSaveSurvivesSIGKILL kills a process that is saving the configuration at
// random points, many times, and checks that the file on disk is always the
// complete old or the complete new version.
func TestSaveSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "satd.toml")
	want := [][]byte{encoded(t, saveVersion(0)), encoded(t, saveVersion(1))}
	if err := Save(path, saveVersion(0)); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < rounds && time.Now().Before(deadline); i++ {
		killDuringSave(t, exe, path)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if !bytes.Equal(got, want[0]) && !bytes.Equal(got, want[1]) {
			t.Fatalf("round %d: file is neither version (%d bytes)", i, len(got))
		}
		if _, err := Parse(path, got); err != nil {
			t.Fatalf("round %d: saved file does not load: %v", i, err)
		}
	}
	// Row 20 of issue 16: the kills leave temporary files; satd removes
	// them at its next start (atomicfile.CleanTemps, called by the daemon).
	n, err := atomicfile.CleanTemps(path)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	t.Logf("%d temporary files left by the kills, removed; %d remain", n, len(left))
	if len(left) != 0 {
		t.Errorf("temporary files remain after CleanTemps: %v", left)
	}
}

func killDuringSave(t *testing.T, exe, path string) {
	t.Helper()
	os.Remove(path + ".ready")
	cmd := exec.Command(exe, "-test.run=^TestSaveChild$")
	cmd.Env = append(os.Environ(), "SATD_SAVE_CHILD="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A hang guard, not a bound: the child normally signals ready within
	// milliseconds; if it never does, the kill below still tests a save.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path + ".ready"); err == nil {
			break
		}
	}
	time.Sleep(time.Duration(rand.IntN(30_000)) * time.Microsecond)
	cmd.Process.Kill()
	cmd.Wait()
}
