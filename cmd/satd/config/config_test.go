package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBrokenFileReportsEveryProblem(t *testing.T) {
	_, err := Load("testdata/broken.toml")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load: %v, want Problems", err)
	}
	want := []struct {
		line int
		key  string
	}{
		{3, "global.memory_limit"},
		{4, "global.shutdown_timout"},
		{7, "log.level"},
		{8, "log.levels.tuner"},
		{11, "web.listen"},
		{14, "reader[0].label"},
		{18, "reader[0].pins.off"},
		{25, "reader[1].protocol"},
		{26, "reader[1].colour"},
	}
	got := map[string]int{}
	for _, p := range ps {
		got[p.Key] = p.Line
		if p.Msg == "" || p.File != "testdata/broken.toml" {
			t.Errorf("problem %+v lacks message or file", p)
		}
	}
	for _, w := range want {
		line, ok := got[w.key]
		if !ok {
			t.Errorf("no problem reported for %s (got %v)", w.key, ps)
			continue
		}
		if line != w.line {
			t.Errorf("%s reported at line %d, want %d", w.key, line, w.line)
		}
	}
	if len(ps) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ps), len(want), ps)
	}
}

func TestValidFileAndDefaults(t *testing.T) {
	cfg, err := Load("testdata/valid.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.MemoryLimit != 96<<20 {
		t.Errorf("memory_limit = %d", cfg.Global.MemoryLimit)
	}
	if cfg.Global.ShutdownTimeout.Std() != 10*time.Second {
		t.Errorf("shutdown_timeout default not kept: %v", cfg.Global.ShutdownTimeout.Std())
	}
	if !cfg.Readers[0].Enable || cfg.Readers[1].Enable {
		t.Errorf("reader enable: default true not applied, or explicit false lost: %+v", cfg.Readers)
	}
	if cfg.Web.Listen != "127.0.0.1:8080" {
		t.Errorf("web.listen = %q", cfg.Web.Listen)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("x.toml", []byte("[global]\nmemory_limit = \n"))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 2 {
		t.Fatalf("got %v, want one problem on line 2", err)
	}
}

func TestDuplicateLabel(t *testing.T) {
	doc := "[[reader]]\nlabel='a'\nprotocol='sim'\n[[reader]]\nlabel='a'\nprotocol='sim'\n"
	_, err := Parse("x.toml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "x.toml:5: reader[1].label") {
		t.Fatalf("got %v, want duplicate label at line 5", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	cfg, err := Load("testdata/valid.toml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cfg.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("encoded", buf.Bytes())
	if err != nil {
		t.Fatalf("re-parse encoded config: %v\n%s", err, buf.String())
	}
	var buf2 bytes.Buffer
	back.Encode(&buf2)
	if buf.String() != buf2.String() {
		t.Fatalf("round trip differs:\n%s\n---\n%s", buf.String(), buf2.String())
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "satd.toml")
	cfg := Default()
	cfg.Log.Level = "loud"
	if err := Save(path, cfg); err == nil {
		t.Fatal("Save accepted an invalid configuration")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Save of an invalid configuration wrote a file")
	}
}

// TestReadmeReferenceCurrent fails when the README's configuration reference
// drifts from the code. Regenerate it with `make docs`.
func TestReadmeReferenceCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	const begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
	_, rest, ok := strings.Cut(string(readme), begin)
	section, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatal("README.md lacks the config-reference markers")
	}
	var want bytes.Buffer
	Reference(&want)
	if section != want.String() {
		t.Fatal("README.md configuration reference is out of date: run `make docs`")
	}
}
