package web

// Issue 16's web rows: every resource an anonymous peer can make the form
// spend is bounded, and the test hits the bound.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// loginFrom posts password to /login from remote, through the whole site.
func loginFrom(h http.Handler, remote, password string) int {
	req := httptest.NewRequest("POST", "http://127.0.0.1/login", strings.NewReader(url.Values{"password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestHashGateBoundsConcurrency (row 1): one hash runs, hashWaiters wait,
// the rest are refused at once without hashing.
func TestHashGateBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newHashGate()
		var running, most atomic.Int32
		release := make(chan struct{})
		var busy atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				err := g.do(context.Background(), func() {
					n := running.Add(1)
					if n > most.Load() {
						most.Store(n)
					}
					<-release
					running.Add(-1)
				})
				if errors.Is(err, ErrBusy) {
					busy.Add(1)
				}
			})
		}
		synctest.Wait()
		if got, want := busy.Load(), int32(40-hashSlots-hashWaiters); got != want {
			t.Errorf("%d of 40 refused busy, want %d", got, want)
		}
		close(release)
		wg.Wait()
		if most.Load() != hashSlots {
			t.Errorf("%d hashes ran at once, want %d", most.Load(), hashSlots)
		}
	})
}

// TestParallelWrongLoginsCountedBeforeHashing (row 1): 40 wrong passwords
// at once from one address are evaluated at most login_attempts times.
func TestParallelWrongLoginsCountedBeforeHashing(t *testing.T) {
	r := newRig(t, "", nil)
	r.srv.pw.set("correct horse")
	h := r.srv.Handler()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			c := loginFrom(h, "192.0.2.7:1", "wrong password")
			mu.Lock()
			codes[c]++
			mu.Unlock()
		})
	}
	wg.Wait()
	attempts := r.cfg.Web.LoginAttempts
	if codes[http.StatusUnauthorized] > attempts || codes[http.StatusUnauthorized] == 0 {
		t.Errorf("%d wrong passwords evaluated, want 1-%d (codes %v)", codes[http.StatusUnauthorized], attempts, codes)
	}
	if codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests]+codes[http.StatusServiceUnavailable] != 40 {
		t.Errorf("unexpected answers: %v", codes)
	}
}

// TestLoginBodyBoundedBeforeParsing (row 2): big or multipart bodies to the
// unauthenticated forms are refused unread; nothing reaches $TMPDIR.
func TestLoginBodyBoundedBeforeParsing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r := newRig(t, "", nil)
	r.start()
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("password", "big")
	fw.Write(bytes.Repeat([]byte("x"), 9<<20))
	mw.Close()
	big := []byte("password=" + strings.Repeat("x", 9<<20))
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		chunked           bool
		want              int
	}{
		{"multipart login", "/login", mw.FormDataContentType(), mp.Bytes(), false, http.StatusUnsupportedMediaType},
		{"9 MB login", "/login", "application/x-www-form-urlencoded", big, false, http.StatusRequestEntityTooLarge},
		{"9 MB chunked login", "/login", "application/x-www-form-urlencoded", big, true, http.StatusBadRequest},
		{"multipart setup", "/setup", mw.FormDataContentType(), mp.Bytes(), false, http.StatusUnsupportedMediaType},
	} {
		// The answer is read while the body is still being sent: the server
		// answers before reading it, and may close before it has all come.
		if code, err := postRaw(r.srv.Addr(), tc.path, tc.ctype, tc.body, tc.chunked); err != nil || code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, err, tc.want)
		}
	}
	if es, _ := os.ReadDir(tmp); len(es) != 0 {
		t.Errorf("%d files spooled to TMPDIR", len(es))
	}
}

// postRaw sends a POST over a plain connection, writing the body in the
// background, and returns the status code of the answer.
func postRaw(addr, path, ctype string, body []byte, chunked bool) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // a hang guard
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", path, addr, ctype)
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(body))
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	}
	go func() {
		if _, err := io.WriteString(c, head); err == nil {
			c.Write(body) // fails once the server hangs up: that is fine
			if chunked {
				io.WriteString(c, "\r\n0\r\n\r\n")
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestStalledRequestReaped (row 3): a request whose body never comes is
// closed by the server's read timeout, and connections beyond the cap wait
// in the backlog instead of taking descriptors.
func TestStalledRequestReaped(t *testing.T) {
	r := newRig(t, "", nil)
	r.srv.limits.Read, r.srv.limits.ReadHeader, r.srv.limits.Conns = 200*time.Millisecond, 200*time.Millisecond, 2
	r.start()
	var stalled []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", r.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n", r.srv.Addr())
		stalled = append(stalled, c)
	}
	// A third client is served once the read timeout frees a slot.
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(r.url("/login")) // a hang guard
	if err != nil {
		t.Fatalf("third client: %v", err)
	}
	resp.Body.Close()
	for i, c := range stalled {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a hang guard: the server's 200 ms read timeout closes it
		b, _ := io.ReadAll(c)                              // the server answers 400 or just closes
		if len(b) > 0 && !bytes.Contains(b, []byte("400")) && !bytes.Contains(b, []byte("408")) {
			t.Errorf("stalled %d got %q", i, b)
		}
	}
}

// TestServerTimeoutsSet (row 3): every bound of Limits reaches the server.
func TestServerTimeoutsSet(t *testing.T) {
	l := DefaultLimits()
	srv := l.server(http.NotFoundHandler())
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("a server bound is unset: %+v", srv)
	}
	if l.Conns < 16 {
		t.Errorf("connection cap %d", l.Conns)
	}
}

// TestFailureMapEvictsNotClears (row 8): a spray of addresses fills the
// failure map, which evicts unlocked records and keeps the lockout.
func TestFailureMapEvictsNotClears(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := &throttle{failures: map[string]*failRecord{}, now: func() time.Time { return now }, max: 64}
	th.setLimits(2, time.Hour)
	th.attempt("victim")
	th.attempt("victim")
	for i := range 5000 {
		now = now.Add(time.Millisecond)
		th.attempt(fmt.Sprintf("spray-%d", i))
	}
	if len(th.failures) > 64 {
		t.Errorf("failure map holds %d records, cap 64", len(th.failures))
	}
	if ok, _ := th.attempt("victim"); ok {
		t.Error("the spray ended the lockout")
	}
	// When every record is a lockout, the one ending soonest goes first.
	th = &throttle{failures: map[string]*failRecord{}, now: func() time.Time { return now }, max: 3}
	th.setLimits(1, time.Hour)
	for _, a := range []string{"a", "b", "c", "d"} {
		now = now.Add(time.Second)
		th.attempt(a)
	}
	if _, ok := th.failures["a"]; ok || len(th.failures) != 3 {
		t.Errorf("full of lockouts: kept %v, want b c d", th.failures)
	}
}

// TestIPv6ClientsThrottledPerSlash64 (row 8): one host's /64 is one key.
func TestIPv6ClientsThrottledPerSlash64(t *testing.T) {
	a := clientKey(&http.Request{RemoteAddr: "[2001:db8:1:2::1]:4000"})
	b := clientKey(&http.Request{RemoteAddr: "[2001:db8:1:2:ffff::9]:4001"})
	c := clientKey(&http.Request{RemoteAddr: "[2001:db8:1:3::1]:4000"})
	if a != b || a == c {
		t.Errorf("keys %q %q %q: want the first two equal, the third apart", a, b, c)
	}
	if k := clientKey(&http.Request{RemoteAddr: "192.0.2.1:5"}); k != "192.0.2.1" {
		t.Errorf("IPv4 key %q", k)
	}
}

// TestDamagedPasswordFileRecoverable (row 10): a damaged password file is
// logged once with a setup code, login leads to /setup, the code sets a new
// password from a remote browser, and the damaged file is kept.
func TestDamagedPasswordFileRecoverable(t *testing.T) {
	r := newRig(t, "", nil)
	path := passwordPath(r.cfg)
	if err := os.WriteFile(path, []byte("$argon2id$v=19$m=19456,t=2,p=1$torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := r.srv.Handler()
	for range 3 {
		if c := loginFrom(h, "192.0.2.5:1", "correct horse"); c != http.StatusSeeOther {
			t.Fatalf("login with a damaged file: %d, want 303 to /setup", c)
		}
	}
	entries, _ := r.logs.Since(0, 0)
	var code string
	logged := 0
	for _, e := range entries {
		if strings.Contains(e.Msg, "password file is damaged") {
			logged++
			if _, after, ok := strings.Cut(e.Attrs, "setup_code="); ok {
				code = strings.Fields(after)[0]
			}
		}
	}
	if logged != 1 || code == "" {
		t.Fatalf("damage logged %d times, setup code %q: want once, with a code", logged, code)
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1/setup", strings.NewReader(url.Values{
		"code": {code}, "password": {"a new password"}, "repeat": {"a new password"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.5:1"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("setup with the logged code: %d %s", rec.Code, rec.Body)
	}
	if err := r.srv.pw.check("a new password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if b, err := os.ReadFile(path + ".damaged"); err != nil || !strings.Contains(string(b), "torn") {
		t.Errorf("damaged file not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}
