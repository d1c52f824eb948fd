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

// ErrPending refuses a second risky change while one awaits confirmation.
var ErrPending = errors.New("a change is waiting for confirmation; confirm it or wait for it to be reverted first")

// riskyChanged reports whether a change touches settings that can cut the
// browser off: where the form listens and who may reach it.
func riskyChanged(old, new *config.Config) bool {
	return old.Web.Listen != new.Web.Listen ||
		!slices.Equal(old.Web.AllowedHosts, new.Web.AllowedHosts) ||
		!slices.Equal(old.Web.Allow, new.Web.Allow)
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
}

// save validates, saves atomically and applies cfg. A risky change is armed
// for revert. The caller has validated cfg; Save validates again.
func (s *Server) save(cfg *config.Config) (saveResult, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	old := s.opt.Config()
	risky := riskyChanged(old, cfg)
	if risky && s.confirm.active() {
		return saveResult{}, ErrPending
	}
	if err := s.commit(cfg); err != nil {
		return saveResult{}, err
	}
	if !risky {
		return saveResult{}, nil
	}
	d := s.opt.ConfirmTimeout
	if d == 0 {
		d = cfg.Web.ConfirmTimeout.Std()
	}
	return saveResult{Confirm: true, Deadline: s.confirm.arm(old, d)}, nil
}

// commit writes cfg and puts it in force.
func (s *Server) commit(cfg *config.Config) error {
	if err := config.Save(s.opt.ConfigPath, cfg); err != nil {
		return err
	}
	if err := s.opt.Apply(cfg); err != nil {
		return fmt.Errorf("saved, but applying failed: %w", err)
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
	err := c.s.commit(old)
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
