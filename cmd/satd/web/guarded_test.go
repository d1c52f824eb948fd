package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
)

// TestGuardedChangesNeedPassword (issue 16 rows 12 and 13): with a login
// alone, the update keys and a file path cannot be changed; with the
// current password they can, and a path outside the allowed directories is
// refused even then.
func TestGuardedChangesNeedPassword(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	const key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
	post := func(v url.Values) (int, string) {
		resp, err := c.PostForm(r.url("/config"), v)
		b := body(t, resp, err)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want func(*config.Config) bool
	}{
		{"update key", url.Values{"section": {"update"}, "update.public_keys": {key}},
			func(c *config.Config) bool { return len(c.Update.PublicKeys) == 1 }},
		{"ecm_info path", url.Values{"section": {"dvbapi"}, "dvbapi.ecm_info": {"/run/ecm.info"}},
			func(c *config.Config) bool { return c.DVBAPI.ECMInfo == "/run/ecm.info" }},
	} {
		code, b := post(tc.form)
		if code != http.StatusForbidden || !strings.Contains(b, "needs the current password") || tc.want(r.savedConfig()) {
			t.Errorf("%s without the password: %d, saved %v", tc.name, code, tc.want(r.savedConfig()))
		}
		tc.form.Set("current", "wrong password")
		if code, _ := post(tc.form); code != http.StatusForbidden || tc.want(r.savedConfig()) {
			t.Errorf("%s with a wrong password: %d", tc.name, code)
		}
		tc.form.Set("current", "correct horse")
		if code, b := post(tc.form); code != http.StatusOK || !tc.want(r.savedConfig()) {
			t.Errorf("%s with the password: %d %.200s", tc.name, code, b)
		}
	}
	for _, p := range []string{"/etc/shadow", "/tmp/../etc/passwd", "relative/ecm.info", "/usr/bin/satd"} {
		code, b := post(url.Values{"section": {"dvbapi"}, "dvbapi.ecm_info": {p}, "current": {"correct horse"}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(b, "must be inside") {
			t.Errorf("ecm_info = %q: %d, want 422 naming the allowed directories", p, code)
		}
	}
	if got := r.savedConfig().DVBAPI.ECMInfo; got != "/run/ecm.info" {
		t.Errorf("a refused path was saved: %q", got)
	}
	// The API takes the password in a header.
	req, _ := http.NewRequest("POST", r.url("/api/config/update"), strings.NewReader(`{"public_keys": []}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden || len(r.savedConfig().Update.PublicKeys) != 1 {
		t.Errorf("API change of the keys without the password: %d", resp.StatusCode)
	}
}

// TestGuardedChangesSeesArrays: a path inside an array of tables is found.
func TestGuardedChangesSeesArrays(t *testing.T) {
	old := config.Default()
	nw := config.Default()
	nw.Boards = []config.Board{{Name: "b", Device: "/etc/x"}}
	keys, err := guardedChanges(old, nw)
	if len(keys) == 0 || err == nil {
		t.Errorf("board device change: keys %v err %v", keys, err)
	}
	if keys, err := guardedChanges(old, config.Default()); len(keys) != 0 || err != nil {
		t.Errorf("no change: %v %v", keys, err)
	}
}
