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

// TestNoSecretOnAnyPage (issue 16 rows 6 and 7): a mount with a password,
// an auth backend password, users, token keys and an upstream URL with
// user:password is shown on the Status page, /api/status, /api/config and
// the stream tab and the mount pages without one of those values.
func TestNoSecretOnAnyPage(t *testing.T) {
	secrets := []string{"upw-secret", "mountpw-secret", "backendpw-secret", "alice:userpw-secret", "00112233445566778899aabbccddeeff"}
	r := newRig(t, "", func(c *config.Config) {
		m := netstream.DefaultMount()
		m.Name, m.Password = "/paid", "mountpw-secret"
		m.Upstreams = []string{"http://relay:upw-secret@192.0.2.1:8000/paid"}
		m.Auth.Type, m.Auth.Password = "users", "backendpw-secret"
		m.Auth.Users = []string{"alice:userpw-secret"}
		m.Auth.TokenKeys = []string{"00112233445566778899aabbccddeeff"}
		c.Stream.Mounts = []netstream.MountConfig{m}
	})
	r.status.st.Mounts = []MountStatus{{Name: "/paid", Upstream: "http://relay:upw-secret@192.0.2.1:8000/paid", Source: "http://relay:upw-secret@192.0.2.1:8000/paid"}}
	r.start()
	c := r.loggedInClient()
	for _, path := range []string{"/", "/api/status", "/api/config", "/config?section=stream", "/mounts", "/mounts/edit?i=0", "/system/backup"} {
		page := get(t, c, r.url(path))
		for _, s := range secrets {
			if strings.Contains(page, s) && path != "/system/backup" {
				t.Errorf("%s shows %q", path, s)
			}
		}
	}
	if page := get(t, c, r.url("/mounts/edit?i=0")); !strings.Contains(page, "relay:xxxxx@192.0.2.1") {
		t.Errorf("the mount page does not show the upstream with its password masked")
	}
	if m := r.savedConfig().Stream.Mounts; len(m) != 1 || m[0].Upstreams[0] != "http://relay:upw-secret@192.0.2.1:8000/paid" {
		t.Fatalf("setup: %+v", m)
	}
}

// TestMaskedURLPasswordKeptOnSave (row 6): an editable URL is shown with
// its password masked; sent back unchanged it keeps the real password, and
// edited around the mask it is refused with a message.
func TestMaskedURLPasswordKeptOnSave(t *testing.T) {
	const real = "https://fleet:urlpw-secret@updates.example/satd.json"
	r := newRig(t, "", func(c *config.Config) { c.Update.URL = real })
	r.start()
	c := r.loggedInClient()
	page := get(t, c, r.url("/config?section=update"))
	if strings.Contains(page, "urlpw-secret") || !strings.Contains(page, "fleet:xxxxx@updates.example") {
		t.Fatalf("the update tab does not mask the URL password")
	}
	post := func(v string) string {
		resp, err := c.PostForm(r.url("/config"), url.Values{"section": {"update"}, "update.url": {v}})
		return body(t, resp, err)
	}
	post("https://fleet:xxxxx@updates.example/satd.json")
	if got := r.savedConfig().Update.URL; got != real {
		t.Errorf("after saving the masked URL unchanged: %q", got)
	}
	if b := post("https://fleet:xxxxx@other.example/satd.json"); !strings.Contains(b, "type it again") {
		t.Errorf("an edited URL with a masked password was not refused")
	}
	if got := r.savedConfig().Update.URL; got != real {
		t.Errorf("refused save changed the URL to %q", got)
	}
}
