package config

import (
	"fmt"
	"net"
	"time"
)

// Web configures the device web form and its JSON API.
type Web struct {
	Enabled         bool     `toml:"enabled" comment:"serve the web form"`
	Listen          string   `toml:"listen" comment:"address:port of the web form (OSCam: httpport); changing it is applied with confirm-or-revert"`
	AllowedHosts    []string `toml:"allowed_hosts" comment:"Host header values accepted besides the listen address and the box's own addresses (DNS-rebinding guard); changing it is applied with confirm-or-revert"`
	Allow           []string `toml:"allow" comment:"client addresses or CIDR ranges allowed to use the web form; empty = every client that reaches the listen address (OSCam: httpallowed); changing it is applied with confirm-or-revert"`
	ReadOnly        bool     `toml:"readonly" comment:"show everything but refuse every change (OSCam: httpreadonly)"`
	PasswordFile    string   `toml:"password_file" comment:"file holding the argon2id hash of the login password, written by the form; empty = web-password in global.state_dir. Until it exists the first visit from loopback, or with the setup code printed to the log, sets the password"`
	SessionLifetime Duration `toml:"session_lifetime" comment:"a login lasts at most this long"`
	IdleTimeout     Duration `toml:"idle_timeout" comment:"a login without requests for this long ends"`
	LoginAttempts   int      `toml:"login_attempts" comment:"failed logins from one address before it is locked out (OSCam: failbancount)"`
	LoginLockout    Duration `toml:"login_lockout" comment:"how long a locked-out address must wait (OSCam: failbantime)"`
	ConfirmTimeout  Duration `toml:"confirm_timeout" comment:"a change that can cut the browser off (listen, allowed_hosts, allow) is reverted unless confirmed within this time"`
	MetricsPublic   bool     `toml:"metrics_public" comment:"serve /metrics (Prometheus) without a login, to clients the allow-list admits"`
}

// DefaultWeb returns the [web] defaults.
func DefaultWeb() Web {
	return Web{
		Enabled:         true,
		Listen:          "127.0.0.1:8080",
		SessionLifetime: Duration(12 * time.Hour),
		IdleTimeout:     Duration(30 * time.Minute),
		LoginAttempts:   5,
		LoginLockout:    Duration(5 * time.Minute),
		ConfirmTimeout:  Duration(90 * time.Second),
		MetricsPublic:   true,
	}
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
	for i, a := range w.Allow {
		if !validAddrOrCIDR(a) {
			report(fmt.Sprintf("allow[%d]", i), fmt.Sprintf("%q is not an IP address or CIDR range", a))
		}
	}
	checkRange(report, "session_lifetime", w.SessionLifetime, time.Minute, 30*24*time.Hour)
	checkRange(report, "idle_timeout", w.IdleTimeout, time.Minute, 30*24*time.Hour)
	checkRange(report, "login_lockout", w.LoginLockout, time.Second, 24*time.Hour)
	checkRange(report, "confirm_timeout", w.ConfirmTimeout, 10*time.Second, 10*time.Minute)
	if w.LoginAttempts < 1 || w.LoginAttempts > 100 {
		report("login_attempts", "must be 1-100")
	}
}

func checkRange(report func(key, msg string), key string, d Duration, lo, hi time.Duration) {
	if d.Std() < lo || d.Std() > hi {
		report(key, fmt.Sprintf("must be between %v and %v", lo, hi))
	}
}

// DefaultElement returns a new default element of the array of tables named
// table ("reader"), as Load fills it in; ok is false for other names. The web
// form uses it to show defaults and to add elements.
func DefaultElement(table string) (elem any, ok bool) {
	mk, ok := arrayDefaults[table]
	if !ok {
		return nil, false
	}
	return mk(), true
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
