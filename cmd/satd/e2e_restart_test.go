package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestartStopsComponentsFirst presses the web form's Restart (through
// its API) on a real satd, run directly and under satd launch: every
// component stops before satd starts again, in place (same pid, exec) or
// through the launcher (new pid), and the web form answers again.
func TestRestartStopsComponentsFirst(t *testing.T) {
	skipUnlessBuildTools(t)
	dir := t.TempDir()
	exe := buildSatd(t, dir, "1.0.0")
	for _, launch := range []bool{false, true} {
		name := map[bool]string{false: "in place", true: "under launch"}[launch]
		t.Run(name, func(t *testing.T) {
			sub := t.TempDir()
			cfg, _, base := updateTestConfig(t, sub, "")
			args := []string{"-config", cfg}
			if launch {
				args = append([]string{"launch", "-dir", filepath.Join(sub, "update"), "--"}, args...)
			}
			var out lockedBuffer
			cmd := exec.Command(exe, args...)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
				t.Logf("output:\n%s", out.String())
			}()
			waitHTTP(t, base)
			c := loggedIn(t, strings.TrimPrefix(base, "http://"))
			resp, err := c.Post(base+"/api/restart", "", nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("restart: %v %v", resp, err)
			}
			resp.Body.Close()
			waitLog(t, &out, `msg="satd starting"`, 2)
			waitHTTP(t, base)
			log := out.String()
			restarting, stopped, second := strings.Index(log, `msg=restarting`), strings.Index(log, `msg="satd stopped"`), strings.LastIndex(log, `msg="satd starting"`)
			if restarting < 0 || stopped < restarting || second < stopped {
				t.Errorf("want restarting, then satd stopped, then satd starting; got positions %d, %d, %d", restarting, stopped, second)
			}
			if started := strings.Count(log, `msg="started satd"`); launch != (started == 2) {
				t.Errorf("launcher started satd %d times", started)
			}
		})
	}
}

// waitLog waits for n occurrences of s in out, failing after hangGuard.
func waitLog(t *testing.T, out *lockedBuffer, s string, n int) {
	t.Helper()
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		if strings.Count(out.String(), s) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%q not seen %d times", s, n)
}

func skipUnlessBuildTools(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("SATD_CROSS_TEST") != "" {
		t.Skip("builds and runs satd: not under qemu or -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool")
	}
}
