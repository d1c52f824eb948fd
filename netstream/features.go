package netstream

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// maxIntro bounds an intro file: every new listener holds a reference to
// it until it is sent.
const maxIntro = 1 << 20

// parsePrefix reads an address or CIDR prefix of deny-ip/allow-ip.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// ipRules are the parsed deny-ip, allow-ip, trusted-proxies and
// proxy-protocol-from lists.
type ipRules struct {
	deny, allow []netip.Prefix
	trusted     []netip.Prefix // trusted-proxies
	proxyFrom   []netip.Prefix // proxy-protocol-from
}

func newIPRules(c *Config) *ipRules {
	return &ipRules{deny: prefixes(c.DenyIP), allow: prefixes(c.AllowIP), trusted: prefixes(c.TrustedProxies), proxyFrom: prefixes(c.ProxyFrom)}
}

// prefixes parses a validated list of addresses and CIDR prefixes.
func prefixes(vals []string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range vals {
		if p, err := parsePrefix(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// sendsProxyHeader reports whether a connection from ip must start with a
// PROXY protocol header (proxy-protocol-from).
func (r *ipRules) sendsProxyHeader(ip string) bool {
	if len(r.proxyFrom) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && slices.ContainsFunc(r.proxyFrom, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
}

// admits reports whether a connection from ip may proceed.
func (r *ipRules) admits(ip string) bool {
	if r == nil || len(r.deny) == 0 && len(r.allow) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return len(r.allow) == 0
	}
	a = a.Unmap()
	has := func(p netip.Prefix) bool { return p.Contains(a) }
	if slices.ContainsFunc(r.deny, has) {
		return false
	}
	return len(r.allow) == 0 || slices.ContainsFunc(r.allow, has)
}

// loadIntro reads a mount's intro file (nil when none or unreadable).
func (m *mount) loadIntro(path string) {
	if path == "" {
		m.intro.Store(nil)
		return
	}
	b, err := readCapped(path, maxIntro)
	if err != nil {
		m.srv.log.Warn("stream: intro file not used", "mount", m.name, "file", path, "err", err)
		m.intro.Store(nil)
		return
	}
	m.intro.Store(&b)
}

// readCapped reads a whole file of at most limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), limit)
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

// listenerPre is what a new listener gets before its burst: the response
// head, then audio it has not heard: the intro and, on Ogg, the current
// header pages (unless the burst itself starts with them). It returns the
// head's length and the burst start.
func (m *mount) listenerPre(head []byte, burst int) (pre []byte, preHead int32, cursor uint64) {
	pre, preHead = head, int32(len(head))
	cursor = m.ring.startFor(burst)
	add := func(b []byte) { pre = append(pre[:len(pre):len(pre)], b...) }
	if in := m.intro.Load(); in != nil {
		add(*in)
	}
	if h := m.oggHdr.Load(); h != nil && codec(m.codec.Load()) == codecOgg {
		if cursor <= h.end && m.ring.valid(h.start) && m.intro.Load() == nil {
			cursor = h.start // the burst starts with the header pages themselves
		} else {
			add(h.pages)
		}
	}
	return pre, preHead, cursor
}

// demandGrace is how long an on-demand relay stays connected without
// listeners (a player reconnecting keeps it).
const demandGrace = 2 * time.Second

// wanted reports whether an on-demand mount has or awaits listeners.
func (m *mount) wanted() bool { return m.listeners.Load() > 0 || m.waiting.Load() > 0 }

// awaitAudio holds a new listener of an on-demand mount while its upstream
// connects, at most the source timeout. It reports whether audio came.
func (m *mount) awaitAudio(d time.Duration) bool {
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	m.kickDemand()
	end := time.Now().Add(d)
	for !m.playable() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func (m *mount) kickDemand() {
	select {
	case m.demand <- struct{}{}:
	default:
	}
}

// clientAllowed applies deny-ip/allow-ip to a new connection.
func (s *Server) clientAllowed(c net.Conn, ip string) bool {
	if s.ipRules.Load().admits(ip) {
		return true
	}
	s.refused.Add(1)
	c.Close()
	return false
}
