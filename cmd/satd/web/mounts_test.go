package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/netstream"
)

// postMount posts the mount page's form and returns the final status,
// path and body (a save redirects to the list).
func postMount(t *testing.T, c *http.Client, r *rig, action string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := c.PostForm(r.url(action), form)
	b := body(t, resp, err)
	return resp.StatusCode, resp.Request.URL.RequestURI(), b
}

// TestMountAddEditDelete adds, edits and deletes a stream mount through the
// form, end to end: each save goes through the apply transaction and ends
// on the list with every component's outcome; the secrets never reach a
// page and an edit that leaves them empty keeps them.
func TestMountAddEditDelete(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()

	if b := get(t, c, r.url("/config?section=stream")); !strings.Contains(b, `href="/mounts"`) {
		t.Fatal("the stream tab has no link to the mounts")
	}
	b := get(t, c, r.url("/mounts/edit?i=new"))
	for _, want := range []string{`name="i" value="new"`, `name="prefix" value="stream.mount[0]"`, `name="stream.mount[0].mount-name"`,
		`<option value="url">`, `name="stream.mount[0].authentication.on-error"`, `name="stream.mount[0].max-listeners"`} {
		if !strings.Contains(b, want) {
			t.Fatalf("new mount page lacks %s", want)
		}
	}
	add := url.Values{"i": {"new"}, "prefix": {"stream.mount[0]"},
		"stream.mount[0].mount-name": {"/radio"}, "stream.mount[0].upstream": {"http://relay:upsecret@up.example/live"},
		"stream.mount[0].max-listeners": {"50"}, "stream.mount[0].authentication.type": {"url"},
		"stream.mount[0].authentication.listener_add": {"http://auth.example/add"},
		"stream.mount[0].authentication.password":     {"hunter2"}, "stream.mount[0].authentication.timeout": {"3s"}}
	code, at, b := postMount(t, c, r, "/mounts/edit", add)
	if code != http.StatusOK || at != "/mounts?saved=1" || !strings.Contains(b, `id="apply-result"`) || !strings.Contains(b, "stream: applied") {
		t.Fatalf("add ended at %s (%d):\n%s", at, code, b)
	}
	ms := r.savedConfig().Stream.Mounts
	if len(ms) != 1 || ms[0].Name != "/radio" || ms[0].MaxListeners != 50 || ms[0].Auth.Password != "hunter2" ||
		ms[0].Auth.Type != "url" || ms[0].Auth.Timeout.Std().Seconds() != 3 || ms[0].Upstreams[0] != "http://relay:upsecret@up.example/live" {
		t.Fatalf("saved mounts %+v", ms)
	}

	for _, page := range []string{"/mounts", "/mounts/edit?i=0", "/config?section=stream", "/api/config"} {
		b = get(t, c, r.url(page))
		if strings.Contains(b, "hunter2") || strings.Contains(b, "upsecret") {
			t.Errorf("%s shows a mount secret", page)
		}
	}
	if !strings.Contains(b, "http://relay:xxxxx@up.example/live") {
		t.Errorf("the upstream is not shown masked")
	}

	// The browser sends back the masked URL and an empty password: both keep
	// what is in force.
	edit := url.Values{"i": {"0"}, "was": {"/radio"}, "prefix": {"stream.mount[0]"},
		"stream.mount[0].mount-name": {"/radio"}, "stream.mount[0].upstream": {"http://relay:xxxxx@up.example/live\nhttp://backup.example/live"},
		"stream.mount[0].max-listeners": {"7"}, "stream.mount[0].authentication.password": {""},
		"stream.mount[0].public.present": {"1"}, "stream.mount[0].public": {"on"}}
	if code, at, b = postMount(t, c, r, "/mounts/edit", edit); at != "/mounts?saved=1" {
		t.Fatalf("edit ended at %s (%d):\n%s", at, code, b)
	}
	m := r.savedConfig().Stream.Mounts[0]
	if m.MaxListeners != 7 || !m.Public || m.Auth.Password != "hunter2" ||
		!slices.Equal(m.Upstreams, []string{"http://relay:upsecret@up.example/live", "http://backup.example/live"}) {
		t.Errorf("edited mount %+v", m)
	}

	// An edit from a page older than the list is refused, not applied to
	// another mount.
	stale := url.Values{"i": {"0"}, "was": {"/other"}, "prefix": {"stream.mount[0]"}, "stream.mount[0].max-listeners": {"1"}}
	if code, _, _ = postMount(t, c, r, "/mounts/edit", stale); code != http.StatusConflict || r.savedConfig().Stream.Mounts[0].MaxListeners != 7 {
		t.Errorf("stale edit: %d", code)
	}

	del := url.Values{"i": {"0"}, "was": {"/radio"}}
	code, at, b = postMount(t, c, r, "/mounts/delete", del)
	if code != http.StatusOK || !strings.Contains(b, `id="confirm-question"`) || !strings.Contains(b, "/radio") || len(r.savedConfig().Stream.Mounts) != 1 {
		t.Fatalf("delete without confirmation: %d at %s", code, at)
	}
	del.Set("confirmed", "1")
	if _, at, b = postMount(t, c, r, "/mounts/delete", del); at != "/mounts?saved=1" || !strings.Contains(b, "No mounts.") {
		t.Fatalf("confirmed delete ended at %s:\n%s", at, b)
	}
	if n := len(r.savedConfig().Stream.Mounts); n != 0 {
		t.Errorf("%d mounts after the delete", n)
	}
}

// TestMountErrorSummary: refused values come back with the summary at the
// top linking to each field, what was typed kept, nothing saved.
func TestMountErrorSummary(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	bad := url.Values{"i": {"new"}, "prefix": {"stream.mount[0]"},
		"stream.mount[0].mount-name": {"radio"}, "stream.mount[0].max-listeners": {"many"}}
	code, _, b := postMount(t, c, r, "/mounts/edit", bad)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{`id="error-summary"`, `href="#f-stream-mount-0-max-listeners"`, `value="many"`, `aria-invalid="true"`} {
		if !strings.Contains(b, want) {
			t.Errorf("refused save lacks %s", want)
		}
	}
	bad.Set("stream.mount[0].max-listeners", "5")
	if _, _, b = postMount(t, c, r, "/mounts/edit", bad); !strings.Contains(b, `href="#f-stream-mount-0-mount-name"`) || !strings.Contains(b, "must start with /") {
		t.Errorf("an invalid mount name is not listed with its link:\n%s", b)
	}
	if n := len(r.savedConfig().Stream.Mounts); n != 0 {
		t.Errorf("%d mounts saved from refused forms", n)
	}
}

// TestMountDeleteKeepsFallbacksValid: deleting a mount another one falls
// back to is refused with the reason.
func TestMountDeleteKeepsFallbacksValid(t *testing.T) {
	r := newRig(t, "", func(cfg *config.Config) {
		a, b := netstream.DefaultMount(), netstream.DefaultMount()
		a.Name, b.Name, a.FallbackMount = "/a", "/b", "/b"
		cfg.Stream.Mounts = []netstream.MountConfig{a, b}
	})
	r.start()
	c := r.loggedInClient()
	code, _, b := postMount(t, c, r, "/mounts/delete", url.Values{"i": {"1"}, "was": {"/b"}, "confirmed": {"1"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(b, "fallback-mount") || len(r.savedConfig().Stream.Mounts) != 2 {
		t.Errorf("delete of a fallback target: %d\n%s", code, b)
	}
}
