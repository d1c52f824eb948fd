package config

import "fmt"

// DVBAPI configures the receiver-facing dvbapi front door (OSCam's [dvbapi]).
type DVBAPI struct {
	Enabled bool     `toml:"enabled" comment:"serve the receiver's descrambler (OSCam: enabled)"`
	Listen  string   `toml:"listen" comment:"TCP address:port for network clients such as tvheadend; empty = no TCP (OSCam: listen_port)"`
	Allow   []string `toml:"allow" comment:"client addresses or CIDR ranges allowed on the TCP port; empty = loopback only"`
	Socket  string   `toml:"socket" comment:"Unix socket path served for local clients; empty = none"`
	Connect string   `toml:"connect" comment:"enigma2 listen socket satd connects to (client mode); empty = none"`
	User    string   `toml:"user" comment:"client name used for balancer accounting (OSCam: user)"`
}

// DefaultDVBAPI returns the [dvbapi] defaults.
func DefaultDVBAPI() DVBAPI {
	return DVBAPI{Enabled: true, Listen: "127.0.0.1:9000", Socket: "/tmp/camd.socket", User: "dvbapi"}
}

// Validate reports every problem of the [dvbapi] table.
func (d *DVBAPI) Validate(report func(key, msg string)) {
	if d.Listen != "" {
		if err := checkHostPort(d.Listen); err != nil {
			report("listen", err.Error())
		}
	}
	for i, a := range d.Allow {
		if !validAddrOrCIDR(a) {
			report(fmt.Sprintf("allow[%d]", i), fmt.Sprintf("%q is not an IP address or CIDR range", a))
		}
	}
}
