package netstream

// Tests of issue 20: re-admission tokens, verify-later, time limits across
// reconnects.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lowRateMP3 writes a file of n silent MPEG-2.5 layer III frames at 8 kbit/s
// and 8 kHz (72 bytes, 72 ms each): a stream of 1 KB/s, so thousands of
// listeners that never read cost little socket memory.
func lowRateMP3(t testing.TB, n int) string {
	t.Helper()
	frame := make([]byte, 72)
	copy(frame, []byte{0xFF, 0xE3, 0x18, 0xC0})
	if fi, ok := parseMP3(frame); !ok || fi.size != 72 || fi.bitrate != 8000 {
		t.Fatalf("low-rate frame header: %+v %v", fi, ok)
	}
	path := filepath.Join(t.TempDir(), "low.mp3")
	if err := os.WriteFile(path, bytes.Repeat(frame, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stormConfig is a relay for thousands of loopback listeners that never
// read: generous write timeout and skips, admission limits out of the way.
func stormConfig(file string, mounts ...MountConfig) Config {
	for i := range mounts {
		mounts[i].File = file
	}
	cfg := testConfig(mounts...)
	cfg.AdmissionRate, cfg.AdmissionBurst, cfg.AdmissionFloor = 1e6, 1e6, 1e6
	cfg.BurstSize = 1024
	cfg.WriteTimeout = Duration(5 * time.Minute)
	cfg.MaxSkips = 1 << 30
	cfg.NotsentLowat = 4096
	return cfg
}

// get sends one GET and returns the status code, the head and the open
// connection (closed unless the answer is 200).
func get(addr, target, user string) (int, textproto.MIMEHeader, net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		return 0, nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	req := "GET " + target + " HTTP/1.0\r\nUser-Agent: storm\r\nAuthorization: Basic " + basicAuth(user, "pw") + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return 0, nil, nil, err
	}
	tp := textproto.NewReader(bufio.NewReaderSize(c, 512))
	line, err := tp.ReadLine()
	if err != nil {
		c.Close()
		return 0, nil, nil, err
	}
	h, _ := tp.ReadMIMEHeader()
	code := 0
	fmt.Sscanf(line, "HTTP/1.0 %d", &code)
	if code != 200 {
		c.Close()
		return code, h, nil, nil
	}
	return code, h, c, nil
}

// getRetry is get retried after 503 like a player (Retry-After, at most
// 1 s here, at most 10 tries): a loaded test machine may make a check miss
// its deadline, which is not what the tests below are about.
func getRetry(addr, target, user string) (int, textproto.MIMEHeader, net.Conn, error) {
	for try := 0; ; try++ {
		code, h, c, err := get(addr, target, user)
		if err != nil || code != 503 || try == 9 {
			return code, h, c, err
		}
		time.Sleep(time.Second)
	}
}

// TestRelayDeathReadmitTokens is issue 20's Done-when 1: 5,000 listeners
// admitted by the backend on relay A carry re-admission tokens (A
// redirected them once); A dies, every listener reconnects to relay B with
// the URL it holds and is back with 0 synchronous backend calls, no 401
// and no WWW-Authenticate, and B reports every re-admission to the backend
// afterwards (listener_add with readmit=1).
func TestRelayDeathReadmitTokens(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 300
	}
	file := lowRateMP3(t, 200)
	be := newAuthBackend(t, 0, 64)
	key := strings.Repeat("5a", 32)
	mc := authMount("/paid", be.url, "closed") // nobody gets in without a decision
	mc.Auth.TokenKeys = []string{key}
	mc.Auth.ListenerRemove = ""
	mc.Auth.VerifyRate = 1e6
	mc.Auth.Timeout = Duration(10 * time.Second) // the backend is instant; only a starved CPU is slow
	a := startServer(t, stormConfig(file, mc))
	b := startServer(t, stormConfig(file, mc))
	for _, s := range []*Server{a, b} {
		waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	}
	locations := make([]string, n)
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	parallel := func(what string, fn func(i int) error) {
		t.Helper()
		var failed atomic.Int64
		var first atomic.Value
		boundedParallel(n, 128, func(i int) {
			if err := fn(i); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			}
		})
		if f := failed.Load(); f > 0 {
			t.Fatalf("%s: %d of %d failed; first: %v", what, f, n, first.Load())
		}
	}
	user := func(i int) string { return fmt.Sprintf("listener%d", i) }
	start := time.Now()
	// Each listener follows its redirect at once, as players do (the
	// issuing relay does not report a token's first use within redirectHop).
	parallel("first connect to A and follow the redirect", func(i int) error {
		code, h, _, err := getRetry(a.Addr(), fmt.Sprintf("/paid?sub=%d", i), user(i))
		if err != nil || code != 302 || !strings.Contains(h.Get("Location"), "readmit=") {
			return fmt.Errorf("listener %d: %d %v %v", i, code, h, err)
		}
		locations[i] = h.Get("Location")
		code, h, c, err := getRetry(a.Addr(), locations[i], user(i))
		if err != nil || code != 200 {
			return fmt.Errorf("listener %d: %d %v %v", i, code, h, err)
		}
		conns[i] = c
		return nil
	})
	t.Logf("%d listeners on A after %s; backend: %d synchronous calls, %d readmit reports",
		n, time.Since(start).Round(time.Millisecond), be.calls.Load(), be.readmits.Load())
	if got := be.calls.Load(); got != int64(n) {
		t.Fatalf("backend saw %d synchronous calls for %d listeners on A", got, n)
	}
	waitFor(t, 10*time.Second, "listeners on A", func() bool { return a.fan.lsn.Load() == int64(n) })

	// Relay A dies: every listener loses its connection.
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ac := *a.conf()
	ac.DrainDelay, ac.DrainWindow = 0, 0
	a.cfgp.Store(&ac)
	_ = a.Shutdown(ctx)
	reportedByA := be.readmits.Load()

	start = time.Now()
	var challenged atomic.Int64
	parallel("reconnect to B", func(i int) error {
		old := conns[i]
		_ = old.SetReadDeadline(time.Now().Add(hangGuard))
		if _, err := io.Copy(io.Discard, old); err != nil {
			return fmt.Errorf("listener %d: old connection did not end: %v", i, err)
		}
		old.Close()
		code, h, c, err := getRetry(b.Addr(), locations[i], user(i))
		if h.Get("WWW-Authenticate") != "" {
			challenged.Add(1)
		}
		if err != nil || code != 200 {
			return fmt.Errorf("listener %d on B: %d %v %v", i, code, h, err)
		}
		conns[i] = c
		return nil
	})
	back := time.Since(start) // figure
	ba := b.mount("/paid").adm.Load()
	waitFor(t, 60*time.Second, "every re-admission reported", func() bool { return be.readmits.Load()-reportedByA >= int64(n) })
	t.Logf("%d listeners back on B in %s: %d synchronous backend calls on B, %d challenged, %d re-admissions reported (%d async calls)",
		n, back.Round(time.Millisecond), ba.calls.Load(), challenged.Load(), be.readmits.Load(), ba.asyncAdds.Load())
	if ba.calls.Load() != 0 || challenged.Load() != 0 || b.fan.lsn.Load() != int64(n) || ba.readmits.Load() != uint64(n) {
		t.Fatalf("B: %d sync calls, %d challenged, %d listeners, %d readmits; want 0, 0, %d, %d",
			ba.calls.Load(), challenged.Load(), b.fan.lsn.Load(), ba.readmits.Load(), n, n)
	}
	if got := be.readmits.Load() - reportedByA; got != int64(n) || ba.unreported.Load() != 0 || reportedByA != 0 {
		t.Fatalf("backend told of %d re-admissions by B (%d unreported, %d by A), want %d by B", got, ba.unreported.Load(), reportedByA, n)
	}
}

// TestVerifyLaterClosesDenied is issue 20's Done-when 2: with the backend
// down, fail-open listeners are provisional; once the backend is back and
// denies them they are closed within verify-grace. With on-error = closed
// nobody is admitted without a decision.
func TestVerifyLaterClosesDenied(t *testing.T) {
	const n = 20
	be := newAuthBackend(t, 0, 64)
	be.mode.Store("status:503")
	open := authMount("/open", be.url, "open")
	open.Auth.FailOpenBurst = n
	open.Auth.VerifyGrace = Duration(500 * time.Millisecond)
	open.Auth.OnErrorWait = Duration(100 * time.Millisecond)
	closed := authMount("/closed", be.url, "closed")
	s := startServer(t, testConfig(open, closed))
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/closed").fresh(time.Now(), time.Second) })
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		code, h, _, err := get(s.Addr(), "/closed", fmt.Sprint("c", i))
		if err != nil || code != 503 || h.Get("WWW-Authenticate") != "" || h.Get("Retry-After") == "" {
			t.Fatalf("on-error closed, backend down: %d %v %v", code, h, err)
		}
		code, h, c, err := get(s.Addr(), "/open", fmt.Sprint("o", i))
		if err != nil || code != 200 {
			t.Fatalf("on-error open, backend down: %d %v %v", code, h, err)
		}
		conns = append(conns, c)
	}
	if got := s.mount("/closed").listeners.Load(); got != 0 {
		t.Fatalf("%d listeners admitted on the fail-closed mount without a decision", got)
	}
	oa := s.mount("/open").adm.Load()
	if oa.failOpens.Load() != n || oa.verify.pending() != n {
		t.Fatalf("%d fail-open admissions, %d awaiting verification; want %d", oa.failOpens.Load(), oa.verify.pending(), n)
	}
	// The backend comes back and denies them all.
	be.mode.Store("deny")
	denied := time.Now()
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(hangGuard))
			_, _ = io.Copy(io.Discard, c)
			closedAfter[i] = time.Since(denied) // figure
		}()
	}
	wg.Wait()
	t.Logf("closed %v after the backend began denying (grace %s, breaker wait %s)", closedAfter, open.Auth.VerifyGrace.Std(), open.Auth.OnErrorWait.Std())
	waitFor(t, 5*time.Second, "listeners gone", func() bool { return s.mount("/open").listeners.Load() == 0 })
	if oa.revoked.Load() != n {
		t.Fatalf("%d revoked, want %d", oa.revoked.Load(), n)
	}
}

// TestTimeLimitSurvivesReconnect is issue 20's time-limit point: a grant
// with icecast-auth-timelimit is cached with its end, so a reconnect gets
// the rest of it, and once it is used up the backend is asked again; the
// re-admission token carries the same end.
func TestTimeLimitSurvivesReconnect(t *testing.T) {
	be := newAuthBackend(t, 0, 8)
	be.limit.Store(3600)
	mc := authMount("/paid", be.url, "closed")
	s := startServer(t, testConfig(mc))
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	a := s.mount("/paid").adm.Load()
	r := admitRequest{uri: "/paid", user: "alice", pass: "pw", ip: "127.0.0.1"}
	v := a.check(context.Background(), r)
	if v.code != admitOK || v.limit != time.Hour {
		t.Fatalf("first: %+v", v)
	}
	// Pretend 59 minutes passed: the cached grant has one minute left.
	a.mu.Lock()
	e, _ := a.cache.get(a.key(r))
	e.limitEnd = time.Now().Add(time.Minute)
	a.mu.Unlock()
	v = a.check(context.Background(), r)
	if v.code != admitOK || v.limit > time.Minute || v.limit < 50*time.Second || be.calls.Load() != 1 {
		t.Fatalf("reconnect: limit %s after %d calls, want <= 1m from the cache", v.limit, be.calls.Load())
	}
	// Used up: the backend is asked again (as Icecast does).
	a.mu.Lock()
	e.limitEnd = time.Now().Add(-time.Second)
	a.mu.Unlock()
	if v = a.check(context.Background(), r); v.code != admitOK || be.calls.Load() != 2 {
		t.Fatalf("after the limit: %+v, %d calls", v, be.calls.Load())
	}
	// The re-admission token carries the end, not a fresh limit.
	keyed := mc
	keyed.Auth.TokenKeys = []string{strings.Repeat("ab", 16)}
	ka := newAdmission(s, "/paid", keyed.Auth)
	now := time.Now()
	tok := ka.issueReadmit(r, 90*time.Second, now.Add(-60*time.Second))
	rr := r
	rr.readmit = tok
	rv, ok := ka.checkReadmit(rr, "u:alice", now)
	if !ok || rv.limit > 30*time.Second || rv.limit < 25*time.Second {
		t.Fatalf("token re-admission: %+v %v, want about 30 s left", rv, ok)
	}
	expired := ka.issueReadmit(r, 30*time.Second, now.Add(-60*time.Second))
	rr.readmit = expired
	if _, ok := ka.checkReadmit(rr, "u:alice", now); ok {
		t.Fatal("a token whose time limit is used up still admits")
	}
	other := rr
	other.readmit, other.user = tok, "mallory"
	if _, ok := ka.checkReadmit(other, "u:mallory", now); ok {
		t.Fatal("a token admitted another identity")
	}
}

// TestSplitReadmit checks the URI the backend and cache see.
func TestSplitReadmit(t *testing.T) {
	cases := []struct{ in, rest, tok string }{
		{"/paid", "/paid", ""},
		{"/paid?readmit=abc.def", "/paid", "abc.def"},
		{"/paid?key=1&readmit=abc.def", "/paid?key=1", "abc.def"},
		{"/paid?readmit=x&key=1", "/paid?key=1", "x"},
		{"/paid?notreadmit=1", "/paid?notreadmit=1", ""},
	}
	for _, c := range cases {
		rest, tok := splitReadmit(c.in)
		if rest != c.rest || tok != c.tok {
			t.Errorf("%s: %q %q", c.in, rest, tok)
		}
	}
}

// TestRetryAfterSpreads checks that deferred listeners are told to come
// back spread at the admission rate, not all at once.
func TestRetryAfterSpreads(t *testing.T) {
	cfg := testConfig(fileMount())
	cfg.AdmissionRate, cfg.AdmissionBurst, cfg.AdmissionFloor = 2, 1, 2 // slow refill: a slow machine still defers most
	s := startServer(t, cfg)
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/demo").fresh(time.Now(), time.Second) })
	seen := map[string]int{}
	for range 41 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /demo HTTP/1.0\r\n\r\n")
		tp := textproto.NewReader(bufio.NewReader(c))
		line, _ := tp.ReadLine()
		h, _ := tp.ReadMIMEHeader()
		c.Close()
		if strings.Contains(line, "503") {
			seen[h.Get("Retry-After")]++
		}
	}
	t.Logf("Retry-After values: %v", seen)
	// 2 per second: about two listeners per second of Retry-After, spread
	// over many seconds, rather than all of them at the same second.
	if len(seen) < 3 {
		t.Fatalf("Retry-After not spread: %v", seen)
	}
	for v, k := range seen {
		if k > 3 {
			t.Fatalf("%d listeners told to return after %s s", k, v)
		}
	}
}

// TestAdaptiveAdmission: while the relay is congested (here: more than half
// the handshake slots taken) the admission rate falls x0.7 a second to the
// floor; once it keeps up it climbs back by a tenth of the ceiling.
func TestAdaptiveAdmission(t *testing.T) {
	cfg := testConfig(fileMount())
	cfg.AdmissionRate, cfg.AdmissionFloor = 1000, 100
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.handshakes.Store(s.hsCap.Load()) // every slot taken
	var rates []float64
	for i := range 10 {
		s.adjust(now.Add(time.Duration(i)*time.Second), 1<<20) // CPU share negligible
		rates = append(rates, s.AdmissionRate())
	}
	if rates[0] != 700 || rates[9] != 100 {
		t.Fatalf("congested: %v, want 700 ... 100", rates)
	}
	s.handshakes.Store(0)
	for i := range 10 {
		s.adjust(now.Add(time.Duration(10+i)*time.Second), 1<<20)
	}
	if r := s.AdmissionRate(); r != 1000 {
		t.Fatalf("recovered to %v, want the ceiling 1000", r)
	}
}

// TestAdmissionEntryCosts checks the per-entry costs the admission tables
// are sized with (sizeAdmission) against the heap they really take.
func TestAdmissionEntryCosts(t *testing.T) {
	const n = 20000
	measure := func(fill func()) float64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		fill()
		runtime.GC()
		runtime.ReadMemStats(&b)
		return float64(b.HeapAlloc-a.HeapAlloc) / n
	}
	cache := newLRU[string, *cacheEntry](n)
	perCache := measure(func() {
		for i := range n {
			k := sha256.Sum256([]byte(strconv.Itoa(i)))
			cache.put(string(k[:]), &cacheEntry{grant: true})
		}
	})
	q := make(chan *verifyItem, n)
	l := &listener{}
	perVerify := measure(func() {
		for range n {
			q <- &verifyItem{l: l}
		}
	})
	t.Logf("cache entry %.0f B (sized %d), verify entry %.0f B (sized %d)", perCache, costCacheEntry, perVerify, costVerifyEntry)
	if perCache > costCacheEntry || perVerify > costVerifyEntry {
		t.Fatalf("entries cost more than the sizing assumes")
	}
	runtime.KeepAlive(cache)
	runtime.KeepAlive(q)
}

// TestReadmitReportedWhenHopLandsElsewhere: behind a balancer the redirect's
// second connection may land on the other relay (which reports it); when
// that relay dies, the listener comes back to the relay that issued its
// token, and that is a re-admission the backend must hear of, not the
// redirect's own hop.
func TestReadmitReportedWhenHopLandsElsewhere(t *testing.T) {
	mc := authMount("/paid", "http://127.0.0.1:1/auth", "closed")
	mc.Auth.TokenKeys = []string{strings.Repeat("ab", 16)}
	mc.Auth.ReadmitTTL = Duration(time.Hour)
	s := startServer(t, testConfig(mc))
	a := newAdmission(s, "/paid", mc.Auth)
	r := admitRequest{uri: "/paid", user: "alice", pass: "pw", ip: "127.0.0.1"}
	tok := func(issued time.Time) admitRequest {
		v := a.redirect(verdict{code: admitOK}, r, issued)
		_, t, _ := strings.Cut(v.location, readmitParam+"=")
		rr := r
		rr.readmit = t
		return rr
	}
	now := time.Now()
	for _, tt := range []struct {
		name   string
		issued time.Time
		report bool
	}{
		{"the redirect's own hop, here at once", now.Add(-time.Second), false},
		{"back here after the hop went elsewhere", now.Add(-redirectHop - time.Second), true},
	} {
		v, ok := a.checkReadmit(tok(tt.issued), "u:alice", now)
		if !ok || v.code != admitOK || v.readmitted != tt.report {
			t.Fatalf("%s: %+v %v, want admitted with report=%v", tt.name, v, ok, tt.report)
		}
	}
	// The same token used twice is reported the second time whatever the clock.
	rr := tok(now)
	if v, _ := a.checkReadmit(rr, "u:alice", now); v.readmitted {
		t.Fatal("first use of a just-issued token reported")
	}
	if v, _ := a.checkReadmit(rr, "u:alice", now); !v.readmitted {
		t.Fatal("second use of a token not reported")
	}
}

// TestReadmitCookie: ffmpeg and mpv reconnect to the URL they were first
// given, not the one they were redirected to, but send the cookies they were
// handed; the redirect sets the token as a cookie too, so such a player
// comes back on its token with no backend call.
func TestReadmitCookie(t *testing.T) {
	be := newAuthBackend(t, 0, 8)
	mc := authMount("/paid", be.url, "closed")
	mc.Auth.TokenKeys = []string{strings.Repeat("5a", 32)}
	mc.Auth.ListenerRemove = ""
	s := startServer(t, testConfig(mc))
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	do := func(target, cookie string) *http.Response {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.Addr(), hangGuard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		req := "GET " + target + " HTTP/1.0\r\nAuthorization: Basic " + basicAuth("alice", "pw") + "\r\n"
		if cookie != "" {
			req += "Cookie: other=1; " + cookie + "\r\n"
		}
		if _, err := io.WriteString(c, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := do("/paid", "")
	cookies := first.Cookies()
	if first.StatusCode != http.StatusFound || len(cookies) != 1 || cookies[0].Name != "readmit" || cookies[0].Path != "/paid" ||
		!cookies[0].HttpOnly || cookies[0].MaxAge != 3600 || !strings.HasSuffix(first.Header.Get("Location"), "readmit="+cookies[0].Value) {
		t.Fatalf("first connect: %d, Location %q, cookies %+v; want 302 with the same token in the URL and a cookie", first.StatusCode, first.Header.Get("Location"), cookies)
	}
	calls := be.calls.Load()
	a := s.mount("/paid").adm.Load()
	readmits := a.readmits.Load()
	if r := do("/paid", "readmit="+cookies[0].Value); r.StatusCode != http.StatusOK {
		t.Fatalf("original URL with the cookie: %d, want 200", r.StatusCode)
	}
	if be.calls.Load() != calls || a.readmits.Load() != readmits+1 {
		t.Fatalf("backend calls %d -> %d, token admissions %d -> %d: want none and one", calls, be.calls.Load(), readmits, a.readmits.Load())
	}
	// A forged token is ignored: a normal check (here from the decision
	// cache) and a fresh redirect.
	if r := do("/paid", "readmit=forged."+cookies[0].Value); r.StatusCode != http.StatusFound || a.readmits.Load() != readmits+1 {
		t.Fatalf("forged cookie: %d, token admissions %d -> %d; want 302 and no token admission", r.StatusCode, readmits, a.readmits.Load())
	}
}
