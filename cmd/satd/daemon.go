package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/update"
	"satd.dev/satd/cmd/satd/web"
	"satd.dev/satd/internal/atomicfile"
	"satd.dev/satd/internal/fdlimit"
	"satd.dev/satd/internal/memtrim"
)

// component is a part of the daemon with a lifecycle: the readers, the
// balancer, the dvbapi front door, the stream relay, the web form.
//
// Start must not block; the component runs until Stop. Reload applies a new,
// already validated configuration without a restart, keeping state that the
// change does not concern (ready cards, stream listeners). Stop drains within
// the context's deadline.
type component interface {
	Start(ctx context.Context) error
	Reload(cfg *config.Config) error
	Stop(ctx context.Context) error
}

// env is what a component constructor receives.
type env struct {
	cfg  *config.Config
	log  *slog.Logger
	demo bool
	// daemon is the running daemon, for components that look at others
	// (the web form shows everything).
	daemon *daemon
}

// componentSpec describes how to build a component; each component registers
// one from its own file. Components start in order and stop in reverse.
type componentSpec struct {
	name  string
	order int
	build func(e env) (component, error)
}

var componentSpecs []componentSpec

func registerComponent(s componentSpec) { componentSpecs = append(componentSpecs, s) }

// daemon is a running satd.
type daemon struct {
	// mu serialises configuration changes: a SIGHUP reload and a save from
	// the web form may arrive at the same time.
	mu         sync.Mutex
	log        *logSetup
	configPath string // "" for the embedded demo configuration
	cfg        *config.Config
	// partsMu guards parts: the web form (order 90, last) serves and
	// collects metrics from its Start on, while start still appends it.
	partsMu sync.Mutex
	parts   []namedComponent
	// restart asks run to stop every component and start satd again
	// (the web form's Restart button).
	restart chan struct{}
	// names are the channel names (state_dir/oscam.srvid2) the web form
	// shows; an OSCam import replaces them.
	names channels.Names
}

type namedComponent struct {
	name string
	c    component
}

// addPart records a started component, stopped with the daemon.
func (d *daemon) addPart(name string, c component) {
	d.partsMu.Lock()
	defer d.partsMu.Unlock()
	d.parts = append(d.parts, namedComponent{name, c})
}

// components returns the started components in start order. Parts are
// only appended, so the returned slice stays valid without the lock.
func (d *daemon) components() []namedComponent {
	d.partsMu.Lock()
	defer d.partsMu.Unlock()
	return d.parts[:len(d.parts):len(d.parts)]
}

// part returns the running component of type T, if any.
func part[T component](d *daemon) (T, bool) {
	for _, p := range d.components() {
		if c, ok := p.c.(T); ok {
			return c, true
		}
	}
	var none T
	return none, false
}

func runDaemon(args []string, stdout, stderr io.Writer) int {
	f, err := parseDaemonFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.version {
		fmt.Fprintf(stdout, "satd %s\n", version)
		return 0
	}
	path, cfg, err := loadFor(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if f.check {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", displayPath(path))
		return 0
	}
	logs, err := newLogging(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "satd: logging: %v\n", err)
		return 1
	}
	defer logs.close()
	d := &daemon{log: logs, configPath: path, cfg: cfg, restart: make(chan struct{}, 1)}
	return d.run(f.demo)
}

// cleanTemps removes the temporary files of saves that a kill -9 or a power
// cut interrupted before their rename, beside the configuration and in the
// state directory, before anything writes there again.
func cleanTemps(configPath, stateDir string, log *slog.Logger) {
	n, err := atomicfile.CleanDirTemps(stateDir)
	if configPath != "" {
		k, cerr := atomicfile.CleanTemps(configPath)
		n, err = n+k, errors.Join(err, cerr)
	}
	if err != nil {
		log.Warn("leftover temporary files not all removed", "err", err)
	}
	if n > 0 {
		log.Info("removed temporary files of interrupted saves", "files", n)
	}
}

// loadFor loads the configuration the flags name.
func loadFor(f daemonFlags) (string, *config.Config, error) {
	switch {
	case f.config != "":
		cfg, err := config.Load(f.config)
		return f.config, cfg, err
	case f.demo:
		cfg, err := loadDemoConfig()
		return "", cfg, err
	}
	cfg, err := config.Load(defaultConfigPath)
	return defaultConfigPath, cfg, err
}

func displayPath(p string) string {
	if p == "" {
		return "embedded demo configuration"
	}
	return p
}

func (d *daemon) run(demo bool) int {
	// Signals are caught before anything is logged or started, so that an
	// early SIGHUP or SIGTERM is handled rather than killing the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log := d.log.component("main")
	applyMemoryLimit(d.cfg.Global, log)
	log.Info("satd starting", "version", version, "config", displayPath(d.configPath), "demo", demo)
	if n, err := fdlimit.Raise(); err != nil {
		log.Warn("descriptor limit not raised to the hard limit", "limit", n, "err", err)
	} else {
		log.Info("descriptor limit", "limit", n, "web", fdlimit.Share(fdlimit.ShareWeb), "stream", fdlimit.Share(fdlimit.ShareStream), "dvbapi", fdlimit.Share(fdlimit.ShareDVBAPI))
	}
	cleanTemps(d.configPath, d.cfg.Global.StateDir, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Pages freed after a connect storm or a listener ramp go back to the
	// kernel within seconds, not over the scavenger's minutes.
	go memtrim.Run(ctx, memtrim.Default)
	if err := d.start(ctx, demo); err != nil {
		log.Error("start failed", "err", err)
		d.stop(log)
		return 1
	}
	restart := d.wait(sigs, log)
	cancel()
	code := d.stop(log)
	if restart && code == 0 {
		return reexec(log)
	}
	return code
}

// wait serves SIGHUP reloads until a signal stops the daemon or a restart
// is requested; it reports which.
func (d *daemon) wait(sigs <-chan os.Signal, log *slog.Logger) (restart bool) {
	drain := d.cfg.Global.ShutdownTimeout.Std().String()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(log)
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "drain", drain)
			return false
		case <-d.restart:
			log.Info("restarting", "drain", drain)
			return true
		}
	}
}

// requestRestart asks the daemon to stop its components cleanly and start
// again. It returns at once, so the request that asked for it is answered.
func (d *daemon) requestRestart() error {
	select {
	case d.restart <- struct{}{}:
	default: // a restart is already on its way
	}
	return nil
}

// reexec starts satd again once every component has stopped: under
// satd launch by exiting, so that the launcher starts the current
// executable; otherwise by executing this one in place.
func reexec(log *slog.Logger) int {
	if os.Getenv(update.LaunchedEnv) != "" {
		return 0
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, os.Environ())
	}
	log.Error("restart failed", "err", err)
	return 1
}

func (d *daemon) start(ctx context.Context, demo bool) error {
	// The web password, saved sessions, balancer stats and updates live in
	// state_dir; satd still serves the receiver when it cannot be made.
	if err := os.MkdirAll(d.cfg.Global.StateDir, 0o700); err != nil {
		d.log.component("main").Error("state_dir unusable: the web password, stats and updates cannot be saved", "err", err)
	}
	d.loadNames()
	specs := slices.Clone(componentSpecs)
	slices.SortStableFunc(specs, func(a, b componentSpec) int { return a.order - b.order })
	for _, s := range specs {
		c, err := s.build(env{cfg: d.cfg, log: d.log.component(s.name), demo: demo, daemon: d})
		if err != nil {
			return fmt.Errorf("build %s: %w", s.name, err)
		}
		if c == nil {
			continue // disabled by configuration
		}
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		d.addPart(s.name, c)
	}
	return nil
}

// reload re-reads the configuration file on SIGHUP. An invalid file is
// reported and ignored: the daemon keeps running on the configuration it has.
func (d *daemon) reload(log *slog.Logger) {
	if d.configPath == "" {
		log.Info("SIGHUP: running on the embedded demo configuration, nothing to reload")
		return
	}
	doc, err := os.ReadFile(d.configPath)
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Parse(d.configPath, doc)
	}
	if err == nil {
		d.mu.Lock()
		err = config.CheckReplacement(doc, d.cfg)
		d.mu.Unlock()
	}
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded, keeping the one in force", "config", d.configPath, "problems", err.Error())
		return
	}
	res := d.apply(cfg, log)
	// The web form shows what the reload left waiting for a restart (its
	// banner), and the channel names file may have been replaced too.
	if w, ok := part[*webComponent](d); ok {
		w.srv.Reloaded(res)
	}
	d.loadNames()
}

// apply makes cfg the configuration in force, component by component, and
// returns each one's outcome: applied, restart needed (with what waits for
// it), or failed (with the reason). The web form rolls a failed change back.
func (d *daemon) apply(cfg *config.Config, log *slog.Logger) web.ApplyResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log.reload(cfg.Log)
	applyMemoryLimit(cfg.Global, log)
	var res web.ApplyResult
	for _, p := range d.components() {
		r := web.ComponentResult{Component: p.name, Outcome: web.Applied}
		err := p.c.Reload(cfg)
		var later *restartError
		switch {
		case errors.As(err, &later):
			r.Outcome, r.Reason = web.RestartNeeded, later.why
			log.Warn("configuration applied at the next restart", "part", p.name, "why", later.why)
		case err != nil:
			r.Outcome, r.Reason = web.Failed, err.Error()
			log.Error("reload failed", "part", p.name, "err", err)
		}
		res = append(res, r)
	}
	res = append(res, d.notRunning(cfg)...)
	d.cfg = cfg
	log.Info("configuration reloaded", "config", displayPath(d.configPath))
	return res
}

// notRunning reports the components that cfg enables but that did not start
// with the daemon: they start at the next restart.
func (d *daemon) notRunning(cfg *config.Config) web.ApplyResult {
	var res web.ApplyResult
	if _, ok := part[*dvbapiComponent](d); !ok && cfg.DVBAPI.Enabled {
		res = append(res, web.ComponentResult{Component: "dvbapi", Outcome: web.RestartNeeded, Reason: "enabled; it starts at the next restart"})
	}
	if _, ok := part[*streamComponent](d); !ok && cfg.Stream.Enabled {
		res = append(res, web.ComponentResult{Component: "stream", Outcome: web.RestartNeeded, Reason: "enabled; it starts at the next restart"})
	}
	return res
}

// restartError is a Reload's answer that (part of) the change takes effect
// only when satd starts again.
type restartError struct{ why string }

func (e *restartError) Error() string { return e.why + "; restart satd to apply" }

// needsRestart returns the restartError saying why.
func needsRestart(format string, args ...any) error {
	return &restartError{why: fmt.Sprintf(format, args...)}
}

// loadNames reads the channel names table; a bad line is logged and
// skipped, a missing file is no names.
func (d *daemon) loadNames() {
	log := d.log.component("main")
	path := filepath.Join(d.config().Global.StateDir, channels.File)
	t, probs, err := channels.Load(path)
	for _, p := range probs {
		log.Warn("channel names: line skipped", "problem", p.String())
	}
	if err != nil {
		log.Error("channel names not loaded", "err", err)
		return
	}
	d.names.Set(t)
	if t.Len() > 0 {
		log.Info("channel names loaded", "file", path, "names", t.Len())
	}
}

// config returns the configuration in force.
func (d *daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// stop stops the components in reverse order within the shutdown timeout.
func (d *daemon) stop(log *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Global.ShutdownTimeout.Std())
	defer cancel()
	code := 0
	parts := d.components()
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if err := p.c.Stop(ctx); err != nil {
			log.Error("stop failed", "part", p.name, "err", err)
			code = 1
		}
	}
	if ctx.Err() != nil {
		log.Warn("drain took longer than shutdown_timeout; exiting anyway")
		code = 1
	}
	log.Info("satd stopped")
	return code
}

// limitedGCPercent is the collector's GOGC when global.memory_limit is set:
// the heap may grow by half its live size between collections instead of
// doubling. The steady paths (ECM, stream fan-out) allocate nothing, so the
// extra collections cost only during bursts — a 10,000-listener auth storm
// spent about 3 % of its CPU in the collector at 100 — while the burst's
// peak RSS falls by about the headroom (48.7 to 42.2 MB in that storm).
const limitedGCPercent = 50

// applyMemoryLimit sets the Go runtime's soft memory limit, and with it a
// tighter GOGC, unless the environment already did.
func applyMemoryLimit(g config.Global, log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		if g.MemoryLimit > 0 {
			debug.SetGCPercent(limitedGCPercent)
		} else {
			debug.SetGCPercent(100) // a reload may have removed the limit
		}
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Debug("memory limit from GOMEMLIMIT environment", "value", os.Getenv("GOMEMLIMIT"))
		return
	}
	if g.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(g.MemoryLimit))
		log.Debug("memory limit set", "bytes", int64(g.MemoryLimit))
	}
}

// waitTimeout is a helper for components: it waits for done or the context.
func waitTimeout(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
