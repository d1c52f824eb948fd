package config

import (
	"fmt"
	"net"
)

// listener is one address a component of satd would bind.
type listener struct {
	key  string // web.listen
	addr string
}

// listeners returns the TCP addresses the enabled components would bind, in
// start order of importance: the web form first, so that a clash is
// reported on the other key and the form stays where the owner reaches it.
func (c *Config) listeners() []listener {
	var ls []listener
	if c.Web.Enabled {
		ls = append(ls, listener{"web.listen", c.Web.Listen})
	}
	if c.DVBAPI.Enabled && c.DVBAPI.Listen != "" {
		ls = append(ls, listener{"dvbapi.listen", c.DVBAPI.Listen})
	}
	if c.Stream.Enabled {
		ls = append(ls, listener{"stream.listen", c.Stream.Listen})
	}
	return ls
}

// validateListens refuses two components on one address: the second could
// not bind, and satd would stop at the next start with only a shell to
// recover it.
func (c *Config) validateListens(rep reporter) {
	report := rep.section("")
	ls := c.listeners()
	for i := range ls {
		for _, earlier := range ls[:i] {
			if listensOverlap(earlier.addr, ls[i].addr) {
				report(ls[i].key, fmt.Sprintf("%s is already taken by %s (%s); two components cannot listen on one address", ls[i].addr, earlier.key, earlier.addr))
				break
			}
		}
	}
}

// listensOverlap reports whether binding a and b would collide: one port,
// and hosts that are the same or of which one is the wildcard.
func listensOverlap(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	ha, hb = canonicalHost(ha), canonicalHost(hb)
	return ha == hb || ha == "*" || hb == "*" || ha == "localhost" && isLoopbackHost(hb) || hb == "localhost" && isLoopbackHost(ha)
}

// canonicalHost writes an IP the one way and every wildcard as "*".
func canonicalHost(h string) string {
	if h == "" {
		return "*"
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return h
	}
	if ip.IsUnspecified() {
		return "*"
	}
	return ip.String()
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
