package web

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// stateChangingRoutes are every POST route of the site.
var stateChangingRoutes = []string{
	"/balancer/reset", "/balancer/clear", "/config", "/config/import", "/system/restore", "/system/restart",
	"/system/password", "/system/firmware", "/confirm",
	"/api/balancer/reset", "/api/balancer/clear", "/api/config/web", "/api/confirm", "/api/restart",
}

func TestStateChangesRefusedWithoutSession(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	r.srv.pw.set("correct horse")
	for _, path := range stateChangingRoutes {
		resp, err := http.Post(r.url(path), "application/x-www-form-urlencoded", strings.NewReader("reader=&section=web&web.listen=1.2.3.4:1"))
		b := body(t, resp, err)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d %q, want 401", path, resp.StatusCode, b)
		}
	}
	if r.restarts != 0 || r.applies != 0 {
		t.Errorf("refused requests still acted: %d restarts, %d applies", r.restarts, r.applies)
	}
	// State changes are POST only: a GET of an action does nothing.
	c := r.loggedInClient()
	for _, path := range []string{"/system/restart", "/balancer/reset", "/api/restart"} {
		resp, err := c.Get(r.url(path))
		body(t, resp, err)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, resp.StatusCode)
		}
	}
	if r.restarts != 0 || len(r.balancer.Stats()) != 2 {
		t.Errorf("GET changed state")
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "http://evil.example"},
	} {
		req, _ := http.NewRequest("POST", r.url("/system/restart"), nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		b := body(t, resp, err)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "cross-origin") {
			t.Errorf("cross-origin POST with %v: %d %q, want 403", h, resp.StatusCode, b)
		}
	}
	// Same-origin passes.
	req, _ := http.NewRequest("POST", r.url("/system/restart"), strings.NewReader("confirmed=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	body(t, resp, err)
	if resp.Request.URL.RequestURI() != "/system?done=restarting" || r.restarts != 1 {
		t.Errorf("same-origin POST: %d, restarts %d", resp.StatusCode, r.restarts)
	}
}

// TestOriginFromLAN drives the guard as Chromium does from a PC on the LAN:
// plain http at a private address sends Origin but no Sec-Fetch-Site. The
// form's own origin passes at whatever allowed address the box is reached
// at; another origin, another port and "Origin: null" are refused.
func TestOriginFromLAN(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Web.AllowedHosts = []string{"10.1.2.3", "receiver.lan"} })
	r.srv.pw.set("correct horse")
	for _, tc := range []struct {
		host, origin, fetchSite string
		want                    int
	}{
		{"10.1.2.3:8080", "http://10.1.2.3:8080", "", http.StatusUnauthorized}, // admitted; the password is wrong
		{"receiver.lan:8080", "http://receiver.lan:8080", "", http.StatusUnauthorized},
		{"10.1.2.3:8080", "", "", http.StatusUnauthorized}, // no browser: nothing to forge
		{"10.1.2.3:8080", "http://10.1.2.3:8080", "same-origin", http.StatusUnauthorized},
		{"10.1.2.3:8080", "null", "", http.StatusForbidden},
		{"10.1.2.3:8080", "http://evil.example", "", http.StatusForbidden},
		{"10.1.2.3:8080", "http://10.1.2.3:9999", "", http.StatusForbidden},
		{"10.1.2.3:8080", "http://receiver.lan:8080", "", http.StatusForbidden},
		{"10.1.2.3:8080", "http://10.1.2.3:8080", "cross-site", http.StatusForbidden},
		{"10.1.2.3:8080", "http://10.1.2.3:8080", "same-site", http.StatusForbidden},
	} {
		req := httptest.NewRequest("POST", "http://"+tc.host+"/login", strings.NewReader("password=wrong"))
		req.Host = tc.host
		req.RemoteAddr = "10.1.2.50:50000"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		w := httptest.NewRecorder()
		r.srv.Handler().ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("Host %s, Origin %q, Sec-Fetch-Site %q: %d %q, want %d", tc.host, tc.origin, tc.fetchSite, w.Code, strings.TrimSpace(w.Body.String()), tc.want)
		}
		if got := w.Header().Get("Referrer-Policy"); got != "same-origin" {
			t.Errorf("Referrer-Policy %q: a browser must keep sending its origin on same-origin posts", got)
		}
	}
}

func TestWrongHostRefused(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Web.AllowedHosts = []string{"receiver.lan"} })
	r.start()
	_, port, _ := strings.Cut(r.srv.Addr(), ":")
	for _, tt := range []struct {
		host string
		want int
	}{
		{"attacker.example:" + port, http.StatusMisdirectedRequest},
		{"127.0.0.1:" + port, http.StatusSeeOther},
		{"localhost:" + port, http.StatusSeeOther},
		{"receiver.lan:" + port, http.StatusSeeOther},
	} {
		req, _ := http.NewRequest("GET", r.url("/"), nil)
		req.Host = tt.host
		resp, err := (&http.Transport{}).RoundTrip(req)
		body(t, resp, err)
		if resp.StatusCode != tt.want {
			t.Errorf("Host %s: %d, want %d", tt.host, resp.StatusCode, tt.want)
		}
	}
}

func TestClientAllowList(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Web.Allow = []string{"192.168.1.0/24"} })
	h := r.srv.Handler()
	for _, tt := range []struct {
		remote string
		want   int
	}{{"192.168.1.7:5000", http.StatusSeeOther}, {"10.0.0.1:5000", http.StatusForbidden}, {"127.0.0.1:5000", http.StatusSeeOther}} {
		req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		req.RemoteAddr = tt.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("client %s: %d, want %d", tt.remote, rec.Code, tt.want)
		}
	}
}

// evil is untrusted text that would run if it were rendered as markup.
const evil = `<script>alert(1)</script>`

// TestUntrustedTextRenderedInert puts evil into every untrusted source a
// page shows (reader data, stream titles, statistics, log lines, config
// values, validation messages, update state, import reports, error
// messages) and checks each page shows it as text.
func TestUntrustedTextRenderedInert(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	r.status.st = Status{
		Readers:  []ReaderStatus{{Label: "rd" + evil, State: "ready" + evil, LastError: evil, Serial: evil, Providers: []string{evil}, Subscriptions: []Subscription{{Name: evil}}}},
		Services: []ServiceStatus{{Client: evil, Channel: evil, Reader: evil}},
		Mounts:   []MountStatus{{Name: "radio", Source: evil, Upstream: evil, Title: "Song " + evil + `"><img src=x onerror=alert(2)>`}},
	}
	r.balancer.rows = append(r.balancer.rows, StatsRow{Reader: "x" + evil, Key: evil, Channel: evil, Result: evil})
	r.updater.state = UpdateState{Phase: evil, Current: evil, Message: evil}
	r.logs.Handler().Handle(t.Context(), logRecord(evil))
	c := r.loggedInClient()
	pages := map[string]func() string{}
	for _, path := range []string{"/", "/balancer", "/log", "/system"} {
		pages["GET "+path] = func() string { return get(t, c, r.url(path)) }
	}
	pages["invalid value"] = func() string {
		resp, err := c.PostForm(r.url("/config"), url.Values{"section": {"web"}, "web.login_attempts": {evil}})
		return body(t, resp, err)
	}
	pages["invalid reader label"] = func() string {
		resp, err := c.PostForm(r.url(newReaderPath), url.Values{"index": {"1"}, "reader[1].protocol": {"constcw"}, "reader[1].label": {evil}})
		b := body(t, resp, err)
		if !strings.Contains(b, `value="&lt;script&gt;`) {
			t.Errorf("the refused label is not kept, escaped, in its field")
		}
		return b
	}
	pages["refused restore"] = func() string {
		resp, err := c.PostForm(r.url("/system/restore"), url.Values{"toml": {"[log]\nlevel = '" + evil + "'\n"}})
		return body(t, resp, err)
	}
	pages["import report"] = func() string {
		return postFiles(t, c, r.url("/config/import"), map[string]string{"conf": "[global]\nnosuchkey = " + evil + "\n"})
	}
	for name, page := range pages {
		b := page()
		if strings.Contains(b, "<script>alert") || strings.Contains(b, "<img src=x") {
			t.Errorf("%s renders untrusted text as markup", name)
		}
		if !strings.Contains(b, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the escaped text:\n%s", name, b)
		}
	}
	api := get(t, c, r.url("/api/status"))
	if strings.Contains(api, "<script>") {
		t.Errorf("/api/status: JSON is not HTML-escaped: %s", api)
	}
}

// postFiles posts a multipart form of the named files and returns the page.
func postFiles(t *testing.T, c *http.Client, u string, files map[string]string) string {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for field, content := range files {
		fw, _ := mw.CreateFormFile(field, field)
		fw.Write([]byte(content))
	}
	mw.Close()
	resp, err := c.Post(u, mw.FormDataContentType(), &b)
	return body(t, resp, err)
}

func TestLoginThrottled(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newRig(t, "", nil)
	r.srv.thr.now = func() time.Time { return now }
	r.srv.pw.set("correct horse")
	h := r.srv.Handler()
	login := func(pw string) int {
		req := httptest.NewRequest("POST", "http://127.0.0.1/login", strings.NewReader(url.Values{"password": {pw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.1:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; i < 5; i++ {
		if code := login("wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code := login("correct horse"); code != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures even the right password got %d, want 429", code)
	}
	now = now.Add(5*time.Minute + time.Second)
	if code := login("correct horse"); code != http.StatusSeeOther {
		t.Fatalf("after the lockout: %d, want 303", code)
	}
}

func TestSetupFromRemoteNeedsCode(t *testing.T) {
	r := newRig(t, "", nil)
	h := r.srv.Handler()
	code := r.srv.SetupCode()
	post := func(remote string, v url.Values) int {
		req := httptest.NewRequest("POST", "http://127.0.0.1/setup", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	pw := url.Values{"password": {"long enough"}, "repeat": {"long enough"}}
	if c := post("192.0.2.9:1", pw); c != http.StatusForbidden || r.srv.pw.isSet() {
		t.Fatalf("remote setup without code: %d", c)
	}
	pw.Set("code", strings.ToLower(code))
	if c := post("192.0.2.9:1", pw); c != http.StatusSeeOther || !r.srv.pw.isSet() {
		t.Fatalf("remote setup with code: %d", c)
	}
	if c := post("127.0.0.1:1", pw); c != http.StatusForbidden {
		t.Fatalf("second setup: %d, want 403", c)
	}
	if r.srv.SetupCode() != "" {
		t.Errorf("setup code still offered after the password was set")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	r.srv.pw.set("correct horse")
	resp, err := (&http.Transport{}).RoundTrip(mustReq(t, "POST", r.url("/login"), "password=correct+horse"))
	body(t, resp, err)
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "satd_session="} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

func mustReq(t *testing.T, method, u, form string) *http.Request {
	req, err := http.NewRequest(method, u, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// TestPasswordHash checks the argon2id round trip and the refusal of
// malformed hash files.
func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	if err := checkPassword(h, "correct horse"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := checkPassword(h, "wrong"); err != ErrBadPassword {
		t.Errorf("wrong password: %v", err)
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=999999999,t=1,p=1$AAAA$" + strings.Repeat("A", 43)} {
		if err := checkPassword(bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("hash %q: %v, want ErrBadHash", bad, err)
		}
	}
}

func FuzzCheckPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43))
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, phc string) {
		checkPassword(phc, "x") // must not panic or allocate without bound
	})
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	a, b := r.loggedInClient(), r.loggedInClient()
	resp, err := a.PostForm(r.url("/system/password"), url.Values{"current": {"wrong"}, "new": {"new password"}, "repeat": {"new password"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong current password: %d", resp.StatusCode)
	}
	resp, err = a.PostForm(r.url("/system/password"), url.Values{"current": {"correct horse"}, "new": {"new password"}, "repeat": {"new password"}})
	body(t, resp, err)
	if resp.Request.URL.Query().Get("done") != "password" {
		t.Fatalf("change ended on %s", resp.Request.URL)
	}
	if err := r.srv.pw.check("new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if resp, err := a.Get(r.url("/system")); body(t, resp, err) == "" || resp.Request.URL.Path != "/system" {
		t.Errorf("the changing browser was logged out")
	}
	if resp, err := b.Get(r.url("/system")); body(t, resp, err) == "" || resp.Request.URL.Path != "/login" {
		t.Errorf("another session survived the change: ended on %s", resp.Request.URL)
	}
}
