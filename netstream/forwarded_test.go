package netstream

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestListenerIP(t *testing.T) {
	rules := newIPRules(&Config{TrustedProxies: []string{"10.0.0.1", "192.168.0.0/24", "2001:db8::1"}})
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer's header ignored", "203.0.113.9", []string{"198.51.100.7"}, "203.0.113.9"},
		{"trusted peer without header", "10.0.0.1", nil, "10.0.0.1"},
		{"trusted peer names the listener", "10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"listener's own entries left of the proxy's are not believed", "10.0.0.1", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies walked", "10.0.0.1", []string{"198.51.100.7, 192.168.0.5"}, "198.51.100.7"},
		{"several header lines read right to left", "10.0.0.1", []string{"1.2.3.4", "198.51.100.7, 192.168.0.5"}, "198.51.100.7"},
		{"port in the entry", "10.0.0.1", []string{"198.51.100.7:4711"}, "198.51.100.7"},
		{"IPv6 entry with port", "10.0.0.1", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"IPv6 trusted peer", "2001:db8::1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"IPv4-mapped trusted peer", "::ffff:10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"garbage stops at the last trusted hop", "10.0.0.1", []string{"198.51.100.7, bogus"}, "10.0.0.1"},
		{"garbage beyond a trusted chain", "10.0.0.1", []string{"bogus, 192.168.0.5"}, "192.168.0.5"},
		{"only trusted entries", "10.0.0.1", []string{"192.168.0.5, 192.168.0.6"}, "192.168.0.5"},
		{"empty entry", "10.0.0.1", []string{""}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			if got := rules.listenerIP(tt.peer, h); got != tt.want {
				t.Fatalf("listenerIP(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
	if got := newIPRules(&Config{}).listenerIP("10.0.0.1", http.Header{"X-Forwarded-For": {"198.51.100.7"}}); got != "10.0.0.1" {
		t.Fatalf("no trusted-proxies: got %s", got)
	}
}

// TestTrustedProxiesValidated: trusted-proxies and proxy-protocol-from take
// addresses and CIDR prefixes only, and a bad entry is named.
func TestTrustedProxiesValidated(t *testing.T) {
	for key, set := range map[string]func(*Config, []string){
		"trusted-proxies":     func(c *Config, v []string) { c.TrustedProxies = v },
		"proxy-protocol-from": func(c *Config, v []string) { c.ProxyFrom = v },
	} {
		c := DefaultConfig()
		set(&c, []string{"10.0.0.0/8", "proxy.example"})
		var got []string
		c.Validate(func(key, msg string) { got = append(got, key+": "+msg) })
		if len(got) != 1 || !strings.HasPrefix(got[0], key+"[1]: ") || !strings.Contains(got[0], "proxy.example") {
			t.Fatalf("Validate reported %q, want one error naming %s[1] and the value", got, key)
		}
	}
}

// TestFailOpenQuotaBehindProxy shows the fail-open quota keyed on the
// listener's address behind a trusted load balancer, and a peer that is not
// trusted unable to pick addresses with X-Forwarded-For.
func TestFailOpenQuotaBehindProxy(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String() + "/auth"
	dead.Close()
	const n = 20
	for _, tt := range []struct {
		name    string
		trusted []string
		all     bool // every listener admitted (own quota each)
	}{
		{"trusted balancer", []string{"127.0.0.1"}, true},
		{"untrusted peer", []string{"192.0.2.1"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mc := authMount("/paid", deadURL, "open")
			cfg := testConfig(mc)
			cfg.TrustedProxies = tt.trusted
			s := startServer(t, cfg)
			waitFor(t, 5*time.Second, "source", func() bool { return s.mount("/paid").fresh(time.Now(), time.Second) })
			codes := attackParallel(t, s.Addr(), n, func(i int) string {
				return fmt.Sprintf("GET /paid HTTP/1.0\r\nX-Forwarded-For: 198.51.100.%d\r\nAuthorization: Basic %s\r\n\r\n", i+1, basicAuth(fmt.Sprint("user", i), "pw"))
			})
			t.Logf("outcome %v", codes)
			if codes[401] != 0 || codes[-1] != 0 || codes[200]+codes[503] != n {
				t.Fatalf("outcome %v: want only 200 and 503, no challenge", codes)
			}
			if tt.all && codes[200] != n {
				t.Fatalf("outcome %v: every listener has its own address and quota, want %d admitted", codes, n)
			}
			if !tt.all && codes[200] > mc.Auth.FailOpenBurst {
				t.Fatalf("outcome %v: an untrusted peer's X-Forwarded-For must not spread the quota (at most %d)", codes, mc.Auth.FailOpenBurst)
			}
		})
	}
}
