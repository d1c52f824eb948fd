package main

// The stream relay's rows of issue 16: an upstream, an auth backend or
// listeners that attack [stream].

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// streamConfig is a relay with one mount fed by {dir}/low.mp3 (written by
// writeLowRate): top goes into [stream], mount into the mount's table, auth
// (may be empty) is its authentication table.
func streamConfig(top, mount, auth string) string {
	return `
[stream]
enabled = true
listen = "{stream}"
source-password = "hostile-source"
admin-password = "hostile-admin"
drain-delay = "0s"
drain-window = "1s"
` + top + `
[[stream.mount]]
mount-name = "/radio"
file = "{dir}/low.mp3"
` + mount + auth
}

// urlAuth is a URL-auth table against a backend on {spare}.
const urlAuth = `
[stream.mount.authentication]
type = "url"
listener_add = "http://{spare}/auth"
basic-challenge = true
timeout = "1s"
`

// lowRateFrame is a silent MPEG-2.5 layer III frame at 8 kbit/s, 8 kHz
// (72 bytes, 72 ms): a stream of 1 KB/s, cheap for thousands of listeners.
var lowRateFrame = append([]byte{0xFF, 0xE3, 0x18, 0xC0}, make([]byte, 68)...)

// writeLowRate writes the mount's file.
func writeLowRate(t *Target) error {
	return os.WriteFile(filepath.Join(t.Dir, "low.mp3"), bytes.Repeat(lowRateFrame, 500), 0o644)
}

func init() {
	register(Case{Row: 4, Name: "endless-upstream-head", Setup: writeLowRate,
		Config: streamConfig("", `upstream = ["http://{spare}/live"]
retry-base = "50ms"
retry-max = "200ms"
`, ""), Run: endlessUpstreamHead})
	register(Case{Row: 5, Name: "auth-backend-faults", Setup: writeLowRate,
		Config: streamConfig("", "", urlAuth), Run: authBackendFaults})
	register(Case{Row: 6, Name: "upstream-userinfo-everywhere", Setup: writeLowRate,
		Config: streamConfig("", `upstream = ["http://relay:s3cret-upstream@{spare}/live"]
`, ""), Run: upstreamUserinfo})
	register(Case{Row: 9, Name: "fail-open-flood", Setup: writeLowRate,
		Config: streamConfig("", "", urlAuth), Run: failOpenFlood})
	register(Case{Row: 14, Name: "source-password-guessing", Setup: writeLowRate,
		Config: streamConfig("", "", ""), Run: sourcePasswordGuessing})
	register(Case{Row: 15, Name: "auth-cache-flood", Setup: writeLowRate,
		Config: streamConfig("", "", urlAuth+"cache-size = 500\n"), Run: authCacheFlood})
	register(Case{Row: 16, Name: "idle-connections", Setup: writeLowRate,
		Config: streamConfig("handshakes-per-client = 16\n", "", ""), Run: idleConnections})
}

// peer runs serve for every connection to t.Spare until ctx ends.
func peer(ctx context.Context, t *Target, serve func(net.Conn)) error {
	ln, err := net.Listen("tcp", t.Spare)
	if err != nil {
		return fmt.Errorf("listen %s for the peer: %w", t.Spare, err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return nil
}

// streamGet sends one request to the relay from the loopback address from
// ("" = default) and returns the status code and head.
func streamGet(t *Target, from, req string) (int, string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", t.Stream)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, "", err
	}
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(c, buf, 12)
	head, _, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
	code := 0
	fmt.Sscanf(string(head), "HTTP/1.0 %d", &code)
	return code, string(head), nil
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// waitPlayable waits until the mount answers a listener with 200 (the file
// source needs a moment).
func waitPlayable(ctx context.Context, t *Target, req string) error {
	for ctx.Err() == nil {
		if code, _, _ := streamGet(t, "127.0.0.200", req); code == 200 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ctx.Err()
}

// endlessUpstreamHead is row 4: the upstream sends an endless header line;
// the relay reads at most 16 KiB of it per attempt.
func endlessUpstreamHead(ctx context.Context, t *Target) (string, error) {
	actx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	var sent sync.Map
	err := peer(actx, t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nicy-name: ")
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		total := 0
		for actx.Err() == nil {
			n, err := c.Write(chunk)
			total += n
			if err != nil {
				break
			}
		}
		sent.Store(c, total)
	})
	if err != nil {
		return "", err
	}
	<-actx.Done()
	attempts, offered := 0, 0
	sent.Range(func(_, v any) bool { attempts++; offered += v.(int); return true })
	grow := t.PeakGrowthMB()
	if grow > 16 {
		return "", fmt.Errorf("peak RSS +%d MB for %d endless heads (%d MB offered)", grow, attempts, offered>>20)
	}
	if !strings.Contains(t.Log(), "larger than 16 KiB") {
		return "", fmt.Errorf("the log does not name the oversized head")
	}
	return fmt.Sprintf("%d attempts, %d MB offered", attempts, offered>>20), nil
}

// authBackendFaults is row 5: a backend that answers 429, 401, 407, 404,
// 408, 500, 503, a plain 200 error page or garbage never makes a listener
// on a Basic-challenge mount see 401 or WWW-Authenticate.
func authBackendFaults(ctx context.Context, t *Target) (string, error) {
	var mode sync.Mutex
	current := ""
	err := peer(ctx, t, func(c net.Conn) {
		buf := make([]byte, 8192)
		_, _ = c.Read(buf)
		mode.Lock()
		m := current
		mode.Unlock()
		switch m {
		case "garbage":
			_, _ = io.WriteString(c, "\x00\x01 not HTTP\r\n\r\n")
		case "errorpage":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 27\r\n\r\n<html>Maintenance</html>\r\n")
		default:
			_, _ = io.WriteString(c, "HTTP/1.1 "+m+" Fault\r\nContent-Length: 0\r\nWWW-Authenticate: Basic realm=\"backend\"\r\n\r\n")
		}
	})
	if err != nil {
		return "", err
	}
	modes := []string{"429", "401", "407", "404", "408", "500", "503", "errorpage", "garbage"}
	seen := map[int]int{}
	for i, m := range modes {
		mode.Lock()
		current = m
		mode.Unlock()
		for k := range 5 {
			from := fmt.Sprintf("127.0.3.%d", i*5+k+1)
			code, head, err := streamGet(t, from, fmt.Sprintf("GET /radio?k=%s%d HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", m, k, basic("bob"+m, "pw")))
			if err != nil {
				return "", fmt.Errorf("backend %s: %w", m, err)
			}
			seen[code]++
			if code == 401 || strings.Contains(strings.ToLower(head), "www-authenticate") {
				return "", fmt.Errorf("backend %s: the listener got %d with a challenge:\n%s", m, code, head)
			}
		}
	}
	return fmt.Sprintf("%d faults: %v, no 401, no WWW-Authenticate", len(modes)*5, seen), nil
}

// upstreamUserinfo is row 6: the upstream's user:password shows nowhere:
// not in /status.json (which answers only the box's Host names), the
// Status page, the APIs, the configuration page, nor the log, which names
// the upstream when its first attempt fails.
func upstreamUserinfo(ctx context.Context, t *Target) (string, error) {
	var attempts atomic.Int32
	err := peer(ctx, t, func(c net.Conn) {
		if attempts.Add(1) == 1 {
			return // the first attempt fails: the relay logs the upstream's URL
		}
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
		for ctx.Err() == nil {
			if _, err := c.Write(bytes.Repeat(lowRateFrame, 14)); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	})
	if err != nil {
		return "", err
	}
	get := func(host string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.Stream+"/status.json", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), nil
	}
	var body string
	for i := 0; ; i++ {
		code, b, err := get(t.Stream)
		if err != nil || code != 200 {
			return "", fmt.Errorf("status.json: %d %v", code, err)
		}
		body = b
		if strings.Contains(b, `"source":"upstream"`) || i > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, t.Spare) {
		return "", fmt.Errorf("the upstream never attached: %s", body)
	}
	if strings.Contains(body, "s3cret") {
		return "", fmt.Errorf("status.json shows the upstream password: %s", body)
	}
	if code, _, err := get("rebind.attacker.example"); err != nil || code != http.StatusMisdirectedRequest {
		return "", fmt.Errorf("status.json for a foreign Host: %d %v, want 421", code, err)
	}
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	checked, err := noSecretShown(ctx, t, c, "s3cret")
	if err != nil {
		return "", err
	}
	named := strings.Count(t.Log(), t.Spare+"/live")
	if named == 0 {
		return "", fmt.Errorf("the log never names the upstream: the log path was not exercised")
	}
	return fmt.Sprintf("status.json, %d pages/APIs and %d log lines naming the upstream without its password; foreign Host 421", checked, named), nil
}

// failOpenFlood is row 9: 1,500 parallel wrong passwords with distinct
// query strings while the backend is down get at most the address's
// fail-open quota admitted.
func failOpenFlood(ctx context.Context, t *Target) (string, error) {
	if err := waitPlayable(ctx, t, "GET /radio HTTP/1.0\r\nAuthorization: Basic "+basic("probe", "x")+"\r\n\r\n"); err != nil {
		return "", err
	}
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 300)
	for i := range 1500 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, _, _ := streamGet(t, "127.0.0.9", fmt.Sprintf("GET /radio?guess=%d HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", i, basic(fmt.Sprint("user", i), "wrong")))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] > 4 || codes[401] > 0 {
		return "", fmt.Errorf("1,500 guesses from one address: %v; want at most 4 admitted (fail-open-burst), no 401", codes)
	}
	return fmt.Sprintf("1,500 guesses: %v", codes), nil
}

// sourcePasswordGuessing is row 14: source and admin password guesses from
// one address are locked out after password-failures (5).
func sourcePasswordGuessing(ctx context.Context, t *Target) (string, error) {
	if err := waitPlayable(ctx, t, "GET /radio HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	kinds := map[string]func(i int) string{
		"source": func(i int) string {
			return "PUT /radio HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\nAuthorization: Basic " + basic("source", fmt.Sprint("guess", i)) + "\r\n\r\n"
		},
		"admin": func(i int) string {
			return "GET /admin/metadata?mount=/radio&mode=updinfo&song=x HTTP/1.0\r\nAuthorization: Basic " + basic("admin", fmt.Sprint("guess", i)) + "\r\n\r\n"
		},
	}
	from := map[string]string{"source": "127.0.4.1", "admin": "127.0.4.2"}
	var figs []string
	start := time.Now()
	for name, req := range kinds {
		codes := map[int]int{}
		for i := range 500 {
			code, _, err := streamGet(t, from[name], req(i))
			if err != nil {
				return "", err
			}
			codes[code]++
		}
		if codes[401] > 5 || codes[429] < 495 {
			return "", fmt.Errorf("%s: 500 guesses from one address: %v; want at most 5 evaluated, the rest 429", name, codes)
		}
		figs = append(figs, fmt.Sprintf("%s %v", name, codes))
	}
	return fmt.Sprintf("%s in %s", strings.Join(figs, ", "), time.Since(start).Round(time.Millisecond)), nil
}

// authCacheFlood is row 15: distinct query strings granted by the backend
// fill the decision cache only up to cache-size (500); old entries go.
func authCacheFlood(ctx context.Context, t *Target) (string, error) {
	err := peer(ctx, t, func(c net.Conn) {
		buf := make([]byte, 8192)
		_, _ = c.Read(buf)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nicecast-auth-user: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	if err != nil {
		return "", err
	}
	if err := waitPlayable(ctx, t, "GET /radio HTTP/1.0\r\nAuthorization: Basic "+basic("probe", "x")+"\r\n\r\n"); err != nil {
		return "", err
	}
	const n = 5000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, _, _ = streamGet(t, fmt.Sprintf("127.0.5.%d", i%200+1), fmt.Sprintf("GET /radio?q=%d HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", i, basic(fmt.Sprint("u", i), "p")))
		}()
	}
	wg.Wait()
	resp, err := http.Get("http://" + t.Stream + "/status.json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct {
		Mounts []struct {
			Cache   int `json:"auth_cache"`
			Evicted int `json:"auth_cache_evicted"`
			Calls   int `json:"auth_calls"`
		} `json:"mounts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Mounts) == 0 {
		return "", fmt.Errorf("status.json: %v", err)
	}
	m := st.Mounts[0]
	grow := t.PeakGrowthMB()
	if m.Cache > 500 || m.Evicted < m.Calls-500 || grow > 32 {
		return "", fmt.Errorf("%d grants: cache %d entries, %d evicted, peak RSS +%d MB; want <= 500 entries", m.Calls, m.Cache, m.Evicted, grow)
	}
	return fmt.Sprintf("%d grants: cache %d entries, %d evicted", m.Calls, m.Cache, m.Evicted), nil
}

// idleConnections is row 16: 19,000 idle connections from one address; the
// relay holds at most its handshake slots' worth of descriptors, and a
// listener from another address is served.
func idleConnections(ctx context.Context, t *Target) (string, error) {
	if err := waitPlayable(ctx, t, "GET /radio HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	before := t.FDs()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.6.1")}, Timeout: 2 * time.Second}
	failed := 0
	for range 19000 {
		c, err := d.DialContext(ctx, "tcp", t.Stream)
		if err != nil {
			failed++
			if failed > 100 {
				break
			}
			continue
		}
		conns = append(conns, c)
	}
	held := t.SettledFDs(ctx) - before
	code, _, err := streamGet(t, "127.0.6.2", "GET /radio HTTP/1.0\r\n\r\n")
	if err != nil || code != 200 {
		return "", fmt.Errorf("a listener from another address during the flood: %d %v", code, err)
	}
	if held > 300 {
		return "", fmt.Errorf("%d idle connections: the relay holds %d more descriptors (want <= 300)", len(conns), held)
	}
	return fmt.Sprintf("%d idle connections (%d dials failed): +%d descriptors, another address served", len(conns), failed, held), nil
}
