package config

import (
	"fmt"
	"net"
)

// Web configures the device web form and its JSON API.
type Web struct {
	Enabled      bool     `toml:"enabled" comment:"serve the web form"`
	Listen       string   `toml:"listen" comment:"address:port of the web form (OSCam: httpport); changing it is applied with confirm-or-revert"`
	AllowedHosts []string `toml:"allowed_hosts" comment:"Host header values accepted besides the listen address and the box's own addresses (DNS-rebinding guard)"`
}

// DefaultWeb returns the [web] defaults.
func DefaultWeb() Web {
	return Web{Enabled: true, Listen: "127.0.0.1:8080"}
}

// Validate reports every problem of the [web] table.
func (w *Web) Validate(report func(key, msg string)) {
	if err := checkHostPort(w.Listen); err != nil {
		report("listen", err.Error())
	}
	for i, h := range w.AllowedHosts {
		if h == "" {
			report(fmt.Sprintf("allowed_hosts[%d]", i), "must not be empty")
		}
	}
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: host must be an IP address or localhost", addr)
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return nil
}

func validAddrOrCIDR(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	_, _, err := net.ParseCIDR(s)
	return err == nil
}
