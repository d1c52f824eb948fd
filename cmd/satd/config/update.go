package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Update configures over-the-air updates.
type Update struct {
	Enabled        bool     `toml:"enabled" comment:"poll for updates: url, or the hawkBit server when hawkbit_url is set"`
	URL            string   `toml:"url" comment:"URL of the signed update manifest to poll"`
	Interval       Duration `toml:"interval" comment:"how often to poll; a random jitter of up to a quarter of it spreads a fleet"`
	PublicKeys     []string `toml:"public_keys" comment:"minisign public keys (base64, as in minisign.pub) accepted for manifests; several allow key rotation"`
	Board          string   `toml:"board" comment:"board/architecture name a manifest must target"`
	AllowDowngrade bool     `toml:"allow_downgrade" comment:"accept a manifest older than the running version"`
	Install        string   `toml:"install" comment:"how this box installs updates: \"binary\" (satd alone, run under satd launch) or \"rauc\" (full image through RAUC)"`
	MaxSize        Size     `toml:"max_size" comment:"largest payload accepted, whatever a manifest announces"`
	HealthTimeout  Duration `toml:"health_timeout" comment:"how long the new version has to pass its health checks (readers ready again, web form, stream mounts) before it is rolled back"`
	RAUCCommand    []string `toml:"rauc_command" comment:"the rauc command and its global options (install = \"rauc\")"`
	RebootCommand  []string `toml:"reboot_command" comment:"command that reboots the box after a RAUC install or a failed health check"`

	HawkBitURL          string `toml:"hawkbit_url" comment:"Eclipse hawkBit server (DDI API) to get updates from instead of url, e.g. https://hawkbit.example.com"`
	HawkBitTenant       string `toml:"hawkbit_tenant" comment:"hawkBit tenant"`
	HawkBitControllerID string `toml:"hawkbit_controller_id" comment:"this box's controller id on the hawkBit server; empty: board-hostname"`
	HawkBitTargetToken  string `toml:"hawkbit_target_token" secret:"true" comment:"hawkBit target security token of this box (set this or hawkbit_gateway_token)"`
	HawkBitGatewayToken string `toml:"hawkbit_gateway_token" secret:"true" comment:"hawkBit gateway security token of the tenant (set this or hawkbit_target_token)"`
}

// DefaultUpdate returns the [update] defaults.
func DefaultUpdate() Update {
	return Update{
		Interval:      Duration(6 * time.Hour),
		Install:       "binary",
		MaxSize:       256 << 20,
		HealthTimeout: Duration(2 * time.Minute),
		RAUCCommand:   []string{"rauc"},
		RebootCommand: []string{"reboot"},
		HawkBitTenant: "DEFAULT",
	}
}

// Validate reports every problem of the [update] table.
func (u *Update) Validate(report func(key, msg string)) {
	if u.Enabled && u.URL == "" && u.HawkBitURL == "" {
		report("url", "must be set when enabled = true (or hawkbit_url)")
	}
	u.validateHawkBit(report)
	if _, ok := httpURL(u.URL); u.URL != "" && !ok {
		report("url", fmt.Sprintf("%q is not an http(s) URL", u.URL))
	}
	if d := u.Interval.Std(); d < time.Minute {
		report("interval", "must be at least 1m")
	}
	if u.Install != "binary" && u.Install != "rauc" {
		report("install", fmt.Sprintf("%q: want \"binary\" or \"rauc\"", u.Install))
	}
	if u.MaxSize < 1<<20 {
		report("max_size", "must be at least 1MiB")
	}
	if d := u.HealthTimeout.Std(); d < 5*time.Second || d > 30*time.Minute {
		report("health_timeout", "must be between 5s and 30m")
	}
	if u.Install == "rauc" && len(u.RAUCCommand) == 0 {
		report("rauc_command", "must name the rauc executable")
	}
	if u.Install == "rauc" && len(u.RebootCommand) == 0 {
		report("reboot_command", "must name a command when install = \"rauc\"")
	}
	if u.Enabled && u.Board == "" {
		report("board", "must be set when enabled = true")
	}
	if u.Enabled && len(u.PublicKeys) == 0 {
		report("public_keys", "at least one key is needed to verify updates")
	}
}

// validateHawkBit reports the problems of the hawkbit_* keys. hawkBit is
// polled when enabled = true and hawkbit_url is set; board and public_keys
// are then checked as for url.
func (u *Update) validateHawkBit(report func(key, msg string)) {
	if u.HawkBitURL == "" {
		return
	}
	// The hawkBit base gets a path appended: a query would end up in the middle.
	if p, ok := httpURL(u.HawkBitURL); !ok || p.RawQuery != "" {
		report("hawkbit_url", fmt.Sprintf("%q is not an http(s) URL", u.HawkBitURL))
	}
	if u.URL != "" {
		report("hawkbit_url", "url and hawkbit_url exclude each other: updates come either from a manifest URL or from hawkBit")
	}
	if !pathName(u.HawkBitTenant) {
		report("hawkbit_tenant", fmt.Sprintf("%q: must be a non-empty name without /, ?, # or spaces", u.HawkBitTenant))
	}
	if u.HawkBitControllerID != "" && !pathName(u.HawkBitControllerID) {
		report("hawkbit_controller_id", fmt.Sprintf("%q: must be a name without /, ?, # or spaces", u.HawkBitControllerID))
	}
	if (u.HawkBitTargetToken == "") == (u.HawkBitGatewayToken == "") {
		report("hawkbit_target_token", "set exactly one of hawkbit_target_token and hawkbit_gateway_token")
	}
}

// httpURL parses s and tells whether it is an http(s) URL with a host.
func httpURL(s string) (*url.URL, bool) {
	p, err := url.Parse(s)
	return p, err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

// pathName tells whether s can be one segment of a URL path.
func pathName(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/?# \t\n%\\")
}
