package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
)

// leftOutOfRelease are symbol prefixes of what only the demo, simulated
// cards and `satd lbsim` need: a release build (releaseTags) must not link
// them. (dvbapi/zap, which `satd zap` keeps, still imports the simulator's
// personality package for its pure ExpectedCW function; the linker keeps
// that function alone.)
var leftOutOfRelease = []string{
	"satd.dev/satd/balancer/lbsim.",
	"satd.dev/satd/cardreader/cardsim.",
	"satd.dev/satd/hal/haltest.",
	"main.buildDemo",
	"main.simCardFor",
	"main.demoMP3",
	"main.demoConfig",
}

// TestReleaseBuildLeavesOutDemo builds satd with the release tags once and
// checks that it links nothing of leftOutOfRelease and refuses, with
// config.ErrNotInBuild's message and exit status 2, everything that needs
// them: -demo, a sim reader (with and without -check) and `satd lbsim`. A
// configuration without them still passes -check.
func TestReleaseBuildLeavesOutDemo(t *testing.T) {
	skipUnlessHostBuild(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "satd")
	build := exec.Command("go", "build", "-tags", releaseTags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	checkLeftOut(t, bin)
	simCfg := filepath.Join(dir, "sim.toml")
	base := "[global]\nstate_dir = \"" + dir + "\"\n[web]\nenabled = false\n[dvbapi]\nenabled = false\n[stream]\nenabled = false\n"
	if err := os.WriteFile(simCfg, []byte(base+"[[reader]]\nlabel = \"conax1\"\nprotocol = \"sim\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notInBuild := config.ErrNotInBuild.Error()
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"demo", []string{"-demo"}, 2, []string{"satd -demo: " + notInBuild}},
		{"demo check", []string{"-demo", "-check"}, 2, []string{"satd -demo: " + notInBuild}},
		{"sim check", []string{"-config", simCfg, "-check"}, 2, []string{`sim.toml:`, `reader[0].protocol: "sim": ` + notInBuild}},
		{"sim run", []string{"-config", simCfg}, 2, []string{`reader[0].protocol: "sim": ` + notInBuild}},
		{"lbsim", []string{"lbsim", "-config", simCfg, "-trace", simCfg}, 2, []string{"satd lbsim: " + notInBuild}},
		{"valid check", []string{"-config", "config/testdata/valid.toml", "-check"}, 0, []string{"configuration is valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			b, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("satd %v: exit %d, want %d\n%s", tt.args, code, tt.code, b)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("satd %v: output lacks %q:\n%s", tt.args, w, b)
				}
			}
			if strings.Contains(string(b), "panic") {
				t.Errorf("satd %v panicked:\n%s", tt.args, b)
			}
		})
	}
}

// checkLeftOut fails for every symbol of bin under a leftOutOfRelease prefix.
func checkLeftOut(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	for _, s := range syms {
		for _, p := range leftOutOfRelease {
			if strings.HasPrefix(s.Name, p) {
				t.Errorf("release build links %s", s.Name)
			}
		}
	}
}
