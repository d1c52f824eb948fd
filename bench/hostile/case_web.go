package main

// The web form's rows of issue 16: login hashing, bodies, slow requests,
// the failure map.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// memBoundMB is the most the daemon's peak resident memory may rise under
// any attack (the 64 MB of heap).
const memBoundMB = 64

func init() {
	register(Case{Row: 1, Name: "parallel-wrong-logins", Run: parallelWrongLogins})
	register(Case{Row: 2, Name: "huge-login-bodies", Run: hugeLoginBodies})
	register(Case{Row: 3, Name: "stalled-login-bodies", NoFile: 1024, Run: stalledLoginBodies})
	register(Case{Row: 8, Name: "failure-map-spray", WebConfig: `
login_attempts = 2
login_lockout = "1h"
`, Run: failureMapSpray})
}

// loopbackClient returns a client whose connections come from the loopback
// address ip (Linux answers on all of 127.0.0.0/8).
func loopbackClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// parallelWrongLogins sends 40 wrong passwords at once from one address,
// then one from each of 40 addresses: the first may be evaluated at most
// login_attempts times, and memory may not follow the number of hashes.
func parallelWrongLogins(ctx context.Context, t *Target) (string, error) {
	codes := func(ips func(i int) string) map[int]int {
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				resp, err := t.PostForm(ctx, loopbackClient(ips(i)), "/login", url.Values{"password": {"wrong-password"}})
				code := 0
				if err == nil {
					code = resp.StatusCode
				}
				mu.Lock()
				got[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return got
	}
	one := codes(func(int) string { return "127.0.0.9" })
	many := codes(func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) })
	grow := t.PeakGrowthMB()
	fig := fmt.Sprintf("one address: %d evaluated of 40 (%d refused: too many connections); 40 addresses: %d evaluated", one[401], one[0], many[401])
	switch {
	case one[401] > 5:
		return fig, fmt.Errorf("%d wrong passwords evaluated from one address, lockout after 5", one[401])
	case one[0] == 40 || many[0] == 40:
		return fig, fmt.Errorf("no request got an answer")
	case grow > memBoundMB:
		return fig, fmt.Errorf("peak RSS rose %d MB (bound %d)", grow, memBoundMB)
	}
	return fig, nil
}

// hugeLoginBodies sends 8 multipart bodies of 9 MB to POST /login at once,
// holding each connection open after the body: nothing may land in the
// daemon's $TMPDIR and memory may not follow the bodies.
func hugeLoginBodies(ctx context.Context, t *Target) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("password", "big.bin")
	fw.Write(bytes.Repeat([]byte("x"), 9<<20))
	mw.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 8 {
		c, err := net.DialTimeout("tcp", t.Web, 5*time.Second)
		if err != nil {
			return "", err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			t.Web, t.Web, mw.FormDataContentType(), body.Len()+1) // one byte never comes: the upload stays held
		go func() {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			c.Write(body.Bytes())
		}()
	}
	// Let the daemon read what it will of the bodies.
	deadline := time.Now().Add(5 * time.Second)
	maxFiles := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		maxFiles = max(maxFiles, countFiles(filepath.Join(t.Dir, "tmp")))
		time.Sleep(100 * time.Millisecond)
	}
	grow := t.PeakGrowthMB()
	fig := fmt.Sprintf("files in TMPDIR: %d", maxFiles)
	if maxFiles > 0 {
		return fig, fmt.Errorf("%d upload files spilled to the daemon's TMPDIR", maxFiles)
	}
	if grow > memBoundMB {
		return fig, fmt.Errorf("peak RSS rose %d MB (bound %d)", grow, memBoundMB)
	}
	return fig, t.WebAnswers(5 * time.Second)
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// stalledLoginBodies opens 1,100 POST /login whose bodies never come, at
// ulimit -n 1024: the web form's connections are capped below the limit,
// so dvbapi still accepts at once, and the web form reaps the stalled ones
// within its read timeout and answers again.
func stalledLoginBodies(ctx context.Context, t *Target) (string, error) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := net.DialTimeout("tcp", t.Web, 5*time.Second)
		if err != nil {
			break // the backlog is full: that is the flood working
		}
		conns = append(conns, c)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n", t.Web)
	}
	fds := t.SettledFDs(ctx)
	// The other port must accept and answer while the web form is flooded.
	if err := dvbapiHello(t.DVBAPI); err != nil {
		return fmt.Sprintf("daemon fds %d", fds), fmt.Errorf("dvbapi not served during the web flood: %v", err)
	}
	// The web form must answer again once its read timeout reaps the
	// stalled requests (the test allows twice the 10 s).
	start := time.Now()
	var werr error
	for time.Since(start) < 25*time.Second && ctx.Err() == nil {
		if werr = t.WebAnswers(3 * time.Second); werr == nil {
			break
		}
	}
	fig := fmt.Sprintf("%d stalled, daemon fds %d, web answered again after %.1f s", len(conns), fds, time.Since(start).Seconds())
	if werr != nil {
		return fig, fmt.Errorf("web form still not answering: %v", werr)
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF || err != nil && !isTimeout(err) {
			closed++
		}
	}
	return fig + fmt.Sprintf(", %d reaped", closed), nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// failureMapSpray locks one address out (login_attempts = 2, 1 h), then
// sends one wrong login from each of 4,200 other addresses: the lockout
// must survive the spray.
func failureMapSpray(ctx context.Context, t *Target) (string, error) {
	victim := loopbackClient("127.0.2.1")
	for range 2 {
		if _, err := t.PostForm(ctx, victim, "/login", url.Values{"password": {"wrong"}}); err != nil {
			return "", err
		}
	}
	resp, err := t.PostForm(ctx, victim, "/login", url.Values{"password": {Password}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		return "", fmt.Errorf("not locked out after 2 failures: %s", resp.Status)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 4200 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ip := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
			t.PostForm(ctx, loopbackClient(ip), "/login", url.Values{"password": {"wrong"}})
		})
	}
	wg.Wait()
	resp, err = t.PostForm(ctx, victim, "/login", url.Values{"password": {Password}})
	if err != nil {
		return "", err
	}
	fig := fmt.Sprintf("after 4,200 sprayed addresses the locked one gets %d", resp.StatusCode)
	if resp.StatusCode != http.StatusTooManyRequests {
		return fig, fmt.Errorf("lockout ended by the spray: %s", resp.Status)
	}
	return fig, nil
}

// dvbapiHello sends a dvbapi CLIENT_INFO (protocol 2) and waits for the
// SERVER_INFO: proof that the daemon accepted and served the connection,
// not just that the kernel queued it.
func dvbapiHello(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	name := "hostile"
	msg := append([]byte{0xFF, 0xFF, 0x00, 0x01, 0x00, 0x02, byte(len(name))}, name...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return fmt.Errorf("no SERVER_INFO: %w", err)
	}
	if head != [4]byte{0xFF, 0xFF, 0x00, 0x02} {
		return fmt.Errorf("answer % x is not SERVER_INFO", head)
	}
	return nil
}

func init() {
	register(Case{Row: 10, Name: "damaged-password-file", NoPassword: true, Setup: func(t *Target) error {
		return os.WriteFile(filepath.Join(t.Dir, "state", "web-password"), []byte("$argon2id$v=19$m=19456,t=2,p=1$torn"), 0o600)
	}, Run: damagedPasswordFile})
}

// damagedPasswordFile starts satd on a torn password file: the damage is
// logged with a setup code, a login leads to /setup, and a new password can
// be set there.
func damagedPasswordFile(ctx context.Context, t *Target) (string, error) {
	resp, err := t.PostForm(ctx, t.Client(), "/login", url.Values{"password": {"anything"}})
	if err != nil {
		return "", err
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/setup" {
		return "", fmt.Errorf("login on a damaged file: %s to %q, want 303 to /setup", resp.Status, loc)
	}
	if !strings.Contains(t.Log(), "setup_code=") {
		return "", fmt.Errorf("no setup code in the log")
	}
	if err := t.SetPassword(ctx); err != nil {
		return "", fmt.Errorf("new password: %w", err)
	}
	if _, err := t.Login(ctx); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(t.Dir, "state", "web-password.damaged")); err != nil {
		return "", fmt.Errorf("damaged file not kept: %w", err)
	}
	return "logged with a setup code; new password set; damaged file kept", nil
}

func init() {
	register(Case{Row: 7, Name: "config-page-secrets", Config: secretsConfig, Run: urlPasswordEverywhere})
	register(Case{Row: 12, Name: "ecm-info-path-guarded", Run: guardedPath})
}

// secretsConfig is a mount whose upstream URL carries a password and whose
// listeners need secrets (rows 6 and 7).
const secretsConfig = `
[stream]
enabled = true
listen = "{stream}"

[[stream.mount]]
mount-name = "/paid.mp3"
upstream = ["http://relay:upw-SECRET6@{spare}/paid"]
password = "mountpw-SECRET7"
  [stream.mount.authentication]
  type = "users"
  users = ["alice:userpw-SECRET7"]
  token-keys = ["00112233445566778899aabbccddeeff"]
`

// urlPasswordEverywhere is row 7 (and the web side of row 6): a mount whose
// upstream URL carries a password and whose listeners need a mount
// password, users and token keys. No page, API answer or log line shows
// one of them.
func urlPasswordEverywhere(ctx context.Context, t *Target) (string, error) {
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	time.Sleep(2 * time.Second) // a few upstream attempts get logged
	checked, err := noSecretShown(ctx, t, c, "SECRET6", "SECRET7", "00112233445566778899aabbccddeeff")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pages/APIs and %d log bytes without a secret", checked, t.LogBytes()), nil
}

// secretPages are the pages and API answers that show configuration or
// status: the Status page, the stream tab of the configuration page, the
// log.
var secretPages = []string{"/", "/api/status", "/api/config", "/config?section=stream", "/log", "/api/log"}

// noSecretShown fetches secretPages with c (logged in) and reads the
// daemon's log: none may contain one of secrets. It returns how many pages
// it checked.
func noSecretShown(ctx context.Context, t *Target, c *http.Client, secrets ...string) (int, error) {
	for _, path := range secretPages {
		resp, b, err := t.Get(ctx, c, path)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s", path, resp.Status)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				return 0, fmt.Errorf("%s shows %s", path, s)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(t.Log(), s) {
			return 0, fmt.Errorf("the daemon's log shows %s", s)
		}
	}
	return len(secretPages), nil
}

// guardedPath is row 12: logged in but without the password again,
// pointing dvbapi.ecm_info anywhere is refused; with the password, a path
// outside the allowed directories is refused. (Row 13, update.public_keys,
// is in case_update.go: it also uploads a build signed with another key.)
func guardedPath(ctx context.Context, t *Target) (string, error) {
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	const victim = "/etc/hostile-victim" // never written: the change is refused
	for _, tc := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"section": {"dvbapi"}, "dvbapi.ecm_info": {"/run/ecm.info"}}, http.StatusForbidden},
		{url.Values{"section": {"dvbapi"}, "dvbapi.ecm_info": {victim}, "current": {Password}}, http.StatusUnprocessableEntity},
	} {
		resp, err := t.PostForm(ctx, c, "/config", tc.form)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != tc.want {
			return "", fmt.Errorf("%v: %s, want %d", tc.form, resp.Status, tc.want)
		}
	}
	b, _ := os.ReadFile(t.ConfigPath)
	if strings.Contains(string(b), "ecm.info") || strings.Contains(string(b), victim) {
		return "", fmt.Errorf("a refused change reached the configuration file")
	}
	if _, err := os.Stat(victim); err == nil {
		return "", fmt.Errorf("%s exists", victim)
	}
	return "ecm_info refused without the password (403); a path outside the allowed directories refused with it (422)", nil
}
