package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangGuard bounds the tests' waits for a log line, an answer or a state:
// it only says a test hung, never how fast satd is (each step takes
// milliseconds to seconds; a loaded machine may take much longer).
const hangGuard = 2 * time.Minute

func TestDispatch(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-version"}, 0, "satd dev"},
		{[]string{"-config", "config/testdata/valid.toml", "-check"}, 0, "configuration is valid"},
		{[]string{"-config", "config/testdata/broken.toml", "-check"}, 2, "broken.toml:26: reader[1].colour: unknown key"},
		{[]string{"-config", "config/testdata/listen-clash.toml", "-check"}, 2, "listen-clash.toml:6: dvbapi.listen: 127.0.0.1:8080 is already taken by web.listen"},
		{[]string{"-config", "does/not/exist.toml", "-check"}, 2, "no such file"},
		{[]string{"-demo", "-check"}, 0, "embedded demo configuration: configuration is valid"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help"}, 0, "config-reference"},
		{[]string{"-nosuchflag"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		code := dispatch(tt.args, &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.out) {
			t.Errorf("satd %v: exit %d, output %q; want exit %d containing %q", tt.args, code, out.String(), tt.code, tt.out)
		}
	}
}

// TestDaemonLifecycle runs the real binary: it starts, reloads on SIGHUP
// (rejecting an invalid file and keeping the old configuration), and stops
// cleanly on SIGTERM.
func TestDaemonLifecycle(t *testing.T) {
	skipUnlessHostBuild(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "satd")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	cfgPath := filepath.Join(dir, "satd.toml")
	// Network parts are off: other tests may hold their default ports.
	valid := "[global]\nstate_dir = \"" + dir + "\"\n[web]\nenabled = false\n[dvbapi]\nenabled = false\n"
	os.WriteFile(cfgPath, []byte(valid), 0o600)
	cmd := exec.Command(bin, "-config", cfgPath)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine(t, lines, "satd starting")
	os.WriteFile(cfgPath, []byte("[log]\nlevel = \"loud\"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLine(t, lines, "configuration not reloaded")
	os.WriteFile(cfgPath, []byte(valid+"[log]\nlevel = \"debug\"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLine(t, lines, "configuration reloaded")
	cmd.Process.Signal(syscall.SIGTERM)
	waitLine(t, lines, "satd stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(2 * time.Minute) // a hang guard: satd logs within a second or two
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("satd exited before logging %q", want)
			}
			t.Log(l)
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("hung: no log line %q", want)
		}
	}
}
