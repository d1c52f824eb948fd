package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
)

// maxARMv7Size is the size budget of the stripped linux/arm GOARM=7 binary:
// 10 MB, counted strictly in decimal megabytes.
const maxARMv7Size = 10_000_000

// releaseTags are the build tags of release builds (Makefile TAGS, Buildroot
// SATD_TAGS): no HTTP/2, and no demo, simulated cards or `satd lbsim`.
const releaseTags = "nethttpomithttp2 " + config.NoDemoTag

// crossTargets are the release targets of `make cross`.
var crossTargets = []struct{ name, arch, variable string }{
	{"armv7", "arm", "GOARM=7"},
	{"armv5", "arm", "GOARM=5"},
	{"arm64", "arm64", ""},
	{"mipsle", "mipsle", "GOMIPS=softfloat"},
}

func skipUnlessHostBuild(t *testing.T) {
	t.Helper()
	if os.Getenv("SATD_CROSS_TEST") != "" {
		t.Skip("build guards run on the host, not under qemu")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
}

// TestCrossBinariesStaticAndSmall builds every release target as `make
// cross` does, checks that each is a static ELF executable (no program
// interpreter, no dynamic section) and that ARMv7 stays within its budget.
func TestCrossBinariesStaticAndSmall(t *testing.T) {
	skipUnlessHostBuild(t)
	if testing.Short() {
		t.Skip("cross builds take a while")
	}
	dir := t.TempDir()
	for _, tg := range crossTargets {
		out := filepath.Join(dir, "satd-"+tg.name)
		args := append([]string{"build", "-trimpath", "-buildvcs=false", "-tags", releaseTags, "-ldflags", "-s -w"}, noInlineFlags(t)...)
		cmd := exec.Command("go", append(args, "-o", out, ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.arch)
		if tg.variable != "" {
			cmd.Env = append(cmd.Env, tg.variable)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", tg.name, err, b)
		}
		checkStaticELF(t, out)
		fi, _ := os.Stat(out)
		t.Logf("%s: %d bytes (%.2f MB)", tg.name, fi.Size(), float64(fi.Size())/(1<<20))
		if tg.name == "armv7" && fi.Size() > maxARMv7Size {
			t.Errorf("stripped ARMv7 binary is %d bytes, over the %d-byte budget", fi.Size(), maxARMv7Size)
		}
	}
}

// noInlineFlags returns the -gcflags of release builds for the cold packages
// listed in noinline.txt, as the Makefile and Buildroot's satd.mk pass them.
func noInlineFlags(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("noinline.txt")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			flags = append(flags, "-gcflags="+line+"=-l")
		}
	}
	if len(flags) == 0 {
		t.Fatal("noinline.txt lists no package")
	}
	return flags
}

func checkStaticELF(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF type %v, want ET_EXEC", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has %v: not a static executable", path, p.Type)
		}
	}
	if f.Section(".dynamic") != nil {
		t.Errorf("%s: has a .dynamic section", path)
	}
}

// TestDependenciesListed fails when satd's import graph reaches a module that
// the README's dependency table does not list, or pulls in net/http/pprof,
// text/template, html/template or regexp.
func TestDependenciesListed(t *testing.T) {
	skipUnlessHostBuild(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		listed[m[1]] = true
	}
	for _, goos := range []string{"linux"} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			pkg, mod, _ := strings.Cut(line, " ")
			if pkg == "net/http/pprof" {
				t.Errorf("net/http/pprof is linked into satd outside a debug build")
			}
			if pkg == "text/template" || pkg == "html/template" {
				t.Errorf("%s is in satd's import graph: its executor calls reflect.Value.MethodByName, which makes the linker keep every exported method of every reachable type (+1.6 MB on ARMv7, see docs/web.md); render HTML with the web package's writer instead", pkg)
			}
			if pkg == "regexp" {
				t.Errorf("regexp is in satd's import graph (about 0.1 MB of the ARMv7 budget with its syntax package): match with the strings package instead")
			}
			if mod != "" && mod != "satd.dev/satd" && !listed[mod] {
				t.Errorf("package %s comes from module %s, which README.md's dependency table does not list", pkg, mod)
			}
		}
	}
}
