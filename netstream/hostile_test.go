package netstream

// Tests of issue 16's stream rows: each reproduces an attack on the relay
// and asserts the bound that now holds.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUpstreamEndlessHeadLine is row 4: an upstream that sends an endless
// status or header line costs at most maxUpstreamHead bytes of buffering,
// not gigabytes, and the error says what happened.
func TestUpstreamEndlessHeadLine(t *testing.T) {
	cases := []struct{ name, prefix string }{
		{"status line", "HTTP/1.0 200 "},
		{"header line", "HTTP/1.0 200 OK\r\nicy-name: "},
		{"many headers", "HTTP/1.0 200 OK\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				_, _ = io.WriteString(conn, c.prefix)
				chunk := bytes.Repeat([]byte("A"), 32<<10)
				if c.name == "many headers" {
					chunk = bytes.Repeat([]byte("X-A: b\r\n"), 4<<10)
				}
				for range 64 << 10 >> 5 { // up to 64 MiB, stops when the relay hangs up
					if _, err := conn.Write(chunk); err != nil {
						return
					}
				}
			}()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = dialUpstream(context.Background(), "http://"+ln.Addr().String()+"/live", 5*time.Second, nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrUpstreamHead) {
				t.Fatalf("err %v, want ErrUpstreamHead", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d KiB for the hostile head", alloc>>10)
			if alloc > 1<<20 {
				t.Fatalf("allocated %d bytes reading a hostile head, want <= 1 MiB", alloc)
			}
		})
	}
}

// TestAuthDecide is row 5 at the classification level: only a grant or an
// explicit deny is a decision, every other answer is a fault.
func TestAuthDecide(t *testing.T) {
	a := &admission{cfg: DefaultAuth()}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name   string
		status int
		header http.Header
		grant  bool
		fault  bool
	}{
		{"grant", 200, h("icecast-auth-user", "1"), true, false},
		{"grant on 500 (Icecast ignores the status)", 500, h("icecast-auth-user", "1"), true, false},
		{"deny with message", 200, h("icecast-auth-message", "expired"), false, false},
		{"deny with user 0", 200, h("icecast-auth-user", "0"), false, false},
		{"deny 403 with message", 403, h("icecast-auth-message", "no"), false, false},
		{"plain 200 error page", 200, h("Content-Type", "text/html"), false, true},
		{"204 without headers", 204, h(), false, true},
		{"403 without a deny header", 403, h(), false, true},
		{"401 wrong backend credentials", 401, h("WWW-Authenticate", "Basic"), false, true},
		{"407 proxy credentials", 407, h(), false, true},
		{"404", 404, h(), false, true},
		{"408", 408, h(), false, true},
		{"429", 429, h("Retry-After", "5"), false, true},
		{"429 with a message", 429, h("icecast-auth-message", "slow down"), false, true},
		{"500", 500, h(), false, true},
		{"502", 502, h(), false, true},
	}
	for _, c := range cases {
		grant, _, err := a.decide(c.status, c.header, "http://backend/auth")
		if grant != c.grant || (err != nil) != c.fault {
			t.Errorf("%s: grant %v err %v, want grant %v fault %v", c.name, grant, err, c.grant, c.fault)
		}
		if err != nil && !errors.Is(err, ErrBackendFault) {
			t.Errorf("%s: %v is not ErrBackendFault", c.name, err)
		}
	}
}

// garbageBackend answers every connection with bytes that are not HTTP.
func garbageBackend(t *testing.T) string {
	return "http://" + loopbackServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "\x00\x01garbage, not HTTP\r\n\r\n")
		c.Close()
	}) + "/auth"
}

// TestAuthBackendFaultsNeverChallenge is row 5 end to end: whatever the
// backend does short of an explicit deny — 429, 401, 407, 404, 408, 5xx,
// a 200 error page, garbage — a listener on a Basic-challenge mount gets
// the fail-open or fail-closed answer, never 401 or WWW-Authenticate.
func TestAuthBackendFaultsNeverChallenge(t *testing.T) {
	modes := []string{"status:429", "status:401", "status:407", "status:404", "status:408", "status:500", "status:503", "errorpage", "garbage"}
	be := newAuthBackend(t, 0, 100)
	garbage := garbageBackend(t)
	var mounts []MountConfig
	for _, onErr := range []string{"open", "closed"} {
		for i, mode := range modes {
			url := be.url
			if mode == "garbage" {
				url = garbage
			}
			mc := authMount(fmt.Sprintf("/%s%d", onErr, i), url, onErr)
			mc.Auth.Challenge = true
			mc.Auth.FailOpenBurst = 100
			mounts = append(mounts, mc)
		}
	}
	s := startServer(t, testConfig(mounts...))
	waitFor(t, 5*time.Second, "sources", func() bool { return s.mount(mounts[len(mounts)-1].Name).fresh(time.Now(), time.Second) })
	want := map[string]int{"open": 200, "closed": 503}
	for _, onErr := range []string{"open", "closed"} {
		for i, mode := range modes {
			be.mode.Store(mode)
			cl := dialListener(t, s.Addr(), fmt.Sprintf("/%s%d", onErr, i), "Authorization: Basic "+basicAuth("bob", "pw"))
			if cl.code() != want[onErr] || cl.header.Get("WWW-Authenticate") != "" {
				t.Errorf("on-error %s, backend %s: %q WWW-Authenticate %q, want %d without a challenge",
					onErr, mode, cl.status, cl.header.Get("WWW-Authenticate"), want[onErr])
			}
			cl.conn.Close()
		}
	}
	// An explicit deny on a Basic-challenge mount is the one real challenge.
	be.mode.Store("deny")
	mc := authMount("/explicit", be.url, "open")
	mc.Auth.Challenge = true
	if err := s.Reload(testConfigWith(s, mc)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "mount", func() bool { m := s.mount("/explicit"); return m != nil && m.fresh(time.Now(), time.Second) })
	if cl := dialListener(t, s.Addr(), "/explicit", "Authorization: Basic "+basicAuth("eve", "x")); cl.code() != 401 {
		t.Fatalf("explicit deny on a challenge mount: %q, want 401", cl.status)
	}
}

// TestStatusRedactsAndChecksHost is row 6 (relay side): an upstream URL
// with user:password@ shows in /status.json, Stats and the log without its
// userinfo, and /status.json answers only Host values of the box.
func TestStatusRedactsAndChecksHost(t *testing.T) {
	up := newFakeUpstream(t, demoFrames(t), "t")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	mc := DefaultMount()
	mc.Name = "/live"
	mc.Upstreams = []string{"http://relay:s3cret-up@" + deadAddr + "/live", "http://relay:s3cret-up@" + up.addr + "/live"}
	mc.RetryBase, mc.RetryMax = Duration(10*time.Millisecond), Duration(50*time.Millisecond)
	var logBuf syncBuffer
	cfg := testConfig(mc)
	cfg.AllowedHosts = []string{"radio.lan"}
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	waitFor(t, 5*time.Second, "upstream", func() bool { return s.mount("/live").fresh(time.Now(), time.Second) })
	get := func(host string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/status.json", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, host := range []string{s.Addr(), "localhost:8000", "radio.lan"} {
		code, body := get(host)
		if code != 200 || strings.Contains(body, "s3cret") || strings.Contains(body, "relay:") {
			t.Fatalf("Host %s: %d %s", host, code, body)
		}
		if !strings.Contains(body, up.addr) {
			t.Fatalf("status.json lost the upstream address: %s", body)
		}
	}
	if code, _ := get("attacker.example"); code != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %d, want 421", code)
	}
	if st := s.Stats(); strings.Contains(st.Mounts[0].Upstream, "s3cret") {
		t.Fatalf("Stats: %s", st.Mounts[0].Upstream)
	}
	if log := logBuf.String(); strings.Contains(log, "s3cret") || !strings.Contains(log, deadAddr) {
		t.Fatalf("log shows the upstream password or lost the failing URL:\n%s", log)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFailOpenThrottledPerAddress is row 9: 300 parallel listeners from one
// address with distinct query strings while the backend is down get at most
// fail-open-burst admissions; the rest get 503 + Retry-After, none 401.
func TestFailOpenThrottledPerAddress(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String() + "/auth"
	dead.Close()
	mc := authMount("/paid", deadURL, "open")
	s := startServer(t, testConfig(mc))
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	codes := attackParallel(t, s.Addr(), 300, func(i int) string {
		return fmt.Sprintf("GET /paid?session=%d HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", i, basicAuth(fmt.Sprint("user", i), "guess"))
	})
	t.Logf("outcome %v", codes)
	if codes[200] > mc.Auth.FailOpenBurst || codes[401] != 0 || codes[-1] != 0 || codes[200]+codes[503] != 300 {
		t.Fatalf("outcome %v: want at most %d fail-open admissions, the rest 503, no challenge", codes, mc.Auth.FailOpenBurst)
	}
	if got := s.mount("/paid").adm.Load().failOpens.Load(); got > uint64(mc.Auth.FailOpenBurst) {
		t.Fatalf("%d fail-open admissions counted", got)
	}
}

// attackParallel sends n requests at once and returns the status codes
// (-1 counts answers carrying WWW-Authenticate, 0 failed connections).
func attackParallel(t *testing.T, addr string, n int, req func(i int) string) map[int]int {
	t.Helper()
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, challenged := rawRequest(addr, req(i))
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if challenged {
				codes[-1]++
			}
		}()
	}
	wg.Wait()
	return codes
}

// rawRequest sends one request and returns the status code (0 on error)
// and whether the answer carried WWW-Authenticate.
func rawRequest(addr, req string) (int, bool) {
	return rawRequestFrom(nil, addr, req)
}

// rawRequestFrom is rawRequest from a given loopback address.
func rawRequestFrom(local net.IP, addr, req string) (int, bool) {
	d := net.Dialer{Timeout: hangGuard}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, false
	}
	buf := make([]byte, 2048)
	k, _ := io.ReadAtLeast(c, buf, 12)
	code := 0
	fmt.Sscanf(string(buf[:k]), "HTTP/1.0 %d", &code)

	head, _, _ := bytes.Cut(buf[:k], []byte("\r\n\r\n"))
	return code, bytes.Contains(bytes.ToLower(head), []byte("www-authenticate"))
}

// TestPasswordGuessingLockedOut is row 14: guessing the source or admin
// password from one address gets password-failures tries, then 429 +
// Retry-After without the password being compared (the right one is
// refused too), while another address is unaffected.
func TestPasswordGuessingLockedOut(t *testing.T) {
	s := startServer(t, testConfig(fileMount()))
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/demo").fresh(time.Now(), time.Second) })
	cfg := s.conf()
	kinds := map[string]func(pw string) string{
		"source": func(pw string) string {
			return "PUT /demo HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nAuthorization: Basic " + basicAuth("source", pw) + "\r\n\r\n"
		},
		"admin": func(pw string) string {
			return "GET /admin/metadata?mount=/demo&mode=updinfo&song=x HTTP/1.0\r\nAuthorization: Basic " + basicAuth("admin", pw) + "\r\n\r\n"
		},
	}
	from := map[string]net.IP{"source": net.IPv4(127, 0, 0, 3), "admin": net.IPv4(127, 0, 0, 4)}
	if code, _ := rawRequestFrom(from["admin"], s.Addr(), "GET /healthz HTTP/1.0\r\n\r\n"); code != 200 {
		t.Skip("no 127.0.0.3/4 on loopback")
	}
	for name, req := range kinds {
		codes := map[int]int{}
		for i := range 200 {
			code, _ := rawRequestFrom(from[name], s.Addr(), req(fmt.Sprintf("guess%d", i)))
			codes[code]++
		}
		t.Logf("%s: 200 guesses -> %v", name, codes)
		if codes[401] != cfg.PassFailures || codes[429] != 200-cfg.PassFailures {
			t.Fatalf("%s: %v, want %d x 401 then 429", name, codes, cfg.PassFailures)
		}
		right := "hackme"
		if name == "admin" {
			right = "adminpw"
		}
		if code, _ := rawRequestFrom(from[name], s.Addr(), req(right)); code != 429 {
			t.Fatalf("%s: the right password during the lockout got %d, want 429", name, code)
		}
	}
	// Another address is not locked out.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: hangGuard}
	c, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, kinds["admin"]("adminpw"))
	buf := make([]byte, 64)
	k, _ := io.ReadAtLeast(c, buf, 12)
	if !bytes.HasPrefix(buf[:k], []byte("HTTP/1.0 200")) {
		t.Fatalf("other address: %q", buf[:k])
	}
}

// TestDecisionCacheCapped is row 15: distinct query strings fill the
// decision cache only up to cache-size; older entries are evicted.
func TestDecisionCacheCapped(t *testing.T) {
	be := newAuthBackend(t, 0, 100)
	mc := authMount("/paid", be.url, "open")
	mc.Auth.CacheSize = 100
	cfg := testConfig(mc)
	cfg.AdmissionRate, cfg.AdmissionBurst = 100000, 100000
	s := startServer(t, cfg)
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	const n = 1000
	boundedParallel(n, 32, func(i int) {
		rawRequest(s.Addr(), fmt.Sprintf("GET /paid?x=%d HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", i, basicAuth("u", "p")))
	})
	a := s.mount("/paid").adm.Load()
	waitFor(t, 10*time.Second, "backend calls to land", func() bool { return a.wait.Load() == 0 })
	grants := be.calls.Load() // every call grants and is cached, even one that came late
	t.Logf("%d grants, cache %d entries, %d evicted", grants, a.cacheLen(), a.evicted.Load())
	if a.cacheLen() > 100 || int64(a.evicted.Load()) < grants-100 || grants < n/2 {
		t.Fatalf("%d grants: cache %d entries, %d evicted; want <= 100 entries, the rest evicted", grants, a.cacheLen(), a.evicted.Load())
	}
}

// TestLRU checks eviction order and the cap.
func TestLRU(t *testing.T) {
	l := newLRU[int, int](3)
	for i := range 3 {
		l.put(i, i)
	}
	l.get(0) // 1 is now the least recently used
	if !l.put(3, 3) {
		t.Fatal("no eviction at the cap")
	}
	if _, ok := l.get(1); ok {
		t.Fatal("1 should have been evicted")
	}
	for _, k := range []int{0, 2, 3} {
		if _, ok := l.get(k); !ok {
			t.Fatalf("%d evicted", k)
		}
	}
	l.remove(2)
	if l.len() != 2 {
		t.Fatalf("len %d", l.len())
	}
}

// boundedParallel runs fn(0..n-1) with at most width at once.
func boundedParallel(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestIdleConnectionsBounded is row 16: thousands of idle connections from
// one address hold at most `handshakes` descriptors in the relay (the rest
// wait in the kernel's accept queue or are closed at once past the
// per-address share), and a listener from another address is served.
func TestIdleConnectionsBounded(t *testing.T) {
	cfg := testConfig(fileMount())
	cfg.Handshakes, cfg.PerClient = 64, 8
	// The attack outlasts the test, including the hang guard of the
	// listener from another address below.
	cfg.HeaderTimeout = Duration(10 * time.Minute)
	s := startServer(t, cfg)
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/demo").fresh(time.Now(), time.Second) })
	base := openFDs(t)
	const n = 3000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", s.Addr(), hangGuard) // a full backlog retries SYNs for seconds under load
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 10*time.Second, "idle connections sorted out", func() bool {
		return s.refused.Load() >= n-uint64(cfg.Handshakes)
	})
	held := openFDs(t) - base - n
	t.Logf("%d idle connections: relay holds %d handshakes, %d extra descriptors, %d refused", n, s.handshakes.Load(), held, s.refused.Load())
	if h := s.handshakes.Load(); h > int64(cfg.Handshakes) {
		t.Fatalf("%d handshakes, cap %d", h, cfg.Handshakes)
	}
	if held > cfg.Handshakes+16 {
		t.Fatalf("relay holds %d descriptors for idle connections, want <= %d", held, cfg.Handshakes+16)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: hangGuard}
	c, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	_, _ = io.WriteString(c, "GET /demo HTTP/1.0\r\n\r\n")
	buf := make([]byte, 64)
	k, _ := io.ReadAtLeast(c, buf, 12)
	if !bytes.HasPrefix(buf[:k], []byte("HTTP/1.0 200")) {
		t.Fatalf("listener from another address during the attack: %q", buf[:k])
	}
}

// TestClientsFitDescriptors checks the descriptor budget arithmetic.
func TestClientsFitDescriptors(t *testing.T) {
	cases := []struct {
		clients, handshakes, reserved int
		nofile                        uint64
		want                          int64
	}{
		{10000, 1024, 600, 1 << 20, 10000},
		{10000, 1024, 600, 1024, 1},
		{10000, 1024, 600, 8192, 8192 - 1024 - 600},
	}
	for _, c := range cases {
		if got := clientsForFDs(c.clients, c.handshakes, c.reserved, c.nofile); got != c.want {
			t.Errorf("%+v: %d", c, got)
		}
	}
}

// TestRedactURL: userinfo never survives, the rest of the URL does.
func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://user:pw@host:8000/live", "http://host:8000/live"},
		{"http://user@host/live?x=1", "http://host/live?x=1"},
		{"http://host/live", "http://host/live"},
		{"http://us er:p%zz@host/live", "http://host/live"},
		{"file://../demo.mp3", "file://../demo.mp3"},
	}
	for _, c := range cases {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("%s: %s, want %s", c.in, got, c.want)
		}
	}
}
