package lbsim

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/lbsim/*/expected.jsonl")

// TestGolden replays every scenario directory of testdata/lbsim: a
// config.toml, a trace.jsonl, an optional stats file, and expected.jsonl
// (with -explain). The expected files were checked by hand against the
// spec's scenarios S1–S14; scenario_test.go asserts the key facts too.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/lbsim/s*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := runDir(t, dir)
			want := filepath.Join(dir, "expected.jsonl")
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", want, got, exp)
			}
		})
	}
}

func runDir(t *testing.T, dir string) []byte {
	t.Helper()
	f := Files{Config: filepath.Join(dir, "config.toml"), Trace: filepath.Join(dir, "trace.jsonl"), Explain: true, Epoch: DefaultEpoch}
	if st := filepath.Join(dir, "stats"); fileExists(st) {
		f.Stats = st
	}
	var out bytes.Buffer
	if err := RunFiles(f, &out, nil); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
