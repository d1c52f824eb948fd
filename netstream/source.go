package netstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sentinel errors of the source side.
var (
	ErrUpstreamStatus = errors.New("upstream answered with an error status")
	ErrPreempted      = errors.New("a higher-priority source feeds the mount")
	ErrUnknownCodec   = errors.New("unsupported content type")
	errSwitchBack     = errors.New("switching back to the preferred upstream")
)

// backoff returns a full-jitter delay: rand(0, min(cap, base*2^attempt)).
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 20)
	if d > limit || d <= 0 {
		d = limit
	}
	return rand.N(d + 1)
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runSources starts the mount's configured sources; cancel stops them.
func (m *mount) runSources(ctx context.Context, cfg MountConfig) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	m.stopSources = func() { cancel(); wg.Wait() }
	if len(cfg.Upstreams) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); m.runUpstreams(ctx, cfg) }()
	}
	if cfg.File != "" {
		wg.Add(1)
		go func() { defer wg.Done(); m.runFile(ctx, cfg) }()
	}
}

// runUpstreams pulls from the ordered upstream list: on each failure it moves
// to the next one after a full-jitter backoff, and while a backup is in use it
// probes the preferred upstream and switches back when it answers.
func (m *mount) runUpstreams(ctx context.Context, cfg MountConfig) {
	idx, attempt := 0, 0
	for ctx.Err() == nil {
		pctx, idle := ctx, context.CancelFunc(func() {})
		if cfg.OnDemand {
			if !m.awaitDemand(ctx) {
				return
			}
			pctx, idle = m.whileWanted(ctx)
		}
		started := time.Now()
		err := m.pull(pctx, cfg, idx)
		idle()
		if ctx.Err() != nil {
			return
		}
		if pctx.Err() != nil { // on demand and nobody listens: let go of the upstream
			m.srv.log.Info("stream: no listeners, on-demand upstream disconnected", "mount", m.name)
			idx, attempt = 0, 0
			continue
		}
		switch {
		case errors.Is(err, errSwitchBack):
			idx, attempt = 0, 0
			continue
		case errors.Is(err, ErrPreempted):
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		if time.Since(started) > 10*time.Second {
			attempt = 0 // it ran fine for a while: start the backoff over
		}
		m.srv.log.Warn("stream: upstream failed", "mount", m.name, "url", redactURL(cfg.Upstreams[idx]), "err", err)
		idx = (idx + 1) % len(cfg.Upstreams)
		d := backoff(cfg.RetryBase.Std(), cfg.RetryMax.Std(), attempt)
		attempt++
		if !sleepCtx(ctx, d) {
			return
		}
	}
}

// awaitDemand waits until the on-demand mount has or awaits a listener.
func (m *mount) awaitDemand(ctx context.Context) bool {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for !m.wanted() {
		select {
		case <-ctx.Done():
			return false
		case <-m.demand:
		case <-t.C:
		}
	}
	return true
}

// whileWanted returns a context that ends once the mount has had no
// listener for demandGrace.
func (m *mount) whileWanted(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var idleSince time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				switch {
				case m.wanted():
					idleSince = time.Time{}
				case idleSince.IsZero():
					idleSince = now
				case now.Sub(idleSince) >= demandGrace:
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// upstreamResp is a parsed upstream response head.
type upstreamResp struct {
	conn   net.Conn
	br     *bufio.Reader
	status int
	header textproto.MIMEHeader
}

// maxUpstreamHead bounds an upstream's status line and headers together: an
// upstream that sends an endless line costs at most this much.
const maxUpstreamHead = 16 << 10

// ErrUpstreamHead is returned for an upstream response head over
// maxUpstreamHead bytes.
var ErrUpstreamHead = errors.New("upstream response head larger than 16 KiB")

// headLimiter lets at most n bytes through until it is lifted (n < 0).
type headLimiter struct {
	r io.Reader
	n int
}

// cause returns ErrUpstreamHead when the limit cut the head (the parser may
// report the cut line as malformed), else err.
func (h *headLimiter) cause(err error) error {
	if h.n == 0 {
		return ErrUpstreamHead
	}
	return err
}

func (h *headLimiter) Read(p []byte) (int, error) {
	if h.n < 0 {
		return h.r.Read(p)
	}
	if h.n == 0 {
		return 0, ErrUpstreamHead
	}
	if len(p) > h.n {
		p = p[:h.n]
	}
	n, err := h.r.Read(p)
	h.n -= n
	return n, err
}

// dialUpstream connects and reads the response head, following up to 5
// http:// redirects. It accepts "ICY 200 OK" (SHOUTcast v1) as HTTP/1.0.
// Errors name the URL without its userinfo.
func dialUpstream(ctx context.Context, raw string, timeout time.Duration, tlsBase *tls.Config) (*upstreamResp, error) {
	for hop := 0; hop < 5; hop++ {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("upstream %q: not an http(s) URL", redactURL(raw))
		}
		shown := redactURL(raw)
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", shown, err)
		}
		if u.Scheme == "https" {
			hctx, cancel := context.WithTimeout(ctx, timeout)
			conn, err = upstreamConn(hctx, conn, u.Hostname(), tlsBase)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("upstream %s: %w", shown, err)
			}
		}
		_ = conn.SetDeadline(time.Now().Add(timeout))
		req := "GET " + u.RequestURI() + " HTTP/1.0\r\nHost: " + u.Host + "\r\nUser-Agent: satd\r\nIcy-MetaData: 1\r\n"
		if u.User != nil {
			pw, _ := u.User.Password()
			req += "Authorization: Basic " + basicAuth(u.User.Username(), pw) + "\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: send request: %w", shown, err)
		}
		lim := &headLimiter{r: conn, n: maxUpstreamHead}
		br := bufio.NewReaderSize(lim, 16<<10)
		tp := textproto.NewReader(br)
		line, err := tp.ReadLine()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: read status: %w", shown, lim.cause(err))
		}
		status, err := parseStatusLine(line)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: %w", shown, err)
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: read headers: %w", shown, lim.cause(err))
		}
		if status == 301 || status == 302 || status == 307 {
			conn.Close()
			loc, err := u.Parse(hdr.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("upstream %s: bad redirect: %w", shown, err)
			}
			raw = loc.String()
			continue
		}
		if status/100 != 2 {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: status %d: %w", shown, status, ErrUpstreamStatus)
		}
		lim.n = -1 // the body is an unbounded stream
		return &upstreamResp{conn: conn, br: br, status: status, header: hdr}, nil
	}
	return nil, fmt.Errorf("upstream %s: too many redirects", redactURL(raw))
}

// parseStatusLine parses "HTTP/1.x NNN reason" or "ICY NNN reason".
func parseStatusLine(line string) (int, error) {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !(strings.HasPrefix(proto, "HTTP/1.") || proto == "ICY") {
		return 0, fmt.Errorf("malformed status line %q", truncate(line, 64))
	}
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return 0, fmt.Errorf("malformed status code in %q", truncate(line, 64))
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// infoFromHeaders reads icy-* (upstream) or ice-* (push source) headers,
// falling back to the mount's configuration.
func infoFromHeaders(h textproto.MIMEHeader, cfg *MountConfig) *streamInfo {
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := h.Get(k); v != "" {
				return v
			}
		}
		return ""
	}
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	si := &streamInfo{
		name:        or(get("Icy-Name", "Ice-Name"), cfg.StreamName),
		description: or(get("Icy-Description", "Ice-Description"), cfg.StreamDescription),
		url:         or(get("Icy-Url", "Ice-Url"), cfg.StreamURL),
		genre:       or(get("Icy-Genre", "Ice-Genre"), cfg.Genre),
		public:      cfg.Public || get("Icy-Pub", "Ice-Public") == "1",
	}
	si.bitrate, _ = strconv.Atoi(get("Icy-Br", "Ice-Bitrate"))
	if si.bitrate == 0 {
		for _, kv := range strings.Split(get("Ice-Audio-Info"), ";") {
			if k, v, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == "bitrate" || k == "ice-bitrate" {
				si.bitrate, _ = strconv.Atoi(v)
			}
		}
	}
	return si
}

// pull streams from upstream idx until it fails, is preempted, or the
// preferred upstream is back.
func (m *mount) pull(ctx context.Context, cfg MountConfig, idx int) error {
	to := m.srv.cfg.SourceTimeout.Std()
	up, err := dialUpstream(ctx, cfg.Upstreams[idx], min(to, 5*time.Second), m.srv.upstreamTLS)
	if err != nil {
		return err
	}
	defer up.conn.Close()
	c := codecForType(cfg.Type)
	if c == codecUnknown {
		c = codecForType(up.header.Get("Content-Type"))
	}
	if c == codecUnknown && up.header.Get("Content-Type") == "" {
		c = codecMP3 // SHOUTcast v1 may omit it
	}
	if c == codecUnknown {
		return fmt.Errorf("upstream %s: %w %q", redactURL(cfg.Upstreams[idx]), ErrUnknownCodec, up.header.Get("Content-Type"))
	}
	var once sync.Once
	stop := func() { once.Do(func() { up.conn.Close() }) }
	src := &sourceRef{kind: kindUpstream, url: redactURL(cfg.Upstreams[idx]), stop: stop}
	if !m.attach(src, c) {
		return ErrPreempted
	}
	defer m.detach(src)
	si := infoFromHeaders(up.header, &cfg)
	si.contentType = c.contentType()
	m.info.Store(si)

	var strip *icyStripper
	if mi, _ := strconv.Atoi(up.header.Get("Icy-Metaint")); mi > 0 {
		strip = newICYStripper(mi, m.setTitle)
	}
	probeCtx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	switched := make(chan struct{})
	if idx > 0 {
		go m.probePreferred(probeCtx, cfg, stop, switched)
	}
	go func() { <-probeCtx.Done(); stop() }()
	buf := make([]byte, 16<<10)
	for {
		_ = up.conn.SetReadDeadline(time.Now().Add(to))
		n, err := up.br.Read(buf)
		if n > 0 {
			if strip != nil {
				n = strip.strip(buf[:n])
			}
			if !m.ingest(src, buf[:n]) {
				return ErrPreempted
			}
		}
		if err != nil {
			select {
			case <-switched:
				return errSwitchBack
			default:
			}
			return fmt.Errorf("upstream %s: read: %w", src.url, err)
		}
	}
}

// probePreferred checks the first upstream every switch-back interval and,
// once it answers 200 with data, stops the current pull so the loop switches
// back to it.
func (m *mount) probePreferred(ctx context.Context, cfg MountConfig, stop func(), switched chan struct{}) {
	for sleepCtx(ctx, cfg.SwitchBack.Std()) {
		up, err := dialUpstream(ctx, cfg.Upstreams[0], 5*time.Second, m.srv.upstreamTLS)
		if err != nil {
			continue
		}
		_ = up.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = up.br.ReadByte()
		up.conn.Close()
		if err == nil {
			m.srv.log.Info("stream: preferred upstream is back, switching", "mount", m.name, "url", redactURL(cfg.Upstreams[0]))
			close(switched)
			stop()
			return
		}
	}
}

// filePacer feeds frames of a local file to the mount in real time.
type filePacer struct {
	m       *mount
	src     *sourceRef
	ctx     context.Context
	start   time.Time
	clock   time.Duration
	stopped bool
}

func (p *filePacer) putFrame(f []byte, fi frameInfo) {
	if p.stopped {
		return
	}
	d := fi.dur
	if d <= 0 {
		d = time.Duration(len(f)) * 8 * time.Second / 128000
	}
	p.clock += d
	if ahead := p.clock - time.Since(p.start); ahead > 200*time.Millisecond {
		if !sleepCtx(p.ctx, ahead-100*time.Millisecond) {
			p.stopped = true
			return
		}
	}
	if !p.m.ingest(p.src, f) {
		p.stopped = true
	}
}

// runFile loops a local file (or reads a FIFO) in real time. It is the
// lowest-priority source: an upstream or a push preempts it.
func (m *mount) runFile(ctx context.Context, cfg MountConfig) {
	c := codecForType(cfg.Type)
	if c == codecUnknown {
		c = codecForExt(cfg.File)
	}
	fr := newFramer(c)
	buf := make([]byte, 16<<10)
	for ctx.Err() == nil {
		src := &sourceRef{kind: kindFile, url: "file://" + cfg.File}
		if !m.attach(src, c) {
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		si := &streamInfo{name: cfg.StreamName, description: cfg.StreamDescription, url: cfg.StreamURL,
			genre: cfg.Genre, public: cfg.Public, contentType: c.contentType()}
		m.info.Store(si)
		pacer := &filePacer{m: m, src: src, ctx: ctx, start: time.Now()}
		err := m.playFile(cfg.File, fr, pacer, buf)
		m.detach(src)
		if err != nil {
			m.srv.log.Warn("stream: file source", "mount", m.name, "file", cfg.File, "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
		}
	}
}

// playFile plays the file until the pacer is stopped, looping at EOF.
func (m *mount) playFile(path string, fr *framer, p *filePacer, buf []byte) error {
	for !p.stopped {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		fr.reset(fr.codec)
		got := 0
		for !p.stopped {
			n, err := f.Read(buf)
			got += n
			fr.write(buf[:n], p)
			if err != nil {
				break
			}
		}
		f.Close()
		if got == 0 {
			return fmt.Errorf("%s: empty", path)
		}
	}
	return nil
}

func codecForExt(path string) codec {
	switch strings.ToLower(path[strings.LastIndexByte(path, '.')+1:]) {
	case "aac", "adts":
		return codecAAC
	case "ogg", "oga", "opus":
		return codecOgg
	}
	return codecMP3
}
