package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader/constcw"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/atomicfile"
)

func init() {
	registerComponent(componentSpec{name: "readers", order: 10, build: buildReaders})
}

// readersComponent runs every enabled [[reader]]: simulated cards, constant
// CW files and (once the slot options are configurable) receiver slots.
type readersComponent struct {
	e        env
	units    []*readerUnit
	disabled []config.Reader
	ctx      context.Context // the units' parent, for a restart
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	restarts sync.Mutex // one reader restart at a time
}

func buildReaders(e env) (component, error) {
	c := &readersComponent{e: e}
	for _, r := range e.cfg.Readers {
		if !r.Enable {
			c.disabled = append(c.disabled, r)
			continue
		}
		src, err := newSource(e, r)
		if err != nil {
			return nil, fmt.Errorf("reader %s: %w", r.Label, err)
		}
		c.units = append(c.units, newReaderUnit(r, src, e.cfg.Balancer.MaxInflight))
	}
	return c, nil
}

// newSource builds the card, file or slot behind a reader.
func newSource(e env, r config.Reader) (readerSource, error) {
	switch r.Protocol {
	case "sim":
		return newSimSource(r)
	case "constcw":
		path := constcwPath(e.cfg.Global, r)
		if e.demo {
			if err := seedDemoFile(path); err != nil {
				return nil, err
			}
		}
		f := constcw.Open(path)
		f.SetCWPolicy(r.CWPolicy())
		return &constcwSource{file: f}, nil
	case "internal", "mouse":
		return newSlotSource(e, r)
	case "pcsc":
		return newPCSCSource(e, r)
	}
	return nil, fmt.Errorf("unknown protocol %q", r.Protocol)
}

// seedDemoFile writes the demo constant.cw rules unless the file exists.
func seedDemoFile(path string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(demoConstCW), 0o644)
}

func (c *readersComponent) Start(ctx context.Context) error {
	c.ctx, c.cancel = context.WithCancel(ctx)
	for _, u := range c.units {
		u.run(c.ctx, &c.wg)
		c.e.log.Info("reader started", "reader", u.cfg.Label, "protocol", u.cfg.Protocol)
	}
	return nil
}

// Reload takes a running reader that is disabled or removed out of the
// balancer at once (and puts it back when enabled again). The other reader
// changes need a restart: a reader added, enabled that did not start, or
// given another protocol; a removed reader is dropped then.
func (c *readersComponent) Reload(cfg *config.Config) error {
	for _, u := range c.units {
		r, ok := readerByLabel(cfg, u.cfg.Label)
		if off := !ok || !r.Enable; off != u.off.Swap(off) {
			c.e.log.Info("reader taken out of the balancer or put back", "reader", u.cfg.Label, "enabled", !off)
		}
	}
	if diff := readerChanges(c.e.cfg.Readers, cfg.Readers); len(diff) > 0 {
		return needsRestart("%s", strings.Join(diff, ", "))
	}
	return nil
}

// readerChanges says, reader by reader, what differs between was and now
// in what only a restart applies.
func readerChanges(was, now []config.Reader) []string {
	var diff []string
	before := map[string]config.Reader{}
	for _, r := range was {
		before[r.Label] = r
	}
	for _, r := range now {
		b, ok := before[r.Label]
		delete(before, r.Label)
		switch {
		case !ok:
			diff = append(diff, "reader "+r.Label+" added")
		case b.Enable != r.Enable && r.Enable:
			diff = append(diff, "reader "+r.Label+" enabled")
		case b.Enable != r.Enable:
			// Disabled: out of the balancer already (Reload).
		case b.Protocol != r.Protocol:
			diff = append(diff, "reader "+r.Label+" protocol "+b.Protocol+" -> "+r.Protocol)
		}
	}
	for _, r := range was {
		if _, gone := before[r.Label]; gone {
			diff = append(diff, "reader "+r.Label+" removed (no longer asked; dropped at the restart)")
		}
	}
	return diff
}

func (c *readersComponent) Stop(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.restarts.Lock() // no reader restart adds to wg while it is waited for
	c.cancel()
	c.restarts.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	return waitTimeout(ctx, done)
}

// statuses returns every configured reader's status in config order.
func (c *readersComponent) statuses() []ReaderStatus {
	var out []ReaderStatus
	for _, u := range c.units {
		out = append(out, u.snapshot())
	}
	for _, r := range c.disabled {
		out = append(out, ReaderStatus{Label: r.Label, Protocol: r.Protocol, State: "disabled"})
	}
	return out
}

// unit returns the running reader labelled label.
func (c *readersComponent) unit(label string) (*readerUnit, error) {
	for _, u := range c.units {
		if u.cfg.Label == label {
			return u, nil
		}
	}
	return nil, fmt.Errorf("reader %s is not running (added or enabled since the start: restart satd)", label)
}

// restartReader closes one reader's card, slot or file and opens it again.
func (c *readersComponent) restartReader(label string) error {
	u, err := c.unit(label)
	if err != nil {
		return err
	}
	c.restarts.Lock()
	defer c.restarts.Unlock()
	if c.ctx == nil || c.ctx.Err() != nil {
		return fmt.Errorf("reader %s: the readers are stopping", label)
	}
	err = u.restart(c.ctx, &c.wg, func() (readerSource, error) { return newSource(c.e, u.cfg) })
	c.e.log.Info("reader restarted", "reader", label, "err", err)
	return err
}

// readersPart returns the running readers component, or nil.
func (d *daemon) readersPart() *readersComponent {
	rc, _ := part[*readersComponent](d)
	return rc
}

// readers returns the status of every configured reader, for the web form
// and dvbapi.
func (d *daemon) readers() []ReaderStatus {
	if rc := d.readersPart(); rc != nil {
		return rc.statuses()
	}
	return nil
}

// noSlotSource is a reader whose slot cannot be opened.
type noSlotSource struct{ why string }

func (s noSlotSource) run(ctx context.Context, publish func(balancer.Status)) {
	publish(balancer.Status{})
	<-ctx.Done()
}

func (s noSlotSource) solve(*balancer.Request) (balancer.Result, [16]byte, string) {
	return balancer.NotFound, [16]byte{}, s.why
}

func (s noSlotSource) describe(st *ReaderStatus) { st.State, st.LastError = "absent", s.why }
