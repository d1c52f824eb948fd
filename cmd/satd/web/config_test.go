package web

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/netstream"
)

// TestEverySectionHasAForm walks every section of config.Config: each renders
// with a field per key, the OSCam name where the description gives one, and
// its default.
func TestEverySectionHasAForm(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	for _, name := range sectionNames() {
		var b string
		if name == "reader" {
			b = readerPagesOfEveryProtocol(t, c, r, "slot0")
		} else {
			b = get(t, c, r.url("/config?section="+name))
		}
		sec, _ := buildSection(r.current(), name, nil, nil)
		for _, tb := range sec.Tables {
			for _, f := range tb.Fields {
				if f.Key == mountsKey {
					continue // edited on the mount pages (TestMountAddEditDelete)
				}
				if f.Kind == "table" && strings.Contains(b, `<table id="`+f.ID+`">`) {
					continue // read-only (TestListenSocketsTable)
				}
				if !strings.Contains(b, `name="`+f.Key+`"`) {
					t.Errorf("section %s: no input for %s", name, f.Key)
				}
			}
		}
	}
	b := get(t, c, r.url("/config?section=web"))
	for _, want := range []string{"OSCam: httpport", "Default: 127.0.0.1:8080", "Default: 1m30s"} {
		if !strings.Contains(b, want) {
			t.Errorf("web section lacks %q", want)
		}
	}
}

// readerPagesOfEveryProtocol is the page of reader label under each
// protocol, one after the other: together they hold every reader key.
func readerPagesOfEveryProtocol(t *testing.T, c *http.Client, r *rig, label string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range choicesFor("reader.protocol", "") {
		if p.Value != "" {
			b.WriteString(get(t, c, r.url(readerPath(label)+"?protocol="+p.Value)))
		}
	}
	return b.String()
}

func TestValidationMessageNextToField(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	form := url.Values{"section": {"dvbapi"}, "dvbapi.listen": {"127.0.0.1:99999"}, "dvbapi.allow": {"10.0.0.0/8\nnot-an-address"}}
	resp, err := c.PostForm(r.url("/config"), form)
	b := body(t, resp, err)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("invalid save: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`<span class="field-error" id="f-dvbapi-listen-error" role="alert">&#34;127.0.0.1:99999&#34;: port must be 1-65535</span>`,
		`id="f-dvbapi-allow-error"`,
		`value="127.0.0.1:99999"`, // the typed value is kept
		`aria-describedby="f-dvbapi-listen-error"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("response lacks %s", want)
		}
	}
	if r.applies != 0 || r.savedConfig().DVBAPI.Listen != "127.0.0.1:9000" {
		t.Errorf("an invalid configuration was saved or applied")
	}
	// A value that does not even parse is reported the same way.
	resp, err = c.PostForm(r.url("/config"), url.Values{"section": {"web"}, "web.login_attempts": {"many"}})
	b = body(t, resp, err)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, `id="f-web-login_attempts-error"`) {
		t.Errorf("unparsable value: %d", resp.StatusCode)
	}
}

func TestSaveAppliesWithoutRestart(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	resp, err := c.PostForm(r.url("/config"), url.Values{"section": {"dvbapi"}, "dvbapi.user": {"tvh"}, "dvbapi.enabled.present": {"1"}})
	body(t, resp, err)
	if resp.Request.URL.Query().Get("saved") != "1" {
		t.Fatalf("save ended on %s", resp.Request.URL)
	}
	if got := r.savedConfig().DVBAPI; got.User != "tvh" || got.Enabled {
		t.Errorf("saved dvbapi = %+v; want user tvh, enabled false (checkbox off)", got)
	}
	if r.applies != 1 || r.current().DVBAPI.User != "tvh" || r.restarts != 0 {
		t.Errorf("applies %d, restarts %d", r.applies, r.restarts)
	}
}

// TestListSectionAddDelete: a list section's form (boards) adds an element
// and asks before a save that deletes one.
func TestListSectionAddDelete(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Boards = []config.Board{{Name: "box"}} })
	r.start()
	c := r.loggedInClient()
	b := get(t, c, r.url("/config?section=board&add=1"))
	if !strings.Contains(b, `name="board.count" value="2"`) {
		t.Fatalf("add did not offer a second board")
	}
	form := url.Values{"section": {"board"}, "board.count": {"2"},
		"board[0].name": {"box"}, "board[0].delete": {"1"}, "board[1].name": {"other"},
		"current": {"typed password"}}
	// A save that deletes asks first, and the question page does not carry
	// the current password (deletionConfirmed).
	resp, err := c.PostForm(r.url("/config"), form)
	if b = body(t, resp, err); !strings.Contains(b, `id="confirm-question"`) || !strings.Contains(b, "Delete board 1") ||
		strings.Contains(b, "typed password") || len(r.current().Boards) != 1 || r.current().Boards[0].Name != "box" {
		t.Fatalf("a delete was not asked first:\n%s", b)
	}
	form.Set("confirmed", "1")
	resp, err = c.PostForm(r.url("/config"), form)
	body(t, resp, err)
	if got := r.savedConfig().Boards; len(got) != 1 || got[0].Name != "other" {
		t.Errorf("boards = %+v", got)
	}
}

// TestOldReaderFormRetired: the form of every reader at once is gone. Its
// address leads to the reader list (or the new reader's page), the list no
// longer links to it, and a post of it from an old tab is refused, pointing
// to the reader pages, with nothing saved. The stream tab likewise leaves
// the mounts to their own pages: its form cannot change them.
func TestOldReaderFormRetired(t *testing.T) {
	r := newRig(t, "", func(cfg *config.Config) {
		cfg.Stream.Mounts = []netstream.MountConfig{{Name: "/radio", Upstreams: []string{"http://up.example/live"}}}
	})
	r.start()
	c := r.loggedInClient()
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for from, to := range map[string]string{"/config?section=reader": readersPath, "/config?section=reader&add=1": newReaderPath} {
		resp, err := noFollow.Get(r.url(from))
		body(t, resp, err)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != to {
			t.Errorf("GET %s: %d to %q, want 303 to %s", from, resp.StatusCode, resp.Header.Get("Location"), to)
		}
	}
	if b := get(t, c, r.url(readersPath)); strings.Contains(b, "section=reader") || strings.Contains(b, "All readers in one form") {
		t.Error("the reader list still links to the all-readers form")
	}
	before := r.current().Readers
	resp, err := c.PostForm(r.url("/config?section=reader"), url.Values{"section": {"reader"}, "reader.count": {"1"},
		"reader[0].label": {"renamed"}, "reader[0].protocol": {"constcw"}, "confirmed": {"1"}})
	b := body(t, resp, err)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(b, "one at a time on their own pages") ||
		!strings.Contains(b, `<a id="go-on" href="/config/readers">`) {
		t.Errorf("old reader form post: %d\n%s", resp.StatusCode, b)
	}
	if got := r.savedConfig().Readers; r.applies != 0 || len(got) != len(before) || got[0].Label != before[0].Label || got[0].Protocol != before[0].Protocol {
		t.Errorf("the refused post changed the readers: %+v (applies %d)", got, r.applies)
	}

	b = get(t, c, r.url("/config?section=stream"))
	if !strings.Contains(b, `<a href="/mounts">Edit the stream mounts</a>`) || strings.Contains(b, `name="stream.mount`) {
		t.Error("the stream tab shows mount fields instead of the link to the mount pages")
	}
	resp, err = c.PostForm(r.url("/config?section=stream"), url.Values{"section": {"stream"}, "stream.mount.count": {"1"},
		"stream.mount[0].mount-name": {"/hijack"}, "stream.mount[0].delete": {"1"}})
	body(t, resp, err)
	if got := r.current().Stream.Mounts; len(got) != 1 || got[0].Name != "/radio" {
		t.Errorf("a stream-tab post changed the mounts: %+v", got)
	}
}

func TestAPIConfig(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	var m struct {
		Web    map[string]any   `json:"web"`
		Reader []map[string]any `json:"reader"`
	}
	if err := json.Unmarshal([]byte(get(t, c, r.url("/api/config"))), &m); err != nil {
		t.Fatal(err)
	}
	if m.Web["listen"] != r.srv.Addr() || len(m.Reader) != 1 || m.Reader[0]["label"] != "slot0" {
		t.Errorf("/api/config = %+v", m)
	}
	post := func(section, js string) (int, string) {
		resp, err := c.Post(r.url("/api/config/"+section), "application/json", strings.NewReader(js))
		b := body(t, resp, err)
		return resp.StatusCode, b
	}
	code, b := post("log", `{"level": "loud"}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(b, `"key": "log.level"`) {
		t.Errorf("invalid level: %d %s", code, b)
	}
	code, b = post("log", `{"level": "debug", "levels": {"web": "warn"}}`)
	if code != http.StatusOK || r.current().Log.Level != "debug" || r.current().Log.Levels["web"] != "warn" {
		t.Errorf("valid save: %d %s", code, b)
	}
	code, _ = post("nosuch", `{}`)
	if code != http.StatusBadRequest {
		t.Errorf("unknown section: %d", code)
	}
}

// TestConfirmRevertsAfterTimeout runs the 90 s timer in a synctest bubble.
func TestConfirmRevertsAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "127.0.0.1:18080", nil)
		cfg, _ := cloneConfig(r.current())
		cfg.Web.AllowedHosts = []string{"receiver.lan"}
		res, err := r.srv.save(cfg)
		if err != nil || !res.Confirm {
			t.Fatalf("save: %+v %v", res, err)
		}
		if got := r.savedConfig().Web.AllowedHosts; len(got) != 1 {
			t.Fatalf("change not saved before confirmation: %v", got)
		}
		again, _ := cloneConfig(cfg)
		again.Web.Allow = []string{"10.0.0.0/8"}
		if _, err := r.srv.save(again); err != ErrPending {
			t.Errorf("second risky change while pending: %v", err)
		}
		time.Sleep(89 * time.Second)
		synctest.Wait()
		if r.savedConfig().Web.AllowedHosts == nil {
			t.Fatalf("reverted before 90 s")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := r.savedConfig().Web.AllowedHosts; len(got) != 0 {
			t.Errorf("after 90 s the file still has %v", got)
		}
		if got := r.current().Web.AllowedHosts; len(got) != 0 || r.applies != 2 {
			t.Errorf("after 90 s in force: %v (applies %d)", got, r.applies)
		}
		if r.srv.confirm.outcome() != "reverted" {
			t.Errorf("outcome %q", r.srv.confirm.outcome())
		}
	})
}

func TestConfirmKeepsChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "127.0.0.1:18080", nil)
		cfg, _ := cloneConfig(r.current())
		cfg.Web.Allow = []string{"192.168.0.0/16"}
		if _, err := r.srv.save(cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		if !r.srv.confirm.confirm() {
			t.Fatal("nothing to confirm")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := r.savedConfig().Web.Allow; len(got) != 1 {
			t.Errorf("confirmed change reverted: %v", got)
		}
	})
}

func TestBackupRestore(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	backup := get(t, c, r.url("/system/backup"))
	if _, err := config.Parse("backup", []byte(backup)); err != nil {
		t.Fatalf("backup does not parse: %v", err)
	}
	upload := func(doc string) (int, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("backup", "satd.toml")
		fw.Write([]byte(doc))
		mw.Close()
		resp, err := c.Post(r.url("/system/restore"), mw.FormDataContentType(), &b)
		out := body(t, resp, err)
		return resp.StatusCode, out
	}
	if code, b := upload("[log]\nlevel = \"loud\"\n"); code != http.StatusUnprocessableEntity || !strings.Contains(b, "log.level") {
		t.Errorf("invalid restore: %d", code)
	}
	changed := strings.Replace(backup, "level = 'info'", "level = 'warn'", 1)
	if code, _ := upload(changed); code != http.StatusOK || r.current().Log.Level != "warn" {
		t.Errorf("restore: %d, level %q", code, r.current().Log.Level)
	}
}

func TestBalancerActions(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	form := url.Values{"reader": {"slot0"}, "key": {"0B00@000000:0002:0000:64"}}
	resp, err := c.PostForm(r.url("/balancer/clear"), form)
	b := body(t, resp, err)
	// Not confirmed yet: the page asks, and its button posts the same row.
	if n := len(r.balancer.Stats()); n != 2 || !strings.Contains(b, `id="confirm-question"`) ||
		!strings.Contains(b, `<input type="hidden" name="key" value="0B00@000000:0002:0000:64">`) || !strings.Contains(b, `name="confirmed" value="1"`) {
		t.Errorf("unconfirmed clear: %d rows; page:\n%s", n, b)
	}
	form.Set("confirmed", "1")
	resp, err = c.PostForm(r.url("/balancer/clear"), form)
	body(t, resp, err)
	if n := len(r.balancer.Stats()); n != 1 {
		t.Errorf("after clear: %d rows", n)
	}
	resp, err = c.Post(r.url("/api/balancer/reset"), "application/json", strings.NewReader(`{"reader": ""}`))
	body(t, resp, err)
	if n := len(r.balancer.Stats()); n != 0 || resp.StatusCode != http.StatusOK {
		t.Errorf("after reset: %d rows, %d", n, resp.StatusCode)
	}
}

func TestFirmwareUpload(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	for _, tt := range []struct {
		content string
		code    int
	}{{"SIGNED image", http.StatusOK}, {"forged image", http.StatusUnprocessableEntity}} {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("image", "satd.raucb")
		fw.Write([]byte(tt.content))
		mw.Close()
		resp, err := c.Post(r.url("/system/firmware"), mw.FormDataContentType(), &b)
		body(t, resp, err)
		if resp.StatusCode != tt.code || string(r.updater.got) != tt.content {
			t.Errorf("upload %q: %d, updater got %q", tt.content, resp.StatusCode, r.updater.got)
		}
	}
}

// TestListenSocketsTable: the stream's extra listen sockets, which the form
// cannot edit, read as a labelled table (not a dump of a Go struct), and a
// save of the stream tab keeps them.
func TestListenSocketsTable(t *testing.T) {
	r := newRig(t, "", func(cfg *config.Config) {
		cfg.Stream.ListenSockets = []netstream.ListenSocket{{Port: 8443, BindAddress: "192.0.2.1"}, {Port: 8001}}
	})
	r.start()
	c := r.loggedInClient()
	b := get(t, c, r.url("/config?section=stream"))
	id := fieldID("stream.listen-socket")
	for _, want := range []string{`<table id="` + id + `"><thead><tr><th>port</th><th>bind-address</th><th>ssl</th></tr></thead>`,
		`<tr><td>8443</td><td>192.0.2.1</td><td>false</td></tr>`, `<tr><td>8001</td><td>(empty)</td><td>false</td></tr>`,
		"Read-only here: edit stream.listen-socket in the configuration file"} {
		if !strings.Contains(b, want) {
			t.Errorf("the stream tab lacks %s", want)
		}
	}
	if strings.Contains(b, "{8443") {
		t.Error("the listen sockets are still a Go struct dump")
	}
	resp, err := c.PostForm(r.url("/config?section=stream"), url.Values{"section": {"stream"}, "stream.clients.present": {"1"}})
	body(t, resp, err)
	if got := r.current().Stream.ListenSockets; len(got) != 2 || got[0].Port != 8443 || got[0].BindAddress != "192.0.2.1" {
		t.Errorf("a stream-tab save changed the listen sockets: %+v", got)
	}
}
