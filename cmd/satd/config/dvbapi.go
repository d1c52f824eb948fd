package config

import (
	"fmt"
	"time"
)

// DVBAPI configures the receiver-facing dvbapi front door (OSCam's [dvbapi]).
type DVBAPI struct {
	Enabled          bool     `toml:"enabled" comment:"serve the receiver's descrambler (OSCam: enabled)"`
	Listen           string   `toml:"listen" comment:"TCP address:port for network clients such as tvheadend; empty = no TCP (OSCam: listen_port)"`
	Allow            []string `toml:"allow" comment:"client addresses or CIDR ranges allowed on the TCP port; empty = loopback only"`
	Socket           string   `toml:"socket" comment:"Unix socket path served for local clients; empty = none"`
	Connect          string   `toml:"connect" comment:"enigma2 listen socket satd connects to (client mode); empty = none"`
	User             string   `toml:"user" comment:"client name used for balancer accounting (OSCam: user)"`
	LocalDevices     bool     `toml:"local_devices" comment:"program /dev/dvb/adapterN/demuxM and caM directly for clients on socket and connect (enigma2 boxes; OSCam boxtype = dreambox); false = send filters and CWs back on the socket (OSCam boxtype = pc)"`
	DeviceRoot       string   `toml:"device_root" comment:"directory of the DVB adapters for local_devices"`
	ECMInfo          string   `toml:"ecm_info" comment:"file rewritten on every CW for enigma2 skins; empty = none"`
	FilterTimeout    Duration `toml:"filter_timeout" comment:"how long an ECM PID may deliver nothing before the next one is tried"`
	AnswerTimeout    Duration `toml:"answer_timeout" comment:"how long an ECM may wait for its answer before it counts as a timeout"`
	RetryMax         Duration `toml:"retry_max" comment:"longest wait between retry cycles when no ECM PID of a programme answers (starts at 1s, doubles)"`
	MaxConns         int      `toml:"max_conns" comment:"connections served at once; more clients are refused"`
	HandshakeTimeout Duration `toml:"handshake_timeout" comment:"a connection that sends no complete message within this is closed; one that has spoken is never closed for idling (like OSCam)"`
	ConstCWResend    bool     `toml:"constcw_resend" comment:"re-send both CW halves on every new ECM when a reader that ignores ECMs (constcw) answers the same CW, so tvheadend does not drop the key; false = only changed halves, like OSCam"`
}

// DefaultDVBAPI returns the [dvbapi] defaults.
func DefaultDVBAPI() DVBAPI {
	return DVBAPI{Enabled: true, Listen: "127.0.0.1:9000", Socket: "/tmp/camd.socket", User: "dvbapi",
		DeviceRoot: "/dev/dvb", ECMInfo: "/tmp/ecm.info",
		FilterTimeout: Duration(3 * time.Second), AnswerTimeout: Duration(6 * time.Second), RetryMax: Duration(30 * time.Second),
		MaxConns: 64, HandshakeTimeout: Duration(time.Minute), ConstCWResend: true}
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
	for _, t := range []struct {
		key string
		v   Duration
	}{{"filter_timeout", d.FilterTimeout}, {"answer_timeout", d.AnswerTimeout}, {"retry_max", d.RetryMax}, {"handshake_timeout", d.HandshakeTimeout}} {
		if t.v < Duration(100*time.Millisecond) || t.v > Duration(10*time.Minute) {
			report(t.key, fmt.Sprintf("%s is outside 100ms..10m", t.v.Std()))
		}
	}
	if d.MaxConns < 1 || d.MaxConns > 1024 {
		report("max_conns", fmt.Sprintf("%d is outside 1..1024", d.MaxConns))
	}
}
