package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Launcher supervises the satd process of the binary-only self-update. It,
// not the new binary, decides whether an update is kept: it counts the
// starts of an executable on trial and rolls back to the previous one when
// the trial fails its health checks (the process says so, or does not
// confirm within HealthTimeout) or when it crash-loops (more than
// MaxAttempts starts without confirming). Run it from the read-only factory
// copy: `satd launch`.
type Launcher struct {
	Slots Slots
	// Factory is the executable used when the layout has none (read-only
	// rootfs copy).
	Factory string
	// Args are the daemon's arguments.
	Args []string
	// MaxAttempts is how many starts a trial gets before it is rolled back.
	MaxAttempts int
	// HealthTimeout is how long a trial may run without confirming.
	HealthTimeout time.Duration
	// Backoff is the pause before restarting a process that exited on its
	// own; it doubles up to a minute while the process keeps failing.
	Backoff time.Duration
	// Log receives the launcher's decisions.
	Log *slog.Logger
	// Stdout and Stderr are the children's; nil means the launcher's own.
	Stdout, Stderr *os.File
	// Forward carries signals for the running child (SIGHUP: reload its
	// configuration), so that the init script's reload reaches satd.
	Forward <-chan os.Signal
}

// LaunchedEnv is set in the environment of the processes the launcher
// starts, so that satd knows a binary update will be restarted.
const LaunchedEnv = "SATD_LAUNCHED"

// Run starts and restarts the current executable until ctx is done, then
// stops the child with SIGTERM and returns.
func (l *Launcher) Run(ctx context.Context) error {
	backoff := l.Backoff
	for ctx.Err() == nil {
		exe, trial, err := l.next()
		if err != nil {
			return err
		}
		ran, err := l.runOnce(ctx, exe, trial)
		if err != nil {
			return err
		}
		if ran == exitedOnItsOwn {
			l.Log.Warn("satd exited; restarting", "exe", exe, "after", backoff)
			if !sleepCtx(ctx, backoff) {
				break
			}
			backoff = min(2*backoff+time.Millisecond, time.Minute)
			continue
		}
		backoff = l.Backoff
	}
	return nil
}

// next chooses what to start, rolling back a trial that has used up its
// attempts or declared itself unhealthy.
func (l *Launcher) next() (string, *Trial, error) {
	trial, err := l.Slots.LoadTrial()
	if err != nil {
		l.Log.Error("unreadable trial state; rolling back", "err", err)
		return l.rollback(fmt.Sprintf("unreadable trial state: %v", err))
	}
	switch {
	case trial == nil:
	case trial.Failed != "":
		return l.rollback("health checks failed: " + trial.Failed)
	case trial.Attempts >= l.MaxAttempts:
		return l.rollback(fmt.Sprintf("crash loop: %d starts without passing the health checks", trial.Attempts))
	default:
		trial.Attempts++
		if err := l.Slots.saveTrial(trial); err != nil {
			return "", nil, err
		}
	}
	exe := l.Slots.Current()
	if exe == "" {
		exe = l.Factory
	}
	return exe, trial, nil
}

func (l *Launcher) rollback(reason string) (string, *Trial, error) {
	l.Log.Error("update rolled back", "reason", reason, "to", l.Slots.Previous())
	if err := l.Slots.Rollback(l.Factory, reason); err != nil {
		return "", nil, err
	}
	exe := l.Slots.Current()
	return exe, nil, nil
}

// runResult says why runOnce returned.
type runResult int

const (
	stopped        runResult = iota // ctx done
	switched                        // the child switched executables or its trial ended
	exitedOnItsOwn                  // the child exited, nothing changed
)

// runOnce starts exe and waits for it to exit, enforcing the trial's
// health deadline.
func (l *Launcher) runOnce(ctx context.Context, exe string, trial *Trial) (runResult, error) {
	cmd := exec.Command(exe, l.Args...)
	cmd.Stdout, cmd.Stderr = l.out(l.Stdout, os.Stdout), l.out(l.Stderr, os.Stderr)
	cmd.Env = append(os.Environ(), LaunchedEnv+"=1")
	if err := cmd.Start(); err != nil {
		l.Log.Error("start failed", "exe", exe, "err", err)
		return exitedOnItsOwn, nil
	}
	l.Log.Info("started satd", "exe", exe, "pid", cmd.Process.Pid, "trial", trial != nil)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var deadline <-chan time.Time
	if trial != nil {
		deadline = time.After(l.HealthTimeout)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopChild(cmd, exited)
			return stopped, nil
		case sig := <-l.Forward:
			l.Log.Info("forwarding signal", "signal", sig, "pid", cmd.Process.Pid)
			cmd.Process.Signal(sig)
		case err := <-exited:
			return l.afterExit(exe, trial, err), nil
		case <-deadline:
			l.Log.Error("trial did not pass its health checks in time", "exe", exe, "timeout", l.HealthTimeout)
			stopChild(cmd, exited)
			l.Slots.Reject(trial.Version, fmt.Sprintf("not confirmed within %s", l.HealthTimeout))
			return switched, nil
		case <-tick.C:
			if trial != nil && l.trialOver(trial) {
				trial, deadline = nil, nil
			}
		}
	}
}

func (l *Launcher) out(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

// trialOver reports whether the running trial was confirmed or rejected.
func (l *Launcher) trialOver(t *Trial) bool {
	cur, err := l.Slots.LoadTrial()
	if err != nil || cur == nil {
		if err == nil {
			l.Log.Info("update confirmed", "version", t.Version)
		}
		return err == nil
	}
	return false
}

func (l *Launcher) afterExit(exe string, trial *Trial, err error) runResult {
	l.Log.Info("satd exited", "exe", exe, "status", exitStatus(err))
	if trial != nil || l.Slots.Current() != exe {
		return switched
	}
	if t, _ := l.Slots.LoadTrial(); t != nil {
		return switched // an update was switched in while it ran
	}
	return exitedOnItsOwn
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// stopChild sends SIGTERM, then SIGKILL after ten seconds.
func stopChild(cmd *exec.Cmd, exited <-chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
