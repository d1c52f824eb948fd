package web

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// Sentinel errors of a save.
var (
	// ErrPending refuses a second risky change while one awaits confirmation.
	ErrPending = errors.New("a change is waiting for confirmation; confirm it or wait for it to be reverted first")
	// ErrNotApplied says a component refused the change: the previous
	// configuration was restored in the file and in force.
	ErrNotApplied = errors.New("a component refused the change")
)

// riskyChanged reports whether a change touches settings that can cut the
// browser off: where the form listens and who may reach it.
func riskyChanged(old, new *config.Config) bool {
	return old.Web.Listen != new.Web.Listen ||
		!slices.Equal(old.Web.AllowedHosts, new.Web.AllowedHosts) ||
		!slices.Equal(old.Web.Allow, new.Web.Allow)
}

// withRiskyFrom returns cur with the risky settings of old: what a revert
// puts in force, so that the saves made while a change awaited its
// confirmation are kept.
func withRiskyFrom(cur, old *config.Config) (*config.Config, error) {
	c, err := cloneConfig(cur)
	if err != nil {
		return nil, err
	}
	c.Web.Listen = old.Web.Listen
	c.Web.AllowedHosts = slices.Clone(old.Web.AllowedHosts)
	c.Web.Allow = slices.Clone(old.Web.Allow)
	return c, nil
}

// cloneConfig deep-copies a configuration through its TOML encoding.
func cloneConfig(c *config.Config) (*config.Config, error) {
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		return nil, err
	}
	return config.Parse("configuration in force", b.Bytes())
}

// saveResult says how a save went in.
type saveResult struct {
	Confirm  bool      // applied, reverted at Deadline unless confirmed
	Deadline time.Time // when Confirm
	Result   ApplyResult
}

// save validates, saves atomically and applies cfg as one transaction: when
// a component fails, the previous configuration goes back into the file and
// into force, and the error names the component and its reason. A risky
// change is armed for revert. The caller has validated cfg; Save validates
// again.
func (s *Server) save(cfg *config.Config) (saveResult, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	old := s.opt.Config()
	risky := riskyChanged(old, cfg)
	if risky && s.confirm.active() {
		return saveResult{}, ErrPending
	}
	res, err := s.commit(cfg)
	if err != nil {
		return saveResult{}, err
	}
	if failed := res.only(Failed); len(failed) > 0 {
		s.opt.Log.Error("web: change not applied; previous configuration restored", "failed", failed.String())
		if _, rerr := s.commit(old); rerr != nil {
			return saveResult{Result: res}, fmt.Errorf("%w: %s; restoring the previous configuration failed too: %v", ErrNotApplied, failed, rerr)
		}
		return saveResult{Result: res}, fmt.Errorf("%w: %s; the previous configuration is back in force", ErrNotApplied, failed)
	}
	out := saveResult{Result: res}
	if !risky {
		return out, nil
	}
	d := s.opt.ConfirmTimeout
	if d == 0 {
		d = cfg.Web.ConfirmTimeout.Std()
	}
	out.Confirm, out.Deadline = true, s.confirm.arm(old, d)
	return out, nil
}

// commit writes cfg and puts it in force; the components that need a
// restart for it are kept for the banner of every page.
func (s *Server) commit(cfg *config.Config) (ApplyResult, error) {
	if err := config.Save(s.opt.ConfigPath, cfg); err != nil {
		return nil, err
	}
	res := s.opt.Apply(cfg)
	s.restartNeeded.Store(&res)
	return res, nil
}

// Reloaded records the outcome of a configuration the daemon put in force
// without the form (a SIGHUP reload), so that the restart banner follows it.
func (s *Server) Reloaded(res ApplyResult) { s.restartNeeded.Store(&res) }

// lastResult returns every component's outcome of the last apply.
func (s *Server) lastResult() ApplyResult {
	if p := s.restartNeeded.Load(); p != nil {
		return *p
	}
	return nil
}

// pendingRestart returns the components waiting for a restart to take the
// configuration in force.
func (s *Server) pendingRestart() ApplyResult {
	if p := s.restartNeeded.Load(); p != nil {
		return p.only(RestartNeeded)
	}
	return nil
}

// confirmer is LuCI's apply-with-rollback: after a risky change it keeps the
// previous configuration and restores it when the timer fires first.
type confirmer struct {
	s        *Server
	mu       sync.Mutex
	old      *config.Config
	timer    *time.Timer
	deadline time.Time
	last     string // outcome of the last pending change, for the page
}

func (c *confirmer) active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.old != nil
}

func (c *confirmer) arm(old *config.Config, d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.old, c.deadline, c.last = old, time.Now().Add(d), ""
	c.timer = time.AfterFunc(d, c.revert)
	return c.deadline
}

// pending returns the deadline of the change awaiting confirmation.
func (c *confirmer) pending() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, c.old != nil
}

// confirm keeps the applied change; false when nothing was pending.
func (c *confirmer) confirm() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.old == nil {
		return false
	}
	c.timer.Stop()
	c.old, c.last = nil, "confirmed"
	c.s.opt.Log.Info("web: change confirmed")
	return true
}

// revert restores the configuration from before the pending change.
func (c *confirmer) revert() {
	c.mu.Lock()
	old := c.old
	c.old = nil
	c.mu.Unlock()
	if old == nil {
		return // confirmed meanwhile
	}
	c.s.applyMu.Lock()
	err := c.s.restoreRisky(old)
	c.s.applyMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.last = "revert failed: " + err.Error()
		c.s.opt.Log.Error("web: reverting an unconfirmed change failed", "err", err)
		return
	}
	c.last = "reverted"
	c.s.opt.Log.Warn("web: change not confirmed in time; previous configuration restored")
}

// oldListen is the listen address a revert would go back to, or "".
func (c *confirmer) oldListen() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.old == nil {
		return ""
	}
	return c.old.Web.Listen
}

func (c *confirmer) outcome() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *confirmer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// restoreRisky puts the risky settings of old back in force over the
// configuration in force. The caller holds applyMu.
func (s *Server) restoreRisky(old *config.Config) error {
	back, err := withRiskyFrom(s.opt.Config(), old)
	if err != nil {
		return err
	}
	res, err := s.commit(back)
	if err != nil {
		return err
	}
	if failed := res.only(Failed); len(failed) > 0 {
		return fmt.Errorf("%w: %s", ErrNotApplied, failed)
	}
	return nil
}
