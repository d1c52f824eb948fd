package web

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/netstream"
)

const sourceSecret = "hunter2-source-pw"

// TestSecretsNeverReachTheBrowser checks that a password in the
// configuration is shown neither on its form nor by /api/config, that
// saving the form with the field left empty keeps it, that a new value
// replaces it and that its clear box empties it.
func TestSecretsNeverReachTheBrowser(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Stream.SourcePassword = sourceSecret })
	r.start()
	c := r.loggedInClient()
	page := get(t, c, r.url("/config?section=stream"))
	if strings.Contains(page, sourceSecret) {
		t.Fatal("the stream form shows the source password")
	}
	if !strings.Contains(page, `type="password"`) || !strings.Contains(page, "set: leave empty to keep") {
		t.Error("the source password is not a password field saying it is set")
	}
	if api := get(t, c, r.url("/api/config")); strings.Contains(api, sourceSecret) || !strings.Contains(api, `"source-password": "(set)"`) {
		t.Errorf("/api/config does not mask the source password:\n%s", api)
	}

	save := func(v url.Values) {
		t.Helper()
		v.Set("section", "stream")
		resp, err := c.PostForm(r.url("/config"), v)
		body(t, resp, err)
		if resp.Request.URL.Query().Get("saved") != "1" {
			t.Fatalf("save ended on %s", resp.Request.URL)
		}
	}
	save(url.Values{"stream.source-password": {""}, "stream.admin-user": {"boss"}})
	if got := r.savedConfig().Stream; got.SourcePassword != sourceSecret || got.AdminUser != "boss" {
		t.Errorf("after saving with the field empty: password %q, admin-user %q; want it kept", got.SourcePassword, got.AdminUser)
	}
	save(url.Values{"stream.source-password": {"new-pass"}})
	if got := r.savedConfig().Stream.SourcePassword; got != "new-pass" {
		t.Errorf("password %q after typing a new one", got)
	}
	save(url.Values{"stream.source-password": {""}, "stream.source-password.clear": {"on"}})
	if got := r.savedConfig().Stream.SourcePassword; got != "" {
		t.Errorf("password %q after clearing it", got)
	}
}

// TestMaskSecretsReachesNestedLists checks the masking of secrets inside
// arrays of tables (a mount's token keys and users).
func TestMaskSecretsReachesNestedLists(t *testing.T) {
	cfg := config.Default()
	m := netstream.DefaultMount()
	m.Auth.TokenKeys = []string{"00112233", "44556677"}
	m.Auth.Users = []string{"alice:pw"}
	m.Auth.Password = "backend-pw"
	cfg.Stream.Mounts = []netstream.MountConfig{m}
	maskSecrets(reflect.ValueOf(cfg))
	a := cfg.Stream.Mounts[0].Auth
	if !reflect.DeepEqual(a.TokenKeys, []string{"(2 set)"}) || !reflect.DeepEqual(a.Users, []string{"(1 set)"}) || a.Password != "(set)" {
		t.Errorf("masked auth %+v", a)
	}
	if cfg.Stream.SourcePassword != "" {
		t.Errorf("an empty secret became %q", cfg.Stream.SourcePassword)
	}
}
