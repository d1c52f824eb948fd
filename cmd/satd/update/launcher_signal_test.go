package update

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLauncherForwardsHangup checks that a SIGHUP given to `satd launch`
// reaches the running child, which reloads its configuration on it.
func TestLauncherForwardsHangup(t *testing.T) {
	skipUnlessHostTools(t, "sh")
	// Under nohup the test binary starts with SIGHUP ignored, and an ignored
	// signal stays ignored across exec: the child shell could not trap it.
	// A handled signal is reset to its default on exec instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	dir := t.TempDir()
	got := filepath.Join(dir, "hups")
	child := filepath.Join(dir, "child.sh")
	script := "#!/bin/sh\ntrap 'echo hup >> " + got + "' HUP\necho started > " + got + ".ready\nwhile :; do sleep 0.05; done\n"
	if err := os.WriteFile(child, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	fwd := make(chan os.Signal, 1)
	l := &Launcher{Slots: Slots{Dir: filepath.Join(dir, "slots")}, Factory: child, MaxAttempts: 3,
		HealthTimeout: time.Minute, Backoff: time.Second, Forward: fwd, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFile(t, got+".ready", "started")
	fwd <- syscall.SIGHUP
	waitFile(t, got, "hup")
	fwd <- syscall.SIGHUP
	waitFile(t, got, "hup\nhup")
}

// waitFile waits until path holds want (trimmed), failing as hung after
// hangGuard.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	var b []byte
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		b, _ = os.ReadFile(path)
		if strings.TrimSpace(string(b)) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s holds %q, want %q", path, b, want)
}
