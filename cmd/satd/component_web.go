package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/web"
)

// webLogs is the ring of recent log records the Log page tails. The daemon's
// logging adds webLogs.Handler() to its handler fan-out.
var webLogs = web.NewLogRing(1000)

// webMetrics is the Prometheus exposition; the balancer and the relay report
// their events to it when they are wired.
var webMetrics = web.NewMetrics()

func init() {
	registerComponent(componentSpec{name: "web", order: 90, build: buildWeb})
}

// webComponent adapts web.Server to the daemon's component lifecycle and
// runs the collector that feeds webMetrics.
type webComponent struct {
	srv     *web.Server
	log     *slog.Logger
	metrics *metricsCollector
	cancel  context.CancelFunc
	done    chan struct{}
}

func buildWeb(e env) (component, error) {
	if !e.cfg.Web.Enabled {
		return nil, nil
	}
	d := e.daemon
	path := d.configPath
	if path == "" {
		// The embedded demo has no file; the form saves next to its state.
		path = filepath.Join(e.cfg.Global.StateDir, "satd.toml")
		if err := os.MkdirAll(e.cfg.Global.StateDir, 0o700); err != nil {
			return nil, err
		}
	}
	srv, err := web.New(web.Options{
		Config:     d.config,
		ConfigPath: path,
		Apply: func(cfg *config.Config) web.ApplyResult {
			return d.apply(cfg, e.log)
		},
		Restart:  d.requestRestart,
		Names:    &d.names,
		Status:   daemonStatus{d},
		Balancer: balancerView{d},
		Updater:  daemonUpdater{d},
		Readers:  readerControl{d},
		Logs:     webLogs,
		Metrics:  webMetrics,
		Log:      e.log,
		Version:  version,
	})
	if err != nil {
		return nil, err
	}
	return &webComponent{srv: srv, log: e.log, metrics: newMetricsCollector(d, webMetrics)}, nil
}

func (c *webComponent) Start(ctx context.Context) error {
	if err := c.srv.Start(ctx); err != nil {
		return err
	}
	mctx, cancel := context.WithCancel(ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	go func() { defer close(c.done); c.metrics.run(mctx, metricsInterval) }()
	if code := c.srv.SetupCode(); code != "" {
		c.log.Warn("web form has no password yet: set it from this machine's browser, or elsewhere with the one-time setup code",
			"url", "http://"+c.srv.Addr()+"/setup", "setup_code", code)
	}
	return nil
}

func (c *webComponent) Reload(cfg *config.Config) error { return c.srv.Reload(cfg) }

func (c *webComponent) Stop(ctx context.Context) error {
	if c.cancel != nil {
		c.cancel()
		if err := waitTimeout(ctx, c.done); err != nil {
			return err
		}
	}
	return c.srv.Stop(ctx)
}

// readerControl is the reader list's hold on the running readers.
type readerControl struct{ d *daemon }

var _ web.ReaderControl = readerControl{}

func (rc readerControl) Restart(label string) error {
	p := rc.d.readersPart()
	if p == nil {
		return web.ErrNotAvailable
	}
	return p.restartReader(label)
}

// ResetCounters zeroes a running reader's ECM counters; a reader that does
// not run has none.
func (rc readerControl) ResetCounters(label string) error {
	if p := rc.d.readersPart(); p != nil {
		if u, err := p.unit(label); err == nil {
			u.resetCounters()
		}
	}
	return nil
}
