// Package netstream is satd's LAN audio relay: it pulls an internet-radio
// stream from an ordered list of Icecast/SHOUTcast upstreams (or takes an
// Icecast PUT/SOURCE push, or loops a local file) and serves it to many LAN
// listeners. It is built to survive what breaks Icecast 2.4 relays: ingest
// loss (listeners get silence frames instead of a disconnect), reconnect
// storms (large accept backlog, no per-listener goroutine, token bucket) and
// slow auth backends (cached, coalesced, bounded, breaker-protected URL auth
// that never answers 401 for an infrastructure problem).
package netstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("netstream: server closed")

// Server is the relay: one listen socket, the mounts, the writer shards and
// the admission gates.
type Server struct {
	cfgp atomic.Pointer[Config]
	cfg  Config // the configuration at construction; immutable fields only
	log  *slog.Logger
	fan  *fanout

	mu      sync.Mutex
	mounts  atomic.Pointer[map[string]*mount]
	ln      net.Listener
	sockets []boundSocket // listen-socket tables, in order
	cert    atomic.Pointer[tls.Certificate]
	// upstreamTLS is the base TLS configuration for https upstreams (nil =
	// the system's roots); tests set it to trust their own certificate.
	upstreamTLS *tls.Config
	started     time.Time // Icecast's server_start
	base        Config    // the configuration without the mounts relayed from a master
	relayed     []string  // mounts the master lists that the configuration lacks
	ipRules     atomic.Pointer[ipRules]
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	shut        bool // Shutdown ran

	draining atomic.Bool
	nextID   atomic.Uint64
	bucket   tokenBucket
	events   chan listenerEvent
	dropped  atomic.Uint64

	budget     int64        // bytes the admission tables may use (memoryBudget)
	maxClients atomic.Int64 // clients, lowered to what the descriptor limit allows
	hsCap      atomic.Int64 // handshakes, or its size from the memory budget
	hosts      atomic.Pointer[map[string]bool]
	passGate   *peerGate
	hsMu       sync.Mutex
	hsPerAddr  map[string]int // connections in the request phase per client address
	handshakes atomic.Int64
	refused    atomic.Uint64 // connections closed at once: handshake caps reached
	acceptErrs rateLog
	proxyErrs  rateLog // connections closed for a missing or bad PROXY header
	adapt      adaptive
}

// New validates cfg (after filling defaults) and returns a server that is
// not yet listening.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	var problems []string
	cfg.Validate(func(k, msg string) { problems = append(problems, "stream."+k+": "+msg) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("netstream config: %s", strings.Join(problems, "; "))
	}
	s := &Server{cfg: cfg, log: log, events: make(chan listenerEvent, 8192), budget: memoryBudget(),
		passGate: newPeerGate(time.Minute, 4096), hsPerAddr: map[string]int{}}
	s.cfgp.Store(&cfg)
	s.applyLimits(&cfg)
	s.ipRules.Store(newIPRules(&cfg))
	s.fan = newFanout(s, cfg.Writers)
	s.bucket.set(cfg.AdmissionRate, cfg.AdmissionBurst)
	empty := map[string]*mount{}
	s.mounts.Store(&empty)
	return s, nil
}

func (s *Server) conf() *Config { return s.cfgp.Load() }

// Start binds the listen address and serves in the background until
// Shutdown or ctx ends. It logs one "stream: URL" line per mount.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return errors.New("netstream: already started")
	}
	cert, err := loadCertificate(&s.cfg)
	if err != nil {
		return err
	}
	s.cert.Store(cert)
	ln, err := listen(s.cfg.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	s.started = time.Now()
	s.base = s.cfg
	s.ctx, s.cancel = context.WithCancel(ctx)
	if s.sockets, _, err = s.bindSockets(s.cfg.ListenSockets, nil); err != nil {
		_ = ln.Close()
		s.cancel()
		s.ctx = nil
		return err
	}
	s.fan.start()
	mounts := map[string]*mount{}
	for _, mc := range s.cfg.Mounts {
		m := s.newMountLocked(mc)
		mounts[mc.Name] = m
	}
	s.mounts.Store(&mounts)
	s.wg.Add(3)
	go s.acceptLoop(ln, false)
	s.wg.Add(2)
	go s.masterLoop()
	go s.ypLoop()
	go s.tickLoop()
	go s.statsLoop()
	for _, mc := range s.cfg.Mounts {
		s.logMountURLs(mc.Name)
	}
	return nil
}

// logMountURLs logs one "stream: URL" line per socket for a mount.
func (s *Server) logMountURLs(name string) {
	s.log.Info("stream: http://" + s.ln.Addr().String() + name)
	for _, b := range s.sockets {
		scheme := "http://"
		if b.cfg.SSL {
			scheme = "https://"
		}
		s.log.Info("stream: " + scheme + b.ln.Addr().String() + name)
	}
}

// SocketAddrs returns the bound addresses of the listen-socket tables, in
// their order (useful with port 0).
func (s *Server) SocketAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.sockets))
	for i, b := range s.sockets {
		out[i] = b.ln.Addr().String()
	}
	return out
}

// listen binds with the system's maximum accept backlog (Go uses
// net.core.somaxconn), which is what absorbs a reconnect storm.
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netstream: listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve starts the server and blocks until ctx ends, then shuts down with
// the configured drain.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.conf().DrainDelay.Std()+s.conf().DrainWindow.Std()+5*time.Second)
	defer cancel()
	return s.Shutdown(sctx)
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

func (s *Server) port() string {
	_, p, _ := net.SplitHostPort(s.Addr())
	return p
}

func (s *Server) newMountLocked(mc MountConfig) *mount {
	m := newMount(s, mc)
	m.adm.Store(newAdmission(s, mc.Name, mc.Auth))
	m.runSources(s.ctx, mc)
	return m
}

func (s *Server) mount(name string) *mount { return (*s.mounts.Load())[name] }

// Reload applies a new configuration without dropping listeners: mounts are
// added or removed (the removed mount's listeners are closed staggered), a
// mount whose sources changed restarts only its sources, and admission
// changes apply to new listeners. ring-size and writers apply to new mounts
// and the next start only.
func (s *Server) Reload(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(s.withRelayed(cfg)); err != nil {
		return err
	}
	s.base = cfg
	return nil
}

// reloadLocked applies cfg (the configured mounts plus those relayed from
// a master) with s.mu held.
func (s *Server) reloadLocked(cfg Config) error {
	cfg = cfg.WithDefaults()
	var problems []string
	cfg.Validate(func(k, msg string) { problems = append(problems, "stream."+k+": "+msg) })
	if len(problems) > 0 {
		return fmt.Errorf("netstream reload: %s", strings.Join(problems, "; "))
	}
	if s.ctx == nil {
		return errors.New("netstream: reload before start")
	}
	old := s.conf()
	cert, err := loadCertificate(&cfg)
	if err != nil {
		return err
	}
	sockets, drop, err := s.bindSockets(cfg.ListenSockets, s.sockets)
	if err != nil {
		return err
	}
	for _, b := range drop {
		_ = b.ln.Close()
	}
	s.sockets = sockets
	s.cert.Store(cert) // new TLS handshakes use it; established ones keep theirs
	if cfg.Listen != old.Listen {
		ln, err := listen(cfg.Listen)
		if err != nil {
			return err
		}
		_ = s.ln.Close()
		s.ln = ln
		s.wg.Add(1)
		go s.acceptLoop(ln, false)
	}
	cfg.RingSize = s.cfg.RingSize
	s.cfgp.Store(&cfg)
	s.applyLimits(&cfg)
	s.ipRules.Store(newIPRules(&cfg))
	s.bucket.set(cfg.AdmissionRate, cfg.AdmissionBurst)
	cur := *s.mounts.Load()
	next := map[string]*mount{}
	for _, mc := range cfg.Mounts {
		m := cur[mc.Name]
		if m == nil {
			next[mc.Name] = s.newMountLocked(mc)
			s.logMountURLs(mc.Name)
			continue
		}
		prev := m.cfg.Load()
		m.cfg.Store(&mc)
		if !reflect.DeepEqual(prev.Auth, mc.Auth) {
			m.adm.Store(newAdmission(s, mc.Name, mc.Auth))
		}
		if prev.Intro != mc.Intro {
			m.loadIntro(mc.Intro)
		}
		if !slices.Equal(prev.Upstreams, mc.Upstreams) || prev.File != mc.File || prev.Type != mc.Type || prev.OnDemand != mc.OnDemand {
			m.stopSources()
			m.runSources(s.ctx, mc)
		}
		if prev.Title != mc.Title && mc.Title != "" {
			m.setTitle(mc.Title)
		}
		next[mc.Name] = m
	}
	for name, m := range cur {
		if next[name] == nil {
			m.stopSources()
			m.staggerClose(cfg.DrainWindow.Std())
		}
	}
	s.mounts.Store(&next)
	return nil
}

// Shutdown drains: /readyz fails at once, accepting stops after drain-delay,
// then listeners are closed spread over drain-window (shortened to fit ctx).
// A second Shutdown returns at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	started := s.ctx != nil && !s.shut
	s.shut = true
	s.mu.Unlock()
	if !started {
		return nil
	}
	cfg := s.conf()
	sleepCtx(ctx, cfg.DrainDelay.Std())
	s.mu.Lock()
	_ = s.ln.Close()
	for _, b := range s.sockets {
		_ = b.ln.Close()
	}
	s.mu.Unlock()
	window := cfg.DrainWindow.Std()
	if dl, ok := ctx.Deadline(); ok {
		window = min(window, time.Until(dl)-time.Second)
	}
	window = max(window, 0)
	now := time.Now().UnixNano()
	s.fan.each(func(l *listener) { l.closeAt.Store(now + rand.Int64N(int64(window)+1)) })
	for s.fan.lsn.Load() > 0 && sleepCtx(ctx, 50*time.Millisecond) {
	}
	s.fan.stop()
	for _, m := range *s.mounts.Load() {
		m.stopSources()
	}
	s.cancel()
	s.wg.Wait()
	return ctx.Err()
}

func (s *Server) acceptLoop(ln net.Listener, ssl bool) {
	defer s.wg.Done()
	var tcfg *tls.Config
	if ssl {
		tcfg = s.serverTLS()
	}
	for s.waitHandshakeSlot() {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.acceptFailed(err)
			if !sleepCtx(s.ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		ip := clientIP(c)
		// A PROXY protocol sender's connections are judged by the address
		// its header names, once handle has read it.
		proxied := s.ipRules.Load().sendsProxyHeader(ip)
		if !proxied && !s.clientAllowed(c, ip) {
			continue
		}
		if !s.enterHandshake(ip, proxied) {
			s.refused.Add(1)
			c.Close()
			continue
		}
		go s.handle(c, ip, proxied, tcfg)
	}
}

// tickLoop drives every mount's tick. 100 ms keeps silence and partial-slot
// flushes well inside a player's buffer; a faster tick costs an idle relay
// measurable CPU (0.7 % of a core at 50 ms against 0.55 % on the bench VM).
func (s *Server) tickLoop() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var lastAdjust time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			for _, m := range *s.mounts.Load() {
				m.tick(now)
			}
			if now.Sub(lastAdjust) >= time.Second {
				lastAdjust = now
				s.adjust(now, runtime.GOMAXPROCS(0))
			}
		}
	}
}

// capReader limits how many bytes the request head may take.
type capReader struct {
	r io.Reader
	n int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("request head larger than 8 KiB")
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

// brPool holds the readers of heads that need net/http (credentials,
// tokens, sources, admin). 1 KiB: textproto joins longer lines itself, and
// the pool keeps one per concurrent handshake of an auth storm.
var brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

// handle reads one request and dispatches it; ip is the peer's address.
// A proxied connection (from proxy-protocol-from) first has its PROXY
// header read, and is from then on known by the client's address; tcfg is
// set for ssl sockets, whose TLS handshake starts after that header.
// Listener connections are handed to a writer shard and this goroutine
// ends.
func (s *Server) handle(conn net.Conn, ip string, proxied bool, tcfg *tls.Config) {
	var once sync.Once
	release := func() { once.Do(func() { s.leaveHandshake(ip) }) }
	defer release()
	cfg := s.conf()
	_ = conn.SetReadDeadline(time.Now().Add(cfg.HeaderTimeout.Std()))
	bp := headBufs.Get().(*[]byte)
	if proxied {
		client, ok := s.proxyClient(conn, ip, *bp)
		if !ok {
			headBufs.Put(bp)
			conn.Close()
			return
		}
		ip = client // release leaves the client's slot from here on
	}
	if tcfg != nil {
		// The handshake runs on the first read, under header-timeout.
		conn = tls.Server(conn, tcfg)
	}
	n, end, _ := readHead(conn, *bp)
	if end == n && s.handleQuick(conn, (*bp)[:n], ip, proxied) {
		headBufs.Put(bp)
		return
	}
	// Everything but a plain anonymous listener goes through net/http,
	// starting with the bytes already read (a read error shows again).
	read := bytes.NewReader(append([]byte(nil), (*bp)[:n]...))
	headBufs.Put(bp)
	cr := &capReader{r: conn, n: maxHead - n}
	br := brPool.Get().(*bufio.Reader)
	br.Reset(io.MultiReader(read, cr))
	req, err := http.ReadRequest(br)
	if err != nil {
		brPool.Put(br)
		writeSimple(conn, http.StatusBadRequest, nil, "bad request\n")
		conn.Close()
		return
	}
	// The head is in: what follows is bounded by admission (pending checks
	// fail fast beyond the mount's limit), not by the handshake slots.
	release()
	path := req.URL.Path
	switch {
	case path == "/healthz":
		writeSimple(conn, http.StatusOK, nil, bodyFor(req, "ok\n"))
	case path == "/readyz":
		code, why := s.ready(req.URL.Query().Get("mount"))
		writeSimple(conn, code, nil, bodyFor(req, why+"\n"))
	case path == "/status.json" && !s.hostAllowed(req.Host):
		writeSimple(conn, http.StatusMisdirectedRequest, nil, "unknown Host; add it to stream.allowed-hosts\n")
	case path == "/status-json.xsl" && !s.hostAllowed(req.Host):
		writeSimple(conn, http.StatusMisdirectedRequest, nil, "unknown Host; add it to stream.allowed-hosts\n")
	case path == "/status-json.xsl":
		writeSimple(conn, http.StatusOK, []string{"Content-Type: application/json; charset=utf-8", "Access-Control-Allow-Origin: *"},
			bodyFor(req, s.statusJSON()+"\n"))
	case path == "/admin/streamlist.txt":
		s.streamList(conn, req, ip)
	case strings.HasPrefix(path, "/admin/") && path != "/admin/metadata" && s.adminAPI(conn, req, ip):
	case path == "/status.json":
		b, _ := json.Marshal(s.Stats())
		writeSimple(conn, http.StatusOK, []string{"Content-Type: application/json"}, bodyFor(req, string(b)+"\n"))
	case req.Method == http.MethodOptions:
		writeSimple(conn, http.StatusNoContent, []string{
			"Access-Control-Allow-Origin: *",
			"Access-Control-Allow-Methods: GET, HEAD, OPTIONS",
			"Access-Control-Allow-Headers: Icy-MetaData, Range",
			"Access-Control-Max-Age: 600",
		}, "")
	case path == "/admin/metadata":
		s.adminMetadata(conn, req, ip)
	case req.Method == http.MethodPut || req.Method == "SOURCE":
		cr.n = math.MaxInt // the body is an unbounded stream
		s.handleSource(conn, br, req, release, ip)
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
		brPool.Put(br)
		if s.handleListener(conn, req, ip, proxied) {
			return // a shard owns the socket now
		}
		conn.Close()
		return
	default:
		writeSimple(conn, http.StatusMethodNotAllowed, nil, "method not allowed\n")
	}
	conn.Close()
	brPool.Put(br)
}

func bodyFor(req *http.Request, body string) string {
	if req.Method == http.MethodHead {
		return ""
	}
	return body
}

// writeSimple writes a complete HTTP/1.0 response with a text body.
func writeSimple(conn net.Conn, code int, headers []string, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.0 %d %s\r\nServer: satd\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\n", code, http.StatusText(code))
	hasType := false
	for _, h := range headers {
		hasType = hasType || strings.HasPrefix(h, "Content-Type:")
		b.WriteString(h + "\r\n")
	}
	if !hasType {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, b.String())
}

// retryAfter is the jittered Retry-After header for 503 answers.
func (s *Server) retryAfter() string {
	base := s.conf().RetryAfter.Std()
	d := base + rand.N(base+1)
	return "Retry-After: " + strconv.Itoa(int((d+time.Second-1)/time.Second))
}

func (s *Server) unavailable(conn net.Conn, why string) {
	writeSimple(conn, http.StatusServiceUnavailable, []string{s.retryAfter()}, why+"\n")
}

// ready evaluates /readyz for one mount (or all when name is empty).
func (s *Server) ready(name string) (int, string) {
	if s.draining.Load() {
		return http.StatusServiceUnavailable, "draining"
	}
	cfg := s.conf()
	now := time.Now()
	total := int(s.fan.lsn.Load())
	if total*10 >= int(s.maxClients.Load())*9 {
		return http.StatusServiceUnavailable, "listener capacity nearly exhausted"
	}
	if s.bucket.saturated() {
		return http.StatusServiceUnavailable, "admission rate saturated"
	}
	mounts := *s.mounts.Load()
	if name != "" {
		if mounts[name] == nil {
			return http.StatusNotFound, "no such mount"
		}
		mounts = map[string]*mount{name: mounts[name]}
	}
	for _, m := range mounts {
		mc := m.cfg.Load()
		if !m.fresh(now, cfg.ReadyFresh.Std()) {
			return http.StatusServiceUnavailable, "mount " + m.name + ": no fresh audio from the source"
		}
		if mc.MaxListeners > 0 && int(m.listeners.Load())*10 >= mc.MaxListeners*9 {
			return http.StatusServiceUnavailable, "mount " + m.name + ": listener capacity nearly exhausted"
		}
		if a := m.adm.Load(); mc.Auth.OnError == "closed" && a.BreakerOpen() {
			return http.StatusServiceUnavailable, "mount " + m.name + ": auth backend breaker open"
		}
	}
	return http.StatusOK, "ready"
}

// basicAuth encodes user:pass for an Authorization header.
func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func clientIP(conn net.Conn) string {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}

// headVariant is a mount's response head for one metadata interval, valid
// while the stream info, codec and bitrate it was built from are current.
type headVariant struct {
	info    *streamInfo
	codec   uint32
	bitrate int64
	metaint int
	head    []byte
}

// head returns the response head for a listener of m, built once per
// change of the stream's announced values rather than per connection (it
// is shared and must not be modified).
func (m *mount) head(metaint int) []byte {
	i := 0
	if metaint > 0 {
		i = 1
	}
	si, c, br := m.info.Load(), m.codec.Load(), m.bitrate.Load()
	if h := m.heads[i].Load(); h != nil && h.info == si && h.codec == c && h.bitrate == br && h.metaint == metaint {
		return h.head
	}
	h := &headVariant{info: si, codec: c, bitrate: br, metaint: metaint, head: listenerHead(si, codec(c), br, metaint)}
	m.heads[i].Store(h)
	return h.head
}

// headerValue keeps a stream-supplied value on one header line.
var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// listenerHead builds the response head announcing si, codec c and
// bitrate br (bits per second, used when si has none).
func listenerHead(si *streamInfo, c codec, br int64, metaint int) []byte {
	ct := si.contentType
	if ct == "" {
		ct = c.contentType()
	}
	var b strings.Builder
	b.WriteString("HTTP/1.0 200 OK\r\nServer: satd\r\nContent-Type: " + ct + "\r\n")
	b.WriteString("Cache-Control: no-cache, no-store\r\nPragma: no-cache\r\nExpires: Mon, 26 Jul 1997 05:00:00 GMT\r\nConnection: close\r\n")
	b.WriteString("Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: icy-br, icy-description, icy-genre, icy-metaint, icy-name, icy-pub, icy-url\r\n")
	hdr := func(k, v string) {
		if v != "" {
			b.WriteString(k + ": " + headerValue.Replace(v) + "\r\n")
		}
	}
	hdr("icy-name", si.name)
	hdr("icy-description", si.description)
	hdr("icy-genre", si.genre)
	hdr("icy-url", si.url)
	pub := "0"
	if si.public {
		pub = "1"
	}
	hdr("icy-pub", pub)
	kbps := si.bitrate
	if kbps == 0 {
		kbps = int(br / 1000)
	}
	if kbps > 0 {
		hdr("icy-br", strconv.Itoa(kbps))
	}
	if metaint > 0 {
		hdr("icy-metaint", strconv.Itoa(metaint))
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// handleListener admits a GET/HEAD listener from ip and hands its socket to
// a shard. It returns true when conn is spent (closed, its socket now owned
// by the shard).
func (s *Server) handleListener(conn net.Conn, req *http.Request, ip string, proxied bool) bool {
	m := s.mount(req.URL.Path)
	if m == nil {
		writeSimple(conn, http.StatusNotFound, nil, "no such mount\n")
		return false
	}
	user, pass, _ := req.BasicAuth()
	uri, readmit := splitReadmit(req.URL.RequestURI())
	if readmit == "" {
		readmit = readmitCookie(req.Header)
	}
	ar := admitRequest{
		uri: uri, user: user, pass: pass, token: req.URL.Query().Get("token"), readmit: readmit,
		ip: s.ipRules.Load().listenerIP(ip, req.Header), agent: req.UserAgent(), header: req.Header, proxied: proxied,
	}
	return s.serveListener(conn, m, req.Method == http.MethodHead, req.Header.Get("Icy-MetaData") == "1", ar)
}

// handleQuick serves a complete request head that parseQuick accepts when
// it is for an anonymous listener of a mount that needs nothing else from
// the request (no auth, no tokens, no listener reports). It returns false,
// having written nothing, when the request needs net/http's parser.
func (s *Server) handleQuick(conn net.Conn, head []byte, ip string, proxied bool) bool {
	q, ok := parseQuick(head)
	if !ok || q.auth {
		return false
	}
	// No mount has the name of a path handle serves itself (Validate).
	m := s.mount(string(q.path))
	if m == nil {
		return false
	}
	if a, mc := m.adm.Load(), m.cfg.Load(); a == nil || !a.anonymous() || mc.Auth.ListenerRemove != "" || mc.Auth.StatsURL != "" {
		return false
	}
	ar := admitRequest{uri: m.name}
	if proxied {
		ar.ip, ar.proxied = ip, true // kept for /admin/listclients
	}
	if !s.serveListener(conn, m, q.head, q.metadata, ar) {
		conn.Close()
	}
	return true
}

// serveListener admits a listener of m (or answers its HEAD) and hands its
// socket to a shard. It returns true when conn is spent.
func (s *Server) serveListener(conn net.Conn, m *mount, head, metadata bool, ar admitRequest) bool {
	if m.srcDesc.Load() == nil {
		if fb := m.fallback(); fb != nil {
			m = fb // a sourceless mount is served from its fallback, as in Icecast
		}
	}
	cfg, mc := s.conf(), m.cfg.Load()
	switch {
	case s.draining.Load():
		s.unavailable(conn, "draining")
		return false
	case !head && !s.bucket.take():
		s.deferAdmission(conn)
		return false
	case int(s.fan.lsn.Load()) >= int(s.maxClients.Load()), mc.MaxListeners > 0 && int(m.listeners.Load()) >= mc.MaxListeners:
		s.unavailable(conn, "listener limit reached")
		return false
	case !m.playable() && !(mc.OnDemand && m.awaitAudio(cfg.SourceTimeout.Std())):
		s.unavailable(conn, "mount has no source yet")
		return false
	}
	metaint := 0
	if metadata && !(mc.OggNoICY && codec(m.codec.Load()) == codecOgg) {
		metaint = mc.MetaInterval
	}
	if head {
		writeHead(conn, m.head(metaint))
		return false
	}
	ar.clientID = s.nextID.Add(1)
	adm := m.adm.Load()
	v := adm.check(s.ctx, ar)
	switch v.code {
	case admitOK:
	case admitRedirect:
		hdr := []string{"Location: " + v.location}
		if v.cookie != "" {
			hdr = append(hdr, "Set-Cookie: "+v.cookie)
		}
		writeSimple(conn, http.StatusFound, hdr, "re-admission token issued; follow the redirect\n")
		return false
	case admitChallenge:
		writeSimple(conn, http.StatusUnauthorized, []string{`WWW-Authenticate: Basic realm="` + m.name + `"`}, "authentication required\n")
		return false
	case admitDeny:
		writeSimple(conn, http.StatusForbidden, nil, "forbidden\n")
		return false
	default:
		s.unavailable(conn, "busy, retry later")
		return false
	}
	var fd int
	var err error
	if tc, ok := conn.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Time{})
		fd, err = s.tlsPipe(tc)
	} else {
		fd, err = detachSocket(conn, cfg.NotsentLowat)
	}
	if err != nil {
		s.log.Warn("stream: listener socket", "mount", m.name, "err", err)
		return false
	}
	pre, preHead, cursor := m.listenerPre(m.head(metaint), mc.burst(cfg))
	now := time.Now()
	l := &listener{
		m: m, fd: int32(fd), id: uint32(ar.clientID), start: now.UnixNano(),
		cursor: cursor, metaint: metaint, until: metaint, pre: pre, preHead: preHead,
		lastProgress: now.UnixNano(),
	}
	if v.identity != "" || v.cacheKey != "" || mc.Auth.ListenerRemove != "" || mc.Auth.StatsURL != "" || v.provisional || v.readmitted || ar.proxied {
		ar.header, ar.token, ar.readmit = nil, "", ""
		l.who = &session{identity: v.identity, cacheKey: v.cacheKey, req: ar}
	}
	if v.limit > 0 {
		l.limitAt = now.Add(v.limit).UnixNano()
	}
	if d := mc.MaxListenerDur.Std(); d > 0 && (l.limitAt == 0 || now.Add(d).UnixNano() < l.limitAt) {
		l.limitAt = now.Add(d).UnixNano()
	}
	if (v.provisional || v.readmitted) && adm.verify != nil && !adm.verify.add(l, v.readmitted) {
		if v.provisional {
			// Nothing may stream without a decision that can still come.
			_ = syscall.Close(fd)
			return true
		}
		adm.unreported.Add(1) // the token proves a grant; only the report is lost
	}
	m.addListener()
	if mc.OnDemand {
		m.kickDemand()
	}
	m.register(l)
	s.fan.attach(l)
	return true
}

func writeHead(conn net.Conn, head []byte) {
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write(head)
}

// sourceAllowed checks push credentials for mount m.
func (s *Server) sourceAllowed(mc *MountConfig, user, pass string) bool {
	want := mc.Password
	if want == "" {
		want = s.conf().SourcePassword
	}
	return want != "" && user == mc.Username && constEq(pass, want)
}

// handleSource serves an Icecast PUT or legacy SOURCE push from ip.
func (s *Server) handleSource(conn net.Conn, br *bufio.Reader, req *http.Request, release func(), ip string) {
	m := s.mount(req.URL.Path)
	if m == nil {
		writeSimple(conn, http.StatusNotFound, nil, "no such mount\n")
		return
	}
	mc := m.cfg.Load()
	user, pass, _ := req.BasicAuth()
	if !s.checkPassword(conn, ip, "satd source", func() bool { return s.sourceAllowed(mc, user, pass) }) {
		return
	}
	ct := req.Header.Get("Content-Type")
	c := codecForType(ct)
	switch {
	case ct == "" && req.Method == http.MethodPut:
		writeSimple(conn, http.StatusForbidden, nil, "No Content-type given\n")
		return
	case ct == "":
		c = codecMP3 // legacy SOURCE assumes MP3
	case c == codecUnknown:
		writeSimple(conn, http.StatusForbidden, nil, "Content-type not supported\n")
		return
	}
	var once sync.Once
	src := &sourceRef{kind: kindPush, url: "push://" + ip, stop: func() { once.Do(func() { conn.Close() }) }}
	if !m.attach(src, c) {
		writeSimple(conn, http.StatusForbidden, nil, "Mountpoint in use\n")
		return
	}
	release() // a streaming source is bounded by the mounts, not the handshake caps
	defer m.detach(src)
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		_, _ = io.WriteString(conn, "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n")
	}
	_, _ = io.WriteString(conn, "HTTP/1.0 200 OK\r\n\r\n")
	si := infoFromHeaders(textproto.MIMEHeader(req.Header), mc)
	si.contentType = c.contentType()
	m.info.Store(si)
	var body io.Reader = br
	if len(req.TransferEncoding) > 0 || req.ContentLength > 0 {
		body = req.Body
	}
	var strip *icyStripper
	if mi, _ := strconv.Atoi(req.Header.Get("Icy-Metaint")); mi > 0 {
		strip = newICYStripper(mi, m.setTitle)
	}
	buf := make([]byte, 16<<10)
	to := s.conf().SourceTimeout.Std()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(to))
		n, err := body.Read(buf)
		if n > 0 {
			if strip != nil {
				n = strip.strip(buf[:n])
			}
			if !m.ingest(src, buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func constEq(a, b string) bool {
	return len(a) == len(b) && subtleEq([]byte(a), []byte(b))
}

// adminMetadata implements Icecast's /admin/metadata?mode=updinfo for a
// client at ip.
func (s *Server) adminMetadata(conn net.Conn, req *http.Request, ip string) {
	q := req.URL.Query()
	m := s.mount(q.Get("mount"))
	if m == nil {
		writeSimple(conn, http.StatusNotFound, nil, "no such mount\n")
		return
	}
	user, pass, _ := req.BasicAuth()
	cfg := s.conf()
	ok := s.checkPassword(conn, ip, "satd admin", func() bool {
		admin := cfg.AdminPassword != "" && user == cfg.AdminUser && constEq(pass, cfg.AdminPassword)
		return admin || s.sourceAllowed(m.cfg.Load(), user, pass)
	})
	if !ok {
		return
	}
	if q.Get("mode") != "updinfo" {
		writeSimple(conn, http.StatusBadRequest, nil, "only mode=updinfo is supported\n")
		return
	}
	m.setTitle(q.Get("song"))
	writeSimple(conn, http.StatusOK, []string{"Content-Type: text/xml"},
		"<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n")
}

// tokenBucket limits the rate of new listener connections.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (b *tokenBucket) set(rate float64, burst int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate, b.burst = rate, float64(burst)
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, time.Now()
	}
}

func (b *tokenBucket) refill(now time.Time) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

func (b *tokenBucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *tokenBucket) saturated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	return b.tokens < 1
}
