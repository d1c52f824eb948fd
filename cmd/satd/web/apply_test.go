package web

import (
	"bytes"
	stdhtml "html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
)

// TestAddingReaderNeedsRestart: a save that only a restart puts fully in
// force says so per component, and every page carries the banner with its
// Restart button until the restart.
func TestAddingReaderNeedsRestart(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	form := url.Values{"section": {"reader"}, "index": {"1"},
		"reader[1].label": {"fixed"}, "reader[1].protocol": {"constcw"}, "reader[1].enable.present": {"1"}, "reader[1].enable": {"on"}}
	resp, err := c.PostForm(r.url(newReaderPath), form)
	b := body(t, resp, err)
	for _, want := range []string{
		"part of it waits for a restart",
		`<li class="restart">readers: restart needed (reader list changed)</li>`,
		`<li class="applied">balancer: applied</li>`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("after adding a reader the page lacks %q", want)
		}
	}
	if strings.Contains(b, "saved and applied") {
		t.Error(`adding a reader is called "applied"`)
	}
	for _, p := range []string{"/", "/balancer", "/config?section=web", "/log", "/system"} {
		if b := get(t, c, r.url(p)); !strings.Contains(b, `id="restart-banner"`) || !strings.Contains(b, "readers: reader list changed") ||
			!strings.Contains(b, `<form method="post" action="/system/restart"><button id="restart-now">`) {
			t.Errorf("%s has no restart banner with its button", p)
		}
	}
	resp, err = c.PostForm(r.url("/system/restart"), nil)
	if b := body(t, resp, err); r.restarts != 0 || !strings.Contains(b, "Restart satd now?") {
		t.Fatalf("an unconfirmed restart: restarts %d", r.restarts)
	}
	resp, err = c.PostForm(r.url("/system/restart"), url.Values{"confirmed": {"1"}})
	// POST, redirect, GET: a reload of the answer does not restart again.
	if b := body(t, resp, err); resp.Request.Method != http.MethodGet || !strings.Contains(b, "satd is restarting") {
		t.Errorf("a confirmed restart ends on %s %s", resp.Request.Method, resp.Request.URL)
	}
	if r.restarts != 1 {
		t.Fatalf("restarts %d", r.restarts)
	}
	if b := get(t, c, r.url("/")); strings.Contains(b, `id="restart-banner"`) {
		t.Error("the banner outlived the restart")
	}
}

// TestStreamPortInUseFails: a component that cannot take the change fails
// the save with its reason, and the previous configuration is back in the
// file and in force.
func TestStreamPortInUseFails(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	form := url.Values{"section": {"stream"}, "stream.enabled.present": {"1"}, "stream.enabled": {"on"}, "stream.listen": {busy.Addr().String()}}
	resp, err := c.PostForm(r.url("/config"), form)
	b := body(t, resp, err)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("save with the stream port in use: %d, want 409", resp.StatusCode)
	}
	for _, want := range []string{
		`<li class="failed">stream: failed (listen tcp ` + busy.Addr().String() + `: bind: address already in use)</li>`,
		"the previous configuration is back in force",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if r.savedConfig().Stream.Enabled || r.current().Stream.Enabled {
		t.Error("the failed change stayed in the file or in force")
	}
	if strings.Contains(b, "applied.") {
		t.Error("a failed change is called applied")
	}
}

// TestListenClashRefusedByForm: two components on one address are refused
// next to the field, and nothing is saved.
func TestListenClashRefusedByForm(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	resp, err := c.PostForm(r.url("/config"), url.Values{"section": {"dvbapi"}, "dvbapi.listen": {r.srv.Addr()}})
	b := body(t, resp, err)
	want := `id="f-dvbapi-listen-error" role="alert">` + r.srv.Addr() + ` is already taken by web.listen`
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b, want) {
		t.Errorf("clash: %d; page lacks %q", resp.StatusCode, want)
	}
	if r.applies != 0 || r.savedConfig().DVBAPI.Listen == r.srv.Addr() {
		t.Error("the clash was saved or applied")
	}
}

// TestSaveDuringPendingConfirmKept: a save made while a risky change waits
// for its confirmation survives the revert of that change; a second risky
// change is refused with the reason, not lost.
func TestSaveDuringPendingConfirmKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "127.0.0.1:18080", nil)
		risky, _ := cloneConfig(r.current())
		risky.Web.AllowedHosts = []string{"receiver.lan"}
		if res, err := r.srv.save(risky); err != nil || !res.Confirm {
			t.Fatalf("risky save: %+v %v", res, err)
		}
		plain, _ := cloneConfig(r.current())
		plain.Log.Level = "debug"
		if res, err := r.srv.save(plain); err != nil || res.Confirm {
			t.Fatalf("save while pending: %+v %v", res, err)
		}
		again, _ := cloneConfig(r.current())
		again.Web.Allow = []string{"10.0.0.0/8"}
		if _, err := r.srv.save(again); err != ErrPending {
			t.Errorf("second risky change while pending: %v, want ErrPending", err)
		}
		time.Sleep(91 * time.Second)
		synctest.Wait()
		for what, cfg := range map[string]*config.Config{"file": r.savedConfig(), "in force": r.current()} {
			if len(cfg.Web.AllowedHosts) != 0 {
				t.Errorf("%s: unconfirmed allowed_hosts %v not reverted", what, cfg.Web.AllowedHosts)
			}
			if cfg.Log.Level != "debug" {
				t.Errorf("%s: log.level %q; the save made while pending was lost by the revert", what, cfg.Log.Level)
			}
		}
	})
}

// TestImportWithoutReaderRefusesApply and the web.listen move named before
// the Apply.
func TestImportRefusalsAndNotes(t *testing.T) {
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	b := postFiles(t, c, r.url("/config/import"), map[string]string{"server": "[reader]\nlabel = remote\nprotocol = cccam\ndevice = example.com,12000\n"})
	if !strings.Contains(b, `id="import-no-reader"`) || strings.Contains(b, `id="apply-import"`) {
		t.Errorf("an import with no reader offers Apply")
	}
	b = postFiles(t, c, r.url("/config/import"), map[string]string{
		"conf":   "[webif]\nhttpport = 8888\n",
		"server": "[reader]\nlabel = fixed\nprotocol = constcw\ndevice = /tmp/constant.cw\n",
	})
	if !strings.Contains(b, `id="import-listen"`) || !strings.Contains(b, "<b>"+r.srv.Addr()+"</b> to <b>0.0.0.0:8888</b>") {
		t.Errorf("an import that moves the form does not say so:\n%s", b)
	}
	if !strings.Contains(b, `id="apply-import"`) {
		t.Errorf("a good import offers no Apply")
	}
}

// TestImportedChannelNamesOnStatus imports an oscam.srvid2 with the OSCam
// files, applies it, and finds the names on the Status page, the
// statistics rows and the explanations (dvbapi carries no names).
func TestImportedChannelNamesOnStatus(t *testing.T) {
	r := newRig(t, "", nil)
	r.status.st = Status{Services: []ServiceStatus{{Client: "tvh", CAID: 0x0B00, SID: 1, State: "descrambling"}}}
	r.balancer.rows[0].Channel = "" // the daemon's rows carry no names either
	r.start()
	c := r.loggedInClient()
	if b := get(t, c, r.url("/")); strings.Contains(b, "Sky Demo Eins") {
		t.Fatal("a name before the import")
	}
	srvid2 := "# SID:CAID@PROVID|name|type|description|provider\n0001:0B00@000000|Sky Demo Eins|TV||Demo\n0002:0B00|Zwei|TV||Demo\nbroken line\n"
	b := postFiles(t, c, r.url("/config/import"), map[string]string{
		"server": "[reader]\nlabel = slot0\nprotocol = constcw\ndevice = /tmp/constant.cw\n",
		"srvid2": srvid2,
	})
	if !strings.Contains(b, `id="import-names">2 channel names`) || !strings.Contains(b, "oscam.srvid2:4: not SID:CAID") {
		t.Fatalf("import page does not report the names:\n%s", b)
	}
	ta := b[strings.Index(b, `<textarea id="toml"`):]
	toml := ta[strings.Index(ta, ">")+1 : strings.Index(ta, "</textarea>")]
	resp, err := c.PostForm(r.url("/system/restore"), url.Values{"toml": {stdhtml.UnescapeString(toml)}, "names": {"1"}})
	b = body(t, resp, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply: %d %s", resp.StatusCode, b)
	}
	if b := get(t, c, r.url("/")); !strings.Contains(b, "<td>Sky Demo Eins</td>") {
		t.Errorf("Status does not name service 0B00@000000:0001 after the import")
	}
	b = get(t, c, r.url("/balancer"))
	if !strings.Contains(b, "<td>Sky Demo Eins</td>") {
		t.Errorf("Load balancer page does not name the service")
	}
	saved, err := os.ReadFile(filepath.Join(r.current().Global.StateDir, channels.File))
	if err != nil || !strings.Contains(string(saved), "0001:0B00@000000|Sky Demo Eins|TV||Demo") {
		t.Errorf("names not saved for the next start: %v\n%s", err, saved)
	}
}

// TestTypedWidgetsAndErrorSummary: enumerations are selects (a value from
// the file outside the list is kept as an option), numbers are number
// inputs, a refused save lists every bad field at the top with a link to it,
// and the section stays in the form's URL.
func TestTypedWidgetsAndErrorSummary(t *testing.T) {
	r := newRig(t, "", func(c *config.Config) { c.Balancer.LBMode = 7 })
	r.start()
	c := r.loggedInClient()
	b := get(t, c, r.url("/config?section=balancer"))
	for _, want := range []string{
		`<select id="f-balancer-lb_mode" name="balancer.lb_mode">`,
		`<option value="1">1 – fastest first</option>`,
		`<option value="7" selected>7</option>`,
		`action="/config?section=balancer"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("balancer section lacks %s", want)
		}
	}
	b = get(t, c, r.url(readerPath("slot0")))
	if !strings.Contains(b, `<select id="f-reader-0-protocol" name="reader[0].protocol">`) {
		t.Errorf("reader protocol is not a select")
	}
	resp, err := c.PostForm(r.url("/config?section=web"), url.Values{"section": {"web"}, "web.login_attempts": {"0"}, "web.listen": {"nowhere"}})
	b = body(t, resp, err)
	if resp.Request.URL.RawQuery != "section=web" {
		t.Errorf("refused save shown at %s, want the section in the URL", resp.Request.URL)
	}
	for _, want := range []string{`id="error-summary"`, `<a href="#f-web-login_attempts">web.login_attempts</a>: must be 1-100`, `<a href="#f-web-listen">web.listen</a>`, `<input type="number" step="1" id="f-web-login_attempts"`} {
		if !strings.Contains(b, want) {
			t.Errorf("refused save lacks %s", want)
		}
	}
}

// TestDecisionRowsPerReader: an explanation is one line per reader, the
// asked ones marked, under the lb_mode in force at that decision.
func TestDecisionRowsPerReader(t *testing.T) {
	var b bytes.Buffer
	writeDecisions(html{&b}, []Decision{{Service: "0B00@000000:0001", Channel: "Demo One", Readers: []string{"slot0"}, Mode: "0",
		Why: []ReaderWhy{{Reader: "slot0", Asked: true, Role: "primary", Reason: "matching reader; no selection with lb_mode 0"},
			{Reader: "slot1", Reason: "filtered by caid"}}}})
	for _, want := range []string{
		`<span class="mode">lb_mode 0 at that decision</span>`,
		`<li class="asked"><b>slot0</b> ✓ asked (primary): matching reader; no selection with lb_mode 0</li>`,
		`<li><b>slot1</b>: filtered by caid</li>`,
		`<td>Demo One</td>`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("decision lacks %s:\n%s", want, b.String())
		}
	}
}

// TestLoginReturnsOnlyHere: the page a login returns to is a path on this
// site; anything else sends the browser to the Status page.
func TestLoginReturnsOnlyHere(t *testing.T) {
	for in, want := range map[string]string{
		"/config?section=web": "/config?section=web", "/balancer": "/balancer",
		"//evil.example/": "/", "http://evil.example/": "/", "/\\evil": "/", "": "/", "/login?next=/x": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
	r := newRig(t, "", nil)
	r.start()
	c := r.loggedInClient()
	resp, err := c.PostForm(r.url("/login"), url.Values{"password": {"correct horse"}, "next": {"//evil.example/"}})
	body(t, resp, err)
	if resp.Request.URL.Host != r.srv.Addr() || resp.Request.URL.Path != "/" {
		t.Errorf("login with next=//evil.example ended at %s", resp.Request.URL)
	}
	resp, err = c.PostForm(r.url("/login"), url.Values{"password": {"correct horse"}, "next": {"/config?section=log"}})
	body(t, resp, err)
	if resp.Request.URL.RequestURI() != "/config?section=log" {
		t.Errorf("login with next=/config?section=log ended at %s", resp.Request.URL)
	}
}
