//go:build !satd_nodemo

package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/dvbapi/zap"
	"satd.dev/satd/internal/atomicfile"
)

// The demo (`satd -demo`, `make run`) lives in this file and in
// readers_sim.go; release builds (tag satd_nodemo) leave it out and get the
// refusals of nodemo.go instead.

// demoConfig is the configuration of `satd -demo`.
//
//go:embed demo.toml
var demoConfig []byte

// demoMP3 is the demo stream's sample: 4 s of a generated 440 Hz tone,
// 32 kbit/s mono, looped by the demo mount. It is embedded so `satd -demo`
// works anywhere, not only from a source checkout, and kept small (16 KB)
// for the builds that carry the demo.
//
//go:embed demo.mp3
var demoMP3 []byte

// loadDemoConfig parses the embedded demo configuration.
func loadDemoConfig() (*config.Config, error) {
	return config.Parse("demo.toml (embedded)", demoConfig)
}

// writeDemoSample puts the embedded sample where the demo mounts expect it
// (<global.state_dir>/demo.mp3) unless it is already there.
func writeDemoSample(cfg *config.Config) error {
	path := filepath.Join(cfg.Global.StateDir, "demo.mp3")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(cfg.Global.StateDir, 0o755); err != nil {
		return fmt.Errorf("demo stream: %w", err)
	}
	return atomicfile.WriteFile(path, demoMP3, 0o644)
}

func init() {
	registerComponent(componentSpec{name: "demo", order: 60, build: buildDemo})
}

// demoHold is how long the demo receiver stays on a service.
const demoHold = 4 * time.Second

// demoRounds is how many times one zap run goes through the services
// before it reconnects and starts over.
const demoRounds = 25

// demoComponent plays a receiver against the daemon's own dvbapi TCP port
// (`satd -demo`, `make run`): a built-in zap scenario zaps between a Conax,
// a Seca and a constant-CW service every few seconds until Stop, so ECM
// traffic, reader choices and CWs show in the log and the web form.
type demoComponent struct {
	e    env
	addr string
	sc   string // scenario TOML
	// patience is the scenario's zap.Scenario.Patience: zero for the demo
	// itself, a hang guard for its test on a loaded machine.
	patience time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
}

func buildDemo(e env) (component, error) {
	if !e.demo {
		return nil, nil
	}
	if !e.cfg.DVBAPI.Enabled || e.cfg.DVBAPI.Listen == "" {
		e.log.Warn("demo receiver off: [dvbapi] has no TCP listen address")
		return nil, nil
	}
	addr := e.cfg.DVBAPI.Listen
	if e.daemon != nil {
		if p := e.daemon.dvbapiPart(); p != nil && p.TCPAddr() != "" {
			addr = p.TCPAddr() // the bound address: a configured port 0 resolved
		}
	}
	return &demoComponent{e: e, addr: addr, sc: demoScenario(e.cfg)}, nil
}

// demoScenario builds the demo's zap scenario from the configured readers:
// one service per simulated Conax or Seca card (CWs checked against the
// simulated card's derivation) and one per constant-CW file (checked
// against its rules).
func demoScenario(cfg *config.Config) string {
	var b, svcs strings.Builder
	b.WriteString("protocol = 2\nclient_name = \"satd demo receiver\"\ncrypto_period = \"3s\"\necm_interval = \"500ms\"\ncw_deadline = \"2s\"\nverify = \"sha256\"\n")
	var names []string
	seen := map[string]bool{}
	for _, r := range cfg.Readers {
		if !r.Enable {
			continue
		}
		sys := r.System
		if sys == "" {
			sys = strings.ToLower(r.Label)
		}
		switch {
		case r.Protocol == "sim" && strings.HasPrefix(sys, "conax") && !seen["conax"]:
			seen["conax"] = true
			names = append(names, "conax-demo")
			svcs.WriteString(demoService("conax-demo", "system = \"conax\"", 0x1234, 0x0100, 0x0B00))
		case r.Protocol == "sim" && strings.HasPrefix(sys, "seca") && !seen["seca"]:
			seen["seca"] = true
			names = append(names, "seca-demo")
			svcs.WriteString(demoService("seca-demo", "system = \"seca\"", 0x2001, 0x0110, 0x0100))
		case r.Protocol == "constcw" && !seen["constcw"]:
			seen["constcw"] = true
			names = append(names, "constcw-demo")
			fmt.Fprintf(&b, "constcw = %q\n", constcwPath(cfg.Global, r))
			svcs.WriteString(demoService("constcw-demo", "verify = \"constcw\"", 0x0001, 0x0120, 0x2600))
		}
	}
	b.WriteString(svcs.String())
	for range demoRounds {
		for _, n := range names {
			fmt.Fprintf(&b, "[[step]]\ndo = \"zap\"\nservice = %q\nhold = %q\n", n, demoHold.String())
		}
	}
	return b.String()
}

// demoService is one [[service]] of the demo scenario.
func demoService(name, extra string, sid, pmt, caid uint16) string {
	return fmt.Sprintf("[[service]]\nname = %q\n%s\nsid = %d\npmt_pid = %d\npids = [%d, %d]\n[[service.ecm]]\ncaid = %d\npid = %d\n",
		name, extra, sid, pmt, pmt+1, pmt+2, caid, pmt+0x100)
}

func (c *demoComponent) Start(ctx context.Context) error {
	sc, err := zap.Parse("demo scenario (built in)", []byte(c.sc))
	if err != nil {
		return err
	}
	if len(sc.Services) == 0 {
		c.e.log.Warn("demo receiver off: no sim or constcw reader configured")
		return nil
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	go func() { defer close(c.done); c.run(ctx) }()
	c.e.log.Info("demo receiver started", "dvbapi", c.addr, "services", len(sc.Services), "hold", demoHold.String())
	return nil
}

// run plays the scenario over and over until ctx ends.
func (c *demoComponent) run(ctx context.Context) {
	var mu sync.Mutex // Observe runs on the zap goroutine; keep log lines whole
	for ctx.Err() == nil {
		sc, err := zap.Parse("demo scenario (built in)", []byte(c.sc))
		if err != nil {
			c.e.log.Error("demo scenario", "err", err)
			return
		}
		sc.Patience = c.patience
		sc.Observe = func(ev zap.Event) {
			mu.Lock()
			defer mu.Unlock()
			c.e.log.Info("zap", "service", ev.Service, "caid", fmt.Sprintf("%04X", ev.CAID), "reader", ev.Reader,
				"system", ev.System, "ecm_time", ev.ECMTime.String(), "first_cw_after", ev.Zap.Round(time.Millisecond).String())
		}
		rep, err := zap.Run(ctx, sc, zap.Dial("tcp", c.addr))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.e.log.Warn("demo receiver", "err", err)
		case !rep.OK():
			var b strings.Builder
			rep.Print(&b)
			c.e.log.Warn("demo receiver saw problems", "report", b.String())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Reload has nothing to apply: the scenario follows the readers, which
// need a restart to change.
func (c *demoComponent) Reload(*config.Config) error { return nil }

func (c *demoComponent) Stop(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	return waitTimeout(ctx, c.done)
}
