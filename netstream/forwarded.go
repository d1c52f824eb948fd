package netstream

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Listeners behind a load balancer.
//
// Behind HAProxy or nginx every listener's connection comes from the
// balancer's address, so the per-address fail-open quota would be shared by
// all of them and the auth backend and the stats would see one address. A
// balancer listed in trusted-proxies names the listener in X-Forwarded-For
// (HAProxy "option forwardfor", nginx "proxy_set_header X-Forwarded-For
// $proxy_add_x_forwarded_for"). The header is read from the right: each
// balancer appends the address it got the connection from, so the first
// entry that is not itself a trusted proxy is the listener; entries left of
// it were written by the listener and prove nothing. A peer that is not a
// trusted proxy gets its header ignored, so a listener cannot pick its own
// address.

// trusts reports whether ip is a trusted proxy.
func (r *ipRules) trusts(a netip.Addr) bool {
	return slices.ContainsFunc(r.trusted, func(p netip.Prefix) bool { return p.Contains(a) })
}

// listenerIP returns the address a listener is known by: peer itself, or,
// when peer is a trusted proxy, the rightmost X-Forwarded-For entry that is
// not a trusted proxy. A malformed entry ends the walk at the last trusted
// hop, which is then the address used.
func (r *ipRules) listenerIP(peer string, h http.Header) string {
	if r == nil || len(r.trusted) == 0 {
		return peer
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !r.trusts(a.Unmap()) {
		return peer
	}
	vals := h.Values("X-Forwarded-For")
	ip := peer
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			var entry string
			if k := strings.LastIndexByte(v, ','); k >= 0 {
				v, entry = v[:k], v[k+1:]
			} else {
				v, entry = "", v
			}
			a, ok := forwardedAddr(strings.TrimSpace(entry))
			if !ok {
				return ip
			}
			ip = a.String()
			if !r.trusts(a) {
				return ip
			}
		}
	}
	return ip
}

// forwardedAddr parses one X-Forwarded-For entry: an address, optionally
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func forwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
