package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/update"
)

func init() {
	registerComponent(componentSpec{name: "update", order: 80, build: buildUpdate})
	register("launch", "supervise satd for binary-only updates: start the current build, confirm or roll back a new one", runLaunch)
}

// readyReaders is implemented by components that own card readers; the
// post-update health checks ask it which readers are ready.
type readyReaders interface{ ReadyReaders() []string }

// upMounts is implemented by components that serve stream mounts.
type upMounts interface{ UpMounts() []string }

// updateComponent polls for updates, runs the post-update health checks
// and gives the web form its Manager.
type updateComponent struct {
	m        *update.Manager
	hawkbit  *update.HawkBit // nil: poll the manifest URL
	interval time.Duration
	poll     bool
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// updateDir is where downloads and the binary slots live.
func updateDir(g config.Global) string { return filepath.Join(g.StateDir, "update") }

func buildUpdate(e env) (component, error) {
	u := e.cfg.Update
	if len(u.PublicKeys) == 0 || u.Board == "" {
		e.log.Info("updates off: [update] public_keys and board are not set")
		return nil, nil
	}
	dir := updateDir(e.cfg.Global)
	refuse := ""
	if u.Install == "binary" && os.Getenv(update.LaunchedEnv) == "" {
		refuse = "satd does not run under `satd launch`, which must restart it after a binary update"
		e.log.Warn("binary updates refused", "why", refuse)
	}
	// Under satd launch this process runs the current executable, or the
	// factory one while the update directory has none.
	running, _ := os.Executable()
	m, err := update.New(update.Options{
		Refuse:        refuse,
		Policy:        update.Policy{PublicKeys: u.PublicKeys, Board: u.Board, Running: version, AllowDowngrade: u.AllowDowngrade},
		ManifestURL:   u.URL,
		Dir:           filepath.Join(dir, "work"),
		Kind:          update.Kind(u.Install),
		MaxSize:       int64(u.MaxSize),
		RAUC:          &update.RAUCCommand{Path: u.RAUCCommand[0], Args: u.RAUCCommand[1:]},
		Slots:         update.Slots{Dir: dir, Factory: running},
		ConfigPath:    e.daemon.configPath,
		Health:        daemonHealth{d: e.daemon},
		HealthTimeout: u.HealthTimeout.Std(),
		Restart:       restarter(u, e.log, e.daemon.requestRestart),
		Log:           e.log,
	})
	if err != nil {
		return nil, err
	}
	c := &updateComponent{m: m, interval: u.Interval.Std(), poll: u.Enabled && u.URL != "", log: e.log}
	if u.Enabled && u.HawkBitURL != "" {
		if c.hawkbit, err = newHawkBit(m, u, e.log); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newHawkBit builds the hawkBit DDI client that replaces the URL poller.
func newHawkBit(m *update.Manager, u config.Update, log *slog.Logger) (*update.HawkBit, error) {
	h, err := update.NewHawkBit(m, update.HawkBitOptions{
		Server: u.HawkBitURL, Tenant: u.HawkBitTenant, ControllerID: hawkBitControllerID(u),
		TargetToken: u.HawkBitTargetToken, GatewayToken: u.HawkBitGatewayToken,
		Attributes: map[string]string{"board": u.Board, "version": version, "install": u.Install},
		Log:        log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("updates from hawkBit", "controller", h.Base())
	return h, nil
}

// hawkBitControllerID is the configured controller id, or board-hostname.
func hawkBitControllerID(u config.Update) string {
	if u.HawkBitControllerID != "" {
		return u.HawkBitControllerID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return u.Board + "-" + host
}

// restarter returns what happens after an install or a failed health
// check: a reboot for RAUC; for a binary update, the daemon's own restart
// (every component stopped, then an exit after which `satd launch` starts
// the executable now current).
func restarter(u config.Update, log *slog.Logger, restart func() error) func(rollback bool) {
	return func(rollback bool) {
		if u.Install == "rauc" {
			log.Warn("rebooting", "rollback", rollback, "command", u.RebootCommand)
			if out, err := exec.Command(u.RebootCommand[0], u.RebootCommand[1:]...).CombinedOutput(); err != nil {
				log.Error("reboot failed", "err", err, "output", string(out))
			}
			return
		}
		log.Warn("stopping so that satd launch starts the new executable", "rollback", rollback)
		restart()
	}
}

func (c *updateComponent) Start(ctx context.Context) error {
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.m.ConfirmBoot(ctx); err != nil {
			c.log.Error("post-update check", "err", err)
		}
		switch {
		case c.hawkbit != nil:
			c.hawkbit.Run(ctx)
		case c.poll:
			c.m.Poll(ctx, c.interval)
		}
	}()
	return nil
}

// Reload keeps the running manager: key, board and URL changes take effect
// at the next start, so that an update in flight is not cut off.
func (c *updateComponent) Reload(cfg *config.Config) error { return nil }

func (c *updateComponent) Stop(ctx context.Context) error {
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	return waitTimeout(ctx, done)
}

// updateManager returns the update manager for the web form, or nil when
// updates are off.
func (d *daemon) updateManager() *update.Manager {
	if c, ok := part[*updateComponent](d); ok {
		return c.m
	}
	return nil
}

// daemonHealth feeds the post-update health checks from the running daemon.
type daemonHealth struct{ d *daemon }

var _ update.HealthSource = daemonHealth{}

// ConfigLoaded is nil: the daemon only starts on a loaded, valid configuration.
func (h daemonHealth) ConfigLoaded() error {
	if h.d.cfg == nil {
		return errors.New("no configuration in force")
	}
	return nil
}

func (h daemonHealth) WebURL() string {
	w := h.d.cfg.Web
	if !w.Enabled {
		return ""
	}
	host, port, err := net.SplitHostPort(w.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// ReadyReaders lists the readers whose card (or file) is ready now, from
// the readers component, plus those of components implementing readyReaders.
func (h daemonHealth) ReadyReaders() []string {
	var out []string
	for _, r := range h.d.readers() {
		if r.State == "ready" {
			out = append(out, r.Label)
		}
	}
	return append(out, collect(h.d.components(), readyReaders.ReadyReaders)...)
}

// UpMounts lists the stream mounts whose source is fresh (data arriving),
// plus those of components implementing upMounts.
func (h daemonHealth) UpMounts() []string {
	var out []string
	st, _ := h.d.streamStats()
	for _, m := range st.Mounts {
		if m.Fresh {
			out = append(out, m.Name)
		}
	}
	return append(out, collect(h.d.components(), upMounts.UpMounts)...)
}

// collect gathers the names that the components implementing T report.
func collect[T any](parts []namedComponent, names func(T) []string) []string {
	var out []string
	for _, p := range parts {
		if c, ok := p.c.(T); ok {
			out = append(out, names(c)...)
		}
	}
	return out
}

// runLaunch is `satd launch`: the supervisor of binary-only updates.
func runLaunch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("launch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", updateDir(config.DefaultGlobal()), "update directory ([global] state_dir + /update)")
	factory := fs.String("factory", "", "executable to run when the update directory has none (default: this one)")
	attempts := fs.Int("attempts", 3, "starts a new build gets to pass its health checks before it is rolled back")
	timeout := fs.Duration("health-timeout", 5*time.Minute, "how long a new build may run without confirming (longer than [update] health_timeout)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: satd launch [flags] [-- daemon flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *factory == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "launch:", err)
			return 1
		}
		*factory = exe
	}
	l := &update.Launcher{Slots: update.Slots{Dir: *dir}, Factory: *factory, Args: fs.Args(), MaxAttempts: *attempts,
		HealthTimeout: *timeout, Backoff: time.Second, Log: slog.New(slog.NewTextHandler(stderr, nil)).With("component", "launch")}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	l.Forward = hup
	if err := l.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "launch:", err)
		return 1
	}
	return 0
}
