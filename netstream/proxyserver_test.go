package netstream

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxied sends header and req to addr (from the loopback address local,
// or 127.0.0.1 when nil) and returns the response; "" when the relay closed
// the connection without one.
func proxied(t testing.TB, local net.IP, addr string, header []byte, req string) string {
	t.Helper()
	d := net.Dialer{Timeout: hangGuard}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := c.Write(append(append([]byte(nil), header...), req...)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, _ := io.ReadAtLeast(c, b, 12)
	return string(b[:n])
}

func v1From(ip string) []byte { return []byte("PROXY TCP4 " + ip + " 127.0.0.1 40000 8000\r\n") }

func v2From(ip string) []byte { return v2(0x21, 0x11, inet4(ip, "127.0.0.1", 40000, 8000)) }

const healthz = "GET /healthz HTTP/1.0\r\n\r\n"

// TestProxyProtocolClientAddress: connections from a proxy-protocol-from
// address are known by the client their header names: deny-ip acts on it,
// a missing or bad header closes the connection (logged, at most every
// 10 s, naming the peer and the fault), LOCAL keeps the balancer's own
// address, the password lockout and /admin/listclients see the client, and
// a PROXY header from anyone else is a bad request, as before.
func TestProxyProtocolClientAddress(t *testing.T) {
	cfg := testConfig(fileMount())
	cfg.ProxyFrom = []string{"127.0.0.1/32"}
	cfg.DenyIP = []string{"192.0.2.66"}
	logBuf := &syncBuffer{}
	s := startServer(t, cfg, func(s *Server) { s.log = slog.New(slog.NewTextHandler(logBuf, nil)) })
	waitBurst(t, s.mount("/demo"))
	addr := s.Addr()

	for _, tt := range []struct {
		name   string
		header []byte
		ok     bool
	}{
		{"v1 client", v1From("192.0.2.7"), true},
		{"v2 client", v2From("192.0.2.7"), true},
		{"v2 LOCAL (health check)", v2(0x20, 0x00), true},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), true},
		{"v1 denied client", v1From("192.0.2.66"), false},
		{"v2 denied client", v2From("192.0.2.66"), false},
		{"no header", nil, false},
		{"bad header", []byte("PROXY TCP4 192.0.2.7 127.0.0.1 040000 8000\r\n"), false},
	} {
		got := proxied(t, nil, addr, tt.header, healthz)
		if ok := strings.HasPrefix(got, "HTTP/1.0 200"); ok != tt.ok {
			t.Errorf("%s: answered %q, want served=%v", tt.name, got, tt.ok)
		}
	}
	st := s.Stats()
	if st.ProxyErrors != 2 || st.Refused != 2 {
		t.Errorf("stats: %d header errors, %d refused; want 2 and 2", st.ProxyErrors, st.Refused)
	}
	log := logBuf.String()
	if n := strings.Count(log, "proxy-protocol-from address closed"); n != 1 ||
		!strings.Contains(log, "peer=127.0.0.1") || !strings.Contains(log, "neither a version 1 nor a version 2 signature") {
		t.Errorf("want one rate-limited line naming the peer and the fault, got %d:\n%s", n, log)
	}

	t.Run("lockout per client", func(t *testing.T) {
		meta := func(pw string) string {
			return "GET /admin/metadata?mount=/demo&mode=updinfo&song=x HTTP/1.0\r\nAuthorization: Basic " + basicAuth("admin", pw) + "\r\n\r\n"
		}
		for i := range cfg.PassFailures {
			if got := proxied(t, nil, addr, v2From("192.0.2.8"), meta(fmt.Sprint("guess", i))); !strings.HasPrefix(got, "HTTP/1.0 401") {
				t.Fatalf("guess %d: %q", i, got)
			}
		}
		if got := proxied(t, nil, addr, v2From("192.0.2.8"), meta("adminpw")); !strings.HasPrefix(got, "HTTP/1.0 429") {
			t.Fatalf("the guessing client is not locked out: %q", got)
		}
		if got := proxied(t, nil, addr, v1From("192.0.2.9"), meta("adminpw")); !strings.HasPrefix(got, "HTTP/1.0 200") {
			t.Fatalf("another client behind the same balancer is locked out too: %q", got)
		}
	})

	t.Run("listclients", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(append(v2From("192.0.2.7"), "GET /demo HTTP/1.0\r\n\r\n"...))
		b := make([]byte, 12)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "HTTP/1.0 200" {
			t.Fatalf("listener: %q %v", b, err)
		}
		got := proxied(t, nil, addr, v1From("192.0.2.10"),
			"GET /admin/listclients?mount=/demo HTTP/1.0\r\nAuthorization: Basic "+basicAuth("admin", "adminpw")+"\r\n\r\n")
		if !strings.Contains(got, "<IP>192.0.2.7</IP>") {
			t.Fatalf("listclients does not show the client's address:\n%s", got)
		}
	})

	t.Run("header from elsewhere", func(t *testing.T) {
		from := net.IPv4(127, 0, 0, 2)
		if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}).Dial("tcp", addr); err != nil {
			t.Skipf("no second loopback address: %v", err)
		} else {
			c.Close()
		}
		if got := proxied(t, from, addr, v1From("192.0.2.7"), healthz); !strings.HasPrefix(got, "HTTP/1.0 400") {
			t.Fatalf("a PROXY header from an address not in proxy-protocol-from: %q, want 400", got)
		}
		if got := proxied(t, from, addr, nil, healthz); !strings.HasPrefix(got, "HTTP/1.0 200") {
			t.Fatalf("a plain request from an address not in proxy-protocol-from: %q, want 200", got)
		}
	})
}

// TestProxyProtocolAuthIP: the auth backend's ip field is the client the
// PROXY header names.
func TestProxyProtocolAuthIP(t *testing.T) {
	var mu sync.Mutex
	var ips []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.FormValue("action") == "listener_add" {
			mu.Lock()
			ips = append(ips, r.FormValue("ip"))
			mu.Unlock()
		}
		w.Header().Set("icecast-auth-user", "1")
	}))
	t.Cleanup(backend.Close)
	cfg := testConfig(authMount("/paid", backend.URL+"/auth", "closed"))
	cfg.ProxyFrom = []string{"127.0.0.1"}
	s := startServer(t, cfg)
	waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
	got := proxied(t, nil, s.Addr(), v2From("198.51.100.23"), "GET /paid HTTP/1.0\r\nAuthorization: Basic "+basicAuth("u", "p")+"\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.0 200") {
		t.Fatalf("listener: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ips) != 1 || ips[0] != "198.51.100.23" {
		t.Fatalf("backend saw ip %q, want the PROXY header's client 198.51.100.23", ips)
	}
}

// TestProxyProtocolBeforeTLS: on an ssl socket the header comes first and
// the TLS handshake after it.
func TestProxyProtocolBeforeTLS(t *testing.T) {
	certFile, cert := selfSigned(t, t.TempDir(), "proxied")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	cfg := testConfig(fileMount())
	cfg.SSLCertificate = certFile
	cfg.ListenSockets = []ListenSocket{{BindAddress: "127.0.0.1", SSL: true}}
	cfg.ProxyFrom = []string{"127.0.0.1"}
	cfg.DenyIP = []string{"192.0.2.66"}
	s := startServer(t, cfg)
	get := func(header []byte) string {
		c, err := net.Dial("tcp", s.SocketAddrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		if _, err := c.Write(header); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if _, err := io.WriteString(tc, healthz); err != nil {
			return ""
		}
		b, _ := io.ReadAll(tc)
		return string(b)
	}
	if got := get(v2From("192.0.2.7")); !strings.HasPrefix(got, "HTTP/1.0 200") {
		t.Fatalf("TLS after a PROXY header: %q", got)
	}
	if got := get(v1From("192.0.2.66")); got != "" {
		t.Fatalf("denied client over TLS: %q", got)
	}
}

// TestProxiedHandshakeSlots: a PROXY sender is not capped as one address;
// each client it relays is, by handshakes-per-client, once half the slots
// are taken.
func TestProxiedHandshakeSlots(t *testing.T) {
	cfg := testConfig(fileMount())
	cfg.PerClient = 1
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.hsCap.Store(4)
	for i := range 3 {
		if !s.enterHandshake("10.0.0.1", true) {
			t.Fatalf("balancer connection %d refused", i)
		}
	}
	if s.enterHandshake("10.0.0.2", false) != true || s.enterHandshake("10.0.0.2", false) != false {
		t.Fatal("a direct client is not capped at handshakes-per-client")
	}
	if !s.moveHandshake("10.0.0.1", "192.0.2.7") {
		t.Fatal("first connection of a relayed client refused")
	}
	if s.moveHandshake("10.0.0.1", "192.0.2.7") {
		t.Fatal("a relayed client is not capped at handshakes-per-client")
	}
	if !s.moveHandshake("10.0.0.1", "192.0.2.8") {
		t.Fatal("another relayed client refused")
	}
	s.leaveHandshake("192.0.2.7")
	s.leaveHandshake("192.0.2.8")
	s.leaveHandshake("10.0.0.1")
	s.leaveHandshake("10.0.0.2")
	if n := s.handshakes.Load(); n != 0 || len(s.hsPerAddr) != 0 {
		t.Fatalf("after leaving: %d handshakes, %v", n, s.hsPerAddr)
	}
}

// TestHAProxySendProxy: Debian's HAProxy with send-proxy and send-proxy-v2
// in front of the relay. Clients from two loopback addresses connect
// through it; deny-ip names one of them, which the relay only knows from
// HAProxy's header: it is refused, the other one streams, and
// /admin/listclients shows the client's own address.
func TestHAProxySendProxy(t *testing.T) {
	exe, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (Debian package haproxy; .ci/deps test installs it)")
	}
	allowed, denied := net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	cfg := testConfig(fileMount())
	cfg.ProxyFrom = []string{"127.0.0.1"}
	cfg.DenyIP = []string{denied.String()}
	s := startServer(t, cfg)
	waitBurst(t, s.mount("/demo"))
	for _, mode := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(mode, func(t *testing.T) {
			front := startHAProxy(t, exe, "server relay "+s.Addr()+" "+mode)
			get := func(from net.IP, path string, extra ...string) (string, []byte) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: hangGuard}
				c, err := d.Dial("tcp", front)
				if err != nil {
					t.Skipf("no %s on loopback: %v", from, err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(hangGuard))
				req := "GET " + path + " HTTP/1.0\r\nHost: radio\r\n"
				for _, e := range extra {
					req += e + "\r\n"
				}
				if _, err := io.WriteString(c, req+"\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					return "", nil
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<10))
				return resp.Status, body
			}
			status, body := get(allowed, "/demo")
			if !strings.HasPrefix(status, "200") || len(body) < 16<<10 {
				t.Fatalf("client %s through %s: %q, %d bytes", allowed, mode, status, len(body))
			}
			if f, _ := countFrames(t, body); f < 10 {
				t.Fatalf("client %s: %d MP3 frames", allowed, f)
			}
			if status, _ := get(denied, "/demo"); strings.HasPrefix(status, "200") {
				t.Fatalf("client %s in deny-ip got %q through %s", denied, status, mode)
			}
			// A listener from the allowed address, then the admin list.
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: allowed}}
			lc, err := d.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer lc.Close()
			_, _ = io.WriteString(lc, "GET /demo HTTP/1.0\r\n\r\n")
			head := make([]byte, 12)
			if _, err := io.ReadFull(lc, head); err != nil || string(head) != "HTTP/1.0 200" {
				t.Fatalf("listener: %q %v", head, err)
			}
			_, list := get(allowed, "/admin/listclients?mount=/demo", "Authorization: Basic "+basicAuth("admin", "adminpw"))
			if !strings.Contains(string(list), "<IP>127.0.0.2</IP>") || strings.Contains(string(list), "<IP>127.0.0.1</IP>") {
				t.Fatalf("listclients through %s does not show the client's address:\n%s", mode, list)
			}
		})
	}
}

// startHAProxy runs haproxy in HTTP mode with one backend server line and
// returns its frontend address. The frontend socket is bound here (port 0)
// and handed to haproxy as fd 3 ("bind fd@3"), so no port is guessed.
func startHAProxy(t *testing.T, exe, server string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conf := filepath.Join(t.TempDir(), "haproxy.cfg")
	text := "global\n  maxconn 64\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n" +
		"frontend radio\n  bind fd@3\n  default_backend relays\nbackend relays\n  " + server + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(exe, "-f", conf, "-db")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	return ln.Addr().String()
}
