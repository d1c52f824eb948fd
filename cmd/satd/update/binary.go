package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"satd.dev/satd/internal/atomicfile"
)

// Slots is the on-disk layout of the binary-only self-update, for boxes
// whose firmware satd does not own:
//
//	DIR/bin/satd-VERSION   downloaded, verified executables
//	DIR/current            symlink to the executable the launcher starts
//	DIR/previous           symlink to the one before it (the rollback target)
//	DIR/trial.json         present while the current one is on trial
//	DIR/outcome.json       the last update's result, for the web form and log
//
// Every switch is a rename of a freshly made symlink over the old one, so a
// power cut leaves either the old or the new link.
type Slots struct {
	Dir string
	// Factory is the executable the launcher runs while DIR/current does
	// not exist (the read-only copy in the rootfs); the first update falls
	// back to it.
	Factory string
}

// Trial is the state of an executable on trial.
type Trial struct {
	Version  string    `json:"version"`
	Attempts int       `json:"attempts"`
	Since    time.Time `json:"since"`
	// Failed is set by the new process when its own health checks failed;
	// the launcher then rolls back at once.
	Failed string `json:"failed,omitempty"`
}

// Outcome is the result of the last binary update.
type Outcome struct {
	Version string    `json:"version"`
	Result  string    `json:"result"` // "kept" or "rolled back"
	Reason  string    `json:"reason,omitempty"`
	Time    time.Time `json:"time"`
}

// The outcome results.
const (
	ResultKept       = "kept"
	ResultRolledBack = "rolled back"
)

func (s Slots) path(name string) string { return filepath.Join(s.Dir, name) }

// Stage copies a verified payload into bin/ as an executable and checks
// that it runs on this machine: `NEW -version` must print version, and, if
// configPath is not empty, `NEW -check -config configPath` must accept the
// configuration in force.
func (s Slots) Stage(ctx context.Context, payload, version, configPath string) (string, error) {
	if _, err := ParseVersion(version); err != nil {
		return "", fmt.Errorf("stage: %w", err) // a version names a file: no path characters
	}
	if err := os.MkdirAll(s.path("bin"), 0o755); err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	dst := s.path(filepath.Join("bin", "satd-"+version))
	err := atomicfile.Write(dst, 0o755, func(w io.Writer) error {
		f, err := os.Open(payload)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", version, err)
	}
	if err := selfTest(ctx, dst, version, configPath); err != nil {
		os.Remove(dst)
		return "", err
	}
	return dst, nil
}

// selfTest runs the staged executable in its harmless modes.
func selfTest(ctx context.Context, exe, version, configPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		return fmt.Errorf("self-test %s -version: %v: %q (want version %s)", exe, err, strings.TrimSpace(string(out)), version)
	}
	if configPath == "" {
		return nil
	}
	out, err = exec.CommandContext(ctx, exe, "-check", "-config", configPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("self-test %s -check: %v: %s", exe, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Current returns the executable the launcher starts ("" if none).
func (s Slots) Current() string { return s.link("current") }

// Previous returns the rollback target ("" if none).
func (s Slots) Previous() string { return s.link("previous") }

func (s Slots) link(name string) string {
	t, err := os.Readlink(s.path(name))
	if err != nil {
		return ""
	}
	if !filepath.IsAbs(t) {
		t = filepath.Join(s.Dir, t)
	}
	return t
}

// setLink atomically points DIR/name at target.
func (s Slots) setLink(name, target string) error {
	tmp := s.path("." + name + ".tmp")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := os.Rename(tmp, s.path(name)); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return atomicfile.SyncDir(s.Dir)
}

// Adopt makes exe the current executable without a trial (first install,
// or the factory copy).
func (s Slots) Adopt(exe string) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	return s.setLink("current", exe)
}

// Switch puts the staged executable of version on trial: current becomes
// previous, exe becomes current, and trial.json records the trial. The
// launcher starts it at the next (re)start.
func (s Slots) Switch(exe, version string) error {
	old := s.Current()
	if old == "" {
		old = s.Factory
	}
	if old == "" {
		return fmt.Errorf("switch to %s: no current executable to fall back to", version)
	}
	if err := s.saveTrial(&Trial{Version: version, Since: time.Now()}); err != nil {
		return err
	}
	if err := s.setLink("previous", old); err != nil {
		return err
	}
	if err := s.setLink("current", exe); err != nil {
		return err
	}
	return s.Prune()
}

// Prune removes the staged executables in bin/ that are neither current
// nor previous: satd keeps the build it runs and one fallback, so rolled
// back and superseded builds do not fill the flash.
func (s Slots) Prune() error {
	keep := map[string]bool{}
	for _, l := range []string{s.Current(), s.Previous()} {
		if l != "" {
			keep[filepath.Clean(l)] = true
		}
	}
	dir := s.path("bin")
	es, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("prune: %w", err)
	}
	for _, e := range es {
		p := filepath.Join(dir, e.Name())
		if keep[p] || e.IsDir() {
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return atomicfile.SyncDir(dir)
}

// LoadTrial returns the trial in progress, or nil.
func (s Slots) LoadTrial() (*Trial, error) {
	var t Trial
	ok, err := loadJSON(s.path("trial.json"), &t)
	if !ok {
		return nil, err
	}
	return &t, err
}

func (s Slots) saveTrial(t *Trial) error { return saveJSON(s.path("trial.json"), t) }

// Confirm ends the trial of version successfully: it stays current.
func (s Slots) Confirm(version string) error {
	t, err := s.LoadTrial()
	if err != nil || t == nil || t.Version != version {
		return err
	}
	if err := s.saveOutcome(Outcome{Version: version, Result: ResultKept, Time: time.Now()}); err != nil {
		return err
	}
	return removeSynced(s.path("trial.json"))
}

// Reject marks the trial of version as failed; the launcher rolls back
// when the process exits.
func (s Slots) Reject(version, reason string) error {
	t, err := s.LoadTrial()
	if err != nil || t == nil || t.Version != version {
		return err
	}
	t.Failed = reason
	return s.saveTrial(t)
}

// Rollback makes previous current again (or factory if there is no
// previous), ends the trial and records why.
func (s Slots) Rollback(factory, reason string) error {
	t, _ := s.LoadTrial()
	target := s.Previous()
	if target == "" {
		target = factory
	}
	if target == "" {
		return fmt.Errorf("rollback: neither a previous nor a factory executable")
	}
	if err := s.setLink("current", target); err != nil {
		return err
	}
	out := Outcome{Result: ResultRolledBack, Reason: reason, Time: time.Now()}
	if t != nil {
		out.Version = t.Version
	}
	if err := s.saveOutcome(out); err != nil {
		return err
	}
	if err := removeSynced(s.path("trial.json")); err != nil {
		return err
	}
	return s.Prune()
}

// LoadOutcome returns the last update's outcome, or nil.
func (s Slots) LoadOutcome() (*Outcome, error) {
	var o Outcome
	ok, err := loadJSON(s.path("outcome.json"), &o)
	if !ok {
		return nil, err
	}
	return &o, err
}

func (s Slots) saveOutcome(o Outcome) error { return saveJSON(s.path("outcome.json"), o) }

// loadJSON reads a small state file; ok is false when it does not exist.
func loadJSON(path string, v any) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("read %s: %w", path, err)
	}
	return true, nil
}

func saveJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
