// Package web is satd's device web form: Status, Load balancer,
// Configuration, Log and System pages rendered on the server by Go functions
// through a small escaping HTML writer (htmlw.go), a JSON API mirroring them under /api/, and Prometheus
// metrics at /metrics.
//
// The daemon's parts are seen through the small interfaces of sources.go, so
// the package knows no reader, balancer or relay. Every state change is a
// POST behind a session cookie (HttpOnly, SameSite=Strict), Go's
// CrossOriginProtection and a Host allow-list against DNS rebinding.
// Settings that can cut the browser off are applied with confirm-or-revert.
package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/fdlimit"
)

// Options wires a Server to the daemon.
type Options struct {
	// Config returns the configuration in force.
	Config func() *config.Config
	// ConfigPath is the file the form saves to (atomically, config.Save).
	ConfigPath string
	// Apply puts a saved, valid configuration in force without a restart:
	// the daemon's apply path, which also calls the server's Reload. It
	// returns every component's outcome; a save with a failed component is
	// rolled back.
	Apply func(*config.Config) ApplyResult
	// Restart restarts the daemon (System page); nil hides the action.
	Restart func() error

	// Names is the channel names table (nil: none); an OSCam import with
	// oscam.srvid, oscam.srvid2 or lamedb replaces it on Apply.
	Names *channels.Names

	Status   StatusSource
	Balancer BalancerView
	Updater  Updater
	// Readers restarts readers and resets their counters (nil: the
	// reader list offers no restart).
	Readers ReaderControl
	Logs    *LogRing // nil: the Log page says the tail is not connected
	Metrics *Metrics // nil: a private set is made
	Log     *slog.Logger
	Version string

	// ConfirmTimeout overrides web.confirm_timeout (tests).
	ConfirmTimeout time.Duration
	// Now is the clock of sessions and the login throttle (tests).
	Now func() time.Time
	// MaxUpload caps restore and firmware uploads (default 64 MiB).
	MaxUpload int64
	// Limits overrides the connection bounds (tests); zero fields keep
	// the defaults of DefaultLimits.
	Limits Limits
}

// Limits are the web server's connection bounds (docs/web.md, "Limits").
type Limits struct {
	// ReadHeader is how long a client may take to send a request's head.
	ReadHeader time.Duration
	// Read is how long it may take to send the whole request, body
	// included; an upload after login gets Upload instead.
	Read time.Duration
	// Write is how long an answer may take to go out (log streams end
	// before it).
	Write time.Duration
	// Idle is how long a kept-alive connection may wait for its next request.
	Idle time.Duration
	// Upload is the read and write deadline of a restore, import or
	// firmware upload, which starts after the session is checked.
	Upload time.Duration
	// HeaderBytes caps a request's head.
	HeaderBytes int
	// Conns is the most connections open at once; more wait in the
	// kernel's backlog (default: the web share of the descriptor limit).
	Conns int
	// PerClient is the most connections one client address (an IPv6 /64)
	// holds open; more are closed at once. A browser opens about 6 per
	// site, more with several tabs and its idle keep-alive pool.
	PerClient int
}

// DefaultLimits returns the web server's bounds.
func DefaultLimits() Limits {
	return Limits{
		ReadHeader:  10 * time.Second,
		Read:        20 * time.Second,
		Write:       60 * time.Second,
		Idle:        60 * time.Second,
		Upload:      10 * time.Minute,
		HeaderBytes: 16 << 10,
		Conns:       fdlimit.Share(fdlimit.ShareWeb),
		PerClient:   64,
	}
}

// or returns l with its zero fields taken from d.
func (l Limits) or(d Limits) Limits {
	return Limits{
		ReadHeader: cmp.Or(l.ReadHeader, d.ReadHeader), Read: cmp.Or(l.Read, d.Read), Write: cmp.Or(l.Write, d.Write),
		Idle: cmp.Or(l.Idle, d.Idle), Upload: cmp.Or(l.Upload, d.Upload),
		HeaderBytes: cmp.Or(l.HeaderBytes, d.HeaderBytes), Conns: cmp.Or(l.Conns, d.Conns), PerClient: cmp.Or(l.PerClient, d.PerClient),
	}
}

func (l Limits) server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeader, ReadTimeout: l.Read, WriteTimeout: l.Write,
		IdleTimeout: l.Idle, MaxHeaderBytes: l.HeaderBytes}
}

// Server is the web form.
type Server struct {
	opt     Options
	started time.Time
	pw      *passwordStore
	sess    *sessions
	thr     *throttle
	hash    *hashGate
	handler http.Handler
	guard   *guard
	confirm confirmer

	applyMu sync.Mutex // one save-and-apply at a time
	limits  Limits
	// restartNeeded is the outcome of the last apply: its components that
	// need a restart make the banner of every page.
	restartNeeded atomic.Pointer[ApplyResult]
	// pendingNames is the names table of an import not applied yet.
	pendingNames atomic.Pointer[channels.Table]

	lmu   sync.Mutex
	srv   *http.Server
	addr  string // listen address in force
	bound string // actual address (port 0 resolved)
}

// New makes a Server; it does not listen until Start.
func New(opt Options) (*Server, error) {
	if opt.Config == nil || opt.Apply == nil {
		return nil, errors.New("web: Options.Config and Options.Apply are required")
	}
	if opt.Status == nil {
		opt.Status = noStatus{}
	}
	if opt.Balancer == nil {
		opt.Balancer = noBalancer{}
	}
	if opt.Updater == nil {
		opt.Updater = noUpdater{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxUpload == 0 {
		opt.MaxUpload = 64 << 20
	}
	cfg := opt.Config()
	s := &Server{
		limits:  opt.Limits.or(DefaultLimits()),
		opt:     opt,
		started: opt.Now(),
		pw:      newPasswordStore(passwordPath(cfg)),
		sess:    newSessions(opt.Now),
		thr:     &throttle{failures: map[string]*failRecord{}, now: opt.Now},
		hash:    newHashGate(),
		guard:   &guard{},
	}
	s.confirm.s = s
	s.pw.onDamaged = func(path string, err error, code string) {
		opt.Log.Error("web password file is damaged: logins are refused until a new password is set at /setup (from loopback, or elsewhere with this setup code)",
			"file", path, "err", err, "setup_code", code)
	}
	s.configure(cfg)
	if err := s.sess.restore(sessionsPath(cfg)); err != nil {
		opt.Log.Warn("web sessions not carried over the restart", "err", err)
	}
	s.handler = s.routes()
	return s, nil
}

// sessionsPath is where the logins wait while satd restarts.
func sessionsPath(cfg *config.Config) string {
	return filepath.Join(cfg.Global.StateDir, "web-sessions")
}

// passwordPath is where the password hash lives.
func passwordPath(cfg *config.Config) string {
	if cfg.Web.PasswordFile != "" {
		return cfg.Web.PasswordFile
	}
	return filepath.Join(cfg.Global.StateDir, "web-password")
}

// configure takes the [web] settings that need no listener change.
func (s *Server) configure(cfg *config.Config) {
	w := cfg.Web
	s.sess.setLimits(w.SessionLifetime.Std(), w.IdleTimeout.Std())
	s.thr.setLimits(w.LoginAttempts, w.LoginLockout.Std())
	s.guard.update(w)
}

// Handler returns the whole site with its guards, for tests and for
// embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// SetupCode returns the one-time code that lets a non-loopback browser set
// the first password, or "" when a password is already set. The daemon
// prints it to the log.
func (s *Server) SetupCode() string {
	if s.pw.isSet() {
		return ""
	}
	return s.pw.newSetupCode()
}

// Start listens on web.listen and serves until Stop. It does not block.
func (s *Server) Start(ctx context.Context) error {
	return s.listen(s.opt.Config().Web.Listen)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.bound
}

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", addr, err)
	}
	srv := s.limits.server(s.handler)
	ln = fdlimit.Wrap(ln, s.limits.Conns).PerPeer(s.limits.PerClient)
	s.lmu.Lock()
	old := s.srv
	s.srv, s.addr, s.bound = srv, addr, ln.Addr().String()
	s.lmu.Unlock()
	go srv.Serve(ln)
	if old != nil {
		// The old listener closes at once; requests in flight (the one that
		// asked for the move, a log stream) finish in the background.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if old.Shutdown(ctx) != nil {
				old.Close()
			}
		}()
	}
	s.opt.Log.Info("web form listening", "addr", ln.Addr().String())
	return nil
}

// Reload applies a new configuration: session and login limits, the Host
// and client allow-lists, and the listen address (moved without dropping
// the requests in flight). It is called by the daemon's apply path.
func (s *Server) Reload(cfg *config.Config) error {
	s.configure(cfg)
	s.lmu.Lock()
	running, same := s.srv != nil, s.addr == cfg.Web.Listen
	s.lmu.Unlock()
	if !running || same {
		return nil
	}
	return s.listen(cfg.Web.Listen)
}

// Stop closes the listener and waits for requests within ctx.
func (s *Server) Stop(ctx context.Context) error {
	s.confirm.stop()
	s.lmu.Lock()
	srv := s.srv
	s.srv = nil
	s.lmu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	// Saved after the last request, so that a login made meanwhile is kept.
	if serr := s.sess.save(sessionsPath(s.opt.Config())); serr != nil {
		s.opt.Log.Warn("web sessions not saved for the restart", "err", serr)
	}
	return err
}
