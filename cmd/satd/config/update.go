package config

import (
	"fmt"
	"net/url"
	"time"
)

// Update configures over-the-air updates.
type Update struct {
	Enabled        bool     `toml:"enabled" comment:"poll url for updates"`
	URL            string   `toml:"url" comment:"URL of the signed update manifest to poll"`
	Interval       Duration `toml:"interval" comment:"how often to poll; a random jitter of up to a quarter of it spreads a fleet"`
	PublicKeys     []string `toml:"public_keys" comment:"minisign public keys (base64, as in minisign.pub) accepted for manifests; several allow key rotation"`
	Board          string   `toml:"board" comment:"board/architecture name a manifest must target"`
	AllowDowngrade bool     `toml:"allow_downgrade" comment:"accept a manifest older than the running version"`
}

// DefaultUpdate returns the [update] defaults.
func DefaultUpdate() Update {
	return Update{Interval: Duration(6 * time.Hour)}
}

// Validate reports every problem of the [update] table.
func (u *Update) Validate(report func(key, msg string)) {
	if u.Enabled && u.URL == "" {
		report("url", "must be set when enabled = true")
	}
	if u.URL != "" {
		if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			report("url", fmt.Sprintf("%q is not an http(s) URL", u.URL))
		}
	}
	if d := u.Interval.Std(); d < time.Minute {
		report("interval", "must be at least 1m")
	}
	if u.Enabled && len(u.PublicKeys) == 0 {
		report("public_keys", "at least one key is needed to verify updates")
	}
}
