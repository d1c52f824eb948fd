package dvbapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"satd.dev/satd/internal/atomicfile"
	"satd.dev/satd/internal/fdlimit"
)

// Options configure a Server.
type Options struct {
	// Solver answers ECMs; required.
	Solver ECMSolver
	// Log receives connection and programme events; nil discards them.
	Log *slog.Logger
	// ServerName is the SERVER_INFO string (default "satd").
	ServerName string
	// ECMInfoPath is the file enigma2 skins read (/tmp/ecm.info); empty
	// disables it.
	ECMInfoPath string
	// Devices, when set, puts Unix-socket and client-mode connections in
	// local-device mode (enigma2 boxes, OSCam boxtype dreambox).
	Devices Devices
	// Allow is the TCP allow-list; empty admits loopback only.
	Allow []netip.Prefix
	// FilterTimeout is how long an ECM PID may stay silent (default 3 s);
	// AnswerTimeout how long an answer may take (default 6 s); a failed
	// cycle is retried after RetryMin doubling up to RetryMax.
	FilterTimeout, AnswerTimeout, RetryMin, RetryMax time.Duration
	// MaxConns caps the connections served at once (default 64); further
	// clients are refused at accept.
	MaxConns int
	// HandshakeTimeout closes a connection that sends no complete message
	// within it (default 60 s). A connection that has spoken is never
	// closed for idling: tvheadend stays silent while nothing is tuned,
	// and OSCam keeps such clients.
	HandshakeTimeout time.Duration
	// Protocol0Grace is how long a CA PMT that arrives before
	// CLIENT_INFO waits for one before the connection speaks protocol 0
	// (default 1 s).
	Protocol0Grace time.Duration
	// ConstantCWOnce writes an answer from a reader that ignores ECMs
	// (ECMAnswer.NoECM) like any other: only changed halves, as OSCam
	// does. The default re-sends both halves on every new ECM, because
	// tvheadend drops its keys when ECMs change and no key follows.
	ConstantCWOnce bool
	// LogInterval is the per-connection, per-kind log rate: at most one
	// line per kind per interval, with a count of those held back
	// (default 10 s).
	LogInterval time.Duration
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ServerName == "" {
		o.ServerName = "satd"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FilterTimeout, 3*time.Second)
	def(&o.AnswerTimeout, 6*time.Second)
	def(&o.RetryMin, time.Second)
	def(&o.RetryMax, 30*time.Second)
	def(&o.HandshakeTimeout, time.Minute)
	def(&o.Protocol0Grace, time.Second)
	def(&o.LogInterval, 10*time.Second)
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
}

// connLogBurst is how many connect (and close) lines per kind the server
// writes per LogInterval before it counts them instead.
const connLogBurst = 16

// DefaultMaxConns is the default connection cap. Receivers open few:
// tvheadend one per CA client, enigma2 one per service on camd.socket
// (at most its tuners' services); 64 leaves room for all of them.
const DefaultMaxConns = 64

// Server serves dvbapi clients on any number of transports.
type Server struct {
	opt     Options
	cache   channelCache
	ecmFile *ecmInfoFile
	refused *logLimiter // accept-time refusals, rate-limited
	connLog *logLimiter // connect and close lines of every connection

	mu        sync.Mutex
	allow     []netip.Prefix
	listeners []net.Listener
	conns     map[*conn]struct{}
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
	nextID    int
}

// NewServer returns a Server; it serves nothing until a transport is added.
func NewServer(opt Options) *Server {
	opt.defaults()
	s := &Server{opt: opt, allow: opt.Allow, conns: map[*conn]struct{}{}, done: make(chan struct{})}
	s.cache.m = map[progID]cacheEntry{}
	s.ecmFile = newECMInfoFile(opt.ECMInfoPath, opt.Log)
	s.refused = newLogLimiter(opt.Log, opt.LogInterval, 1)
	s.connLog = newLogLimiter(opt.Log, opt.LogInterval, connLogBurst)
	return s
}

// SetAllow replaces the TCP allow-list (configuration reload).
func (s *Server) SetAllow(allow []netip.Prefix) {
	s.mu.Lock()
	s.allow = allow
	s.mu.Unlock()
}

func (s *Server) allowed(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return true // Unix sockets are protected by the file system
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.allow) == 0 {
		return ip.IsLoopback()
	}
	for _, p := range s.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ListenTCP serves network clients (tvheadend, VDR, minisatip) on addr.
func (s *Server) ListenTCP(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dvbapi listen %s: %w", addr, err)
	}
	s.serveListener(l, false)
	return l.Addr(), nil
}

// ListenUnix serves local clients on the Unix socket path (/tmp/camd.socket),
// replacing a stale socket file.
func (s *Server) ListenUnix(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("dvbapi listen %s: %w", path, err)
	}
	os.Chmod(path, 0o777)
	s.serveListener(l, true)
	return nil
}

func (s *Server) serveListener(l net.Listener, local bool) {
	// At most dvbapi's share of the descriptors: a flood here cannot take
	// the ones the web form and the stream relay accept with.
	l = fdlimit.Wrap(l, fdlimit.Share(fdlimit.ShareDVBAPI))
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				if s.isClosed() {
					return
				}
				s.opt.Log.Warn("accept failed", "listener", l.Addr().String(), "err", err)
				select {
				case <-time.After(100 * time.Millisecond):
				case <-s.done:
					return
				}
				continue
			}
			if !s.allowed(nc.RemoteAddr()) {
				s.refused.log(slog.LevelWarn, "client refused: not in the allow-list", "peer", nc.RemoteAddr().String())
				nc.Close()
				continue
			}
			c, err := s.register(nc, local)
			if err != nil {
				s.refused.log(slog.LevelWarn, "client refused", "peer", nc.RemoteAddr().String(), "reason", err.Error())
				nc.Close()
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.run(c)
			}()
		}
	}()
}

// Connect runs client mode: it connects to enigma2's listen socket
// (/tmp/.listen.camd.socket), serves the connection, and reconnects every
// retry (1 s) while the socket is absent or after it closes, until Close.
func (s *Server) Connect(path string, retry time.Duration) {
	if retry <= 0 {
		retry = time.Second
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		logged := false
		for !s.isClosed() {
			nc, err := net.Dial("unix", path)
			if err == nil {
				logged = false
				// satd dialled enigma2: an idle box sends nothing for
				// hours, so no handshake timeout applies.
				if c, err := s.register(nc, true); err == nil {
					c.dialled = true
					s.run(c)
				} else {
					nc.Close()
				}
			} else if !logged {
				s.opt.Log.Info("enigma2 listen socket not available; retrying every second", "path", path, "err", err)
				logged = true
			}
			select {
			case <-time.After(retry):
			case <-s.done:
				return
			}
		}
	}()
}

// ErrTooManyConns refuses a client beyond Options.MaxConns.
var ErrTooManyConns = errors.New("dvbapi: connection limit reached")

// ServeConn serves one connection until it closes. local selects
// local-device mode when the Server has Devices.
func (s *Server) ServeConn(nc net.Conn, local bool) error {
	c, err := s.register(nc, local)
	if err != nil {
		nc.Close()
		return err
	}
	return s.run(c)
}

// register admits a connection: refused when the server is closed or
// MaxConns connections are open (counted here, before its goroutine
// starts, so a burst of accepts cannot overshoot the cap).
func (s *Server) register(nc net.Conn, local bool) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("dvbapi: server closed")
	}
	if len(s.conns) >= s.opt.MaxConns {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyConns, s.opt.MaxConns)
	}
	s.nextID++
	peer := peerName(nc)
	log := s.opt.Log.With("conn", s.nextID, "peer", peer)
	var devs Devices
	if local {
		devs = s.opt.Devices
	}
	c := newConn(s, nc, log, devs)
	c.id, c.peer = s.nextID, peer
	s.conns[c] = struct{}{}
	return c, nil
}

// run serves a registered connection and forgets it when it closes.
func (s *Server) run(c *conn) error {
	s.connLog.logTo(c.log, slog.LevelInfo, "client connected")
	err := c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	return err
}

func peerName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		return "unix:" + a.String()
	}
	return "unix"
}

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the listeners and closes every connection (which stops their
// programmes), waiting until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for _, l := range s.listeners {
			l.Close()
			if ul, ok := l.(*net.UnixListener); ok {
				_ = ul // net removes the socket file on Close
			}
		}
		for c := range s.conns {
			go c.close(ErrServerClosing)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.ecmFile.close(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cacheEntry is the channel cache's last good ECM PID for a programme.
type cacheEntry struct {
	caid, pid uint16
	chid      uint16
	chidSet   bool
}

// channelCache remembers per programme identity the CAID/PID/chid that
// last produced a CW (OSCam's oscam.ccache), so a zap back starts there.
type channelCache struct {
	mu sync.Mutex
	m  map[progID]cacheEntry
}

func cacheKey(id progID) progID {
	return progID{program: id.program, pmtPID: id.pmtPID, namespace: id.namespace, tsid: id.tsid, onid: id.onid}
}

func (c *channelCache) get(id progID) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[cacheKey(id)]
	return e, ok
}

func (c *channelCache) put(id progID, e *ecmPID) {
	v := cacheEntry{caid: e.CAID, pid: e.PID, chid: e.chid, chidSet: e.chidSet}
	k := cacheKey(id)
	c.mu.Lock()
	if old, ok := c.m[k]; !ok || old != v {
		if len(c.m) >= 4096 {
			clear(c.m)
		}
		c.m[k] = v
	}
	c.mu.Unlock()
}

// ecmInfoFile writes /tmp/ecm.info for the programme that got the latest
// CW, from its own goroutine so the CW path does no file I/O.
type ecmInfoFile struct {
	path  string
	log   *slog.Logger
	mu    sync.Mutex
	owner *programme
	info  ECMInfo
	chid  uint16
	dirty bool
	wake  chan struct{}
	done  chan struct{}
}

func newECMInfoFile(path string, log *slog.Logger) *ecmInfoFile {
	f := &ecmInfoFile{path: path, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if path != "" {
		go f.loop()
	}
	return f
}

func (f *ecmInfoFile) set(p *programme, e *ECMInfo, chid uint16) {
	if f.path == "" {
		return
	}
	f.mu.Lock()
	f.owner, f.info, f.chid, f.dirty = p, *e, chid, true
	f.mu.Unlock()
	f.signal()
}

func (f *ecmInfoFile) clear(p *programme) {
	if f.path == "" {
		return
	}
	f.mu.Lock()
	mine := f.owner == p
	if mine {
		f.owner, f.dirty = nil, true
	}
	f.mu.Unlock()
	if mine {
		f.signal()
	}
}

func (f *ecmInfoFile) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *ecmInfoFile) close() {
	if f.path != "" {
		select {
		case <-f.done:
		default:
			close(f.done)
		}
	}
}

func (f *ecmInfoFile) loop() {
	for {
		select {
		case <-f.done:
			return
		case <-f.wake:
		}
		f.mu.Lock()
		owner, info, chid, dirty := f.owner, f.info, f.chid, f.dirty
		f.dirty = false
		f.mu.Unlock()
		if !dirty {
			continue
		}
		if owner == nil {
			if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
				f.log.Warn("remove ecm.info", "err", err)
			}
			continue
		}
		if err := atomicfile.WriteFile(f.path, []byte(FormatECMInfo(&info, chid)), 0o644); err != nil {
			f.log.Warn("write ecm.info", "path", f.path, "err", err)
		}
	}
}

// FormatECMInfo renders /tmp/ecm.info in OSCam's default layout.
func FormatECMInfo(e *ECMInfo, chid uint16) string {
	var b strings.Builder
	fmt.Fprintf(&b, "system: %s\n", e.System)
	fmt.Fprintf(&b, "caid: 0x%04X\npid: 0x%04X\nprov: 0x%06X\nchid: 0x%04X\n", e.CAID, e.PID, e.PRID, chid)
	fmt.Fprintf(&b, "reader: %s\nfrom: %s\nprotocol: %s\nhops: %d\n", e.Reader, e.Source, e.Protocol, e.Hops)
	fmt.Fprintf(&b, "ecm time: %d.%03d\n", e.TimeMs/1000, e.TimeMs%1000)
	return b.String()
}
