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
	cancel   context.CancelFunc
	wg       sync.WaitGroup
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
	ctx, c.cancel = context.WithCancel(ctx)
	for _, u := range c.units {
		u.run(ctx, &c.wg)
		c.e.log.Info("reader started", "reader", u.cfg.Label, "protocol", u.cfg.Protocol)
	}
	return nil
}

// Reload reports reader changes, which need a restart: a reader added or
// removed, enabled or disabled, or given another protocol keeps running as
// it started (a disabled reader keeps descrambling) until then.
func (c *readersComponent) Reload(cfg *config.Config) error {
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
			diff = append(diff, "reader "+r.Label+" disabled (it keeps running until the restart)")
		case b.Protocol != r.Protocol:
			diff = append(diff, "reader "+r.Label+" protocol "+b.Protocol+" -> "+r.Protocol)
		}
	}
	for _, r := range was {
		if _, gone := before[r.Label]; gone {
			diff = append(diff, "reader "+r.Label+" removed (it keeps running until the restart)")
		}
	}
	return diff
}

func (c *readersComponent) Stop(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
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
