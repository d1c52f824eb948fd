package main

import (
	"context"
	"errors"
	"path/filepath"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cmd/satd/config"
)

func init() {
	registerComponent(componentSpec{name: "balancer", order: 20, build: buildBalancer})
}

// balancerComponent runs the ECM load balancer over the readers component's
// readers, in configuration order.
type balancerComponent struct {
	e      env
	d      *balancer.Dispatcher
	units  []*readerUnit
	cancel context.CancelFunc
	done   chan struct{}
}

// statPath is lb_savepath, or <global.state_dir>/oscam.stat when empty.
func statPath(cfg *config.Config) string {
	if cfg.Balancer.LBSavePath != "" {
		return cfg.Balancer.LBSavePath
	}
	return filepath.Join(cfg.Global.StateDir, "oscam.stat")
}

func buildBalancer(e env) (component, error) {
	var units []*readerUnit
	if e.daemon != nil {
		if rc := e.daemon.readersPart(); rc != nil {
			units = rc.units
		}
	}
	if len(units) == 0 {
		e.log.Warn("no readers configured: every ECM is answered not found")
		return nil, nil
	}
	specs := make([]balancer.ReaderSpec, len(units))
	for i, u := range units {
		specs[i] = balancer.ReaderSpec{Reader: u, Options: u.cfg.ReaderConfig}
	}
	cfg := e.cfg.Balancer
	cfg.LBSavePath = statPath(e.cfg)
	d, err := balancer.New(cfg, specs, nil, e.log)
	if err != nil {
		return nil, err
	}
	return &balancerComponent{e: e, d: d, units: units}, nil
}

func (b *balancerComponent) Start(ctx context.Context) error {
	path := b.d.Settings().SavePath
	n, err := b.d.LoadStats(path)
	if err != nil {
		b.e.log.Warn("stats not loaded", "file", path, "err", err)
	} else {
		b.e.log.Info("stats loaded", "file", path, "entries", n)
	}
	for _, u := range b.units {
		u.attach(b.d)
	}
	ctx, b.cancel = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() { defer close(b.done); b.d.Run(ctx) }()
	return nil
}

// Reload applies changed balancer and reader options to the running
// dispatcher, keeping its stats, cache and ECMs in flight. Table capacities
// and the reader list apply at the next start.
func (b *balancerComponent) Reload(cfg *config.Config) error {
	opts := make([]balancer.ReaderConfig, len(b.units))
	for i, u := range b.units {
		r, ok := readerByLabel(cfg, u.cfg.Label)
		if !ok {
			b.e.log.Warn("reader removed from the configuration; restart satd to drop it", "reader", u.cfg.Label)
			r = u.cfg
		}
		opts[i] = r.ReaderConfig
	}
	bc := cfg.Balancer
	bc.LBSavePath = statPath(cfg)
	err := b.d.Reconfigure(bc, opts)
	if err != nil && !errors.Is(err, balancer.ErrRestartNeeded) {
		return err
	}
	b.e.cfg = cfg
	if err != nil {
		return needsRestart("balancer options applied; some take effect only after a restart: %v", err)
	}
	b.e.log.Info("balancer options applied", "lb_mode", bc.LBMode)
	return nil
}

func readerByLabel(cfg *config.Config, label string) (config.Reader, bool) {
	for _, r := range cfg.Readers {
		if r.Label == label {
			return r, true
		}
	}
	return config.Reader{}, false
}

func (b *balancerComponent) Stop(ctx context.Context) error {
	if b.cancel == nil {
		return nil
	}
	b.cancel()
	if err := waitTimeout(ctx, b.done); err != nil {
		return err
	}
	return b.d.Close()
}

// balancer returns the running Dispatcher, or nil.
func (d *daemon) balancer() *balancer.Dispatcher {
	if bc, ok := part[*balancerComponent](d); ok {
		return bc.d
	}
	return nil
}
