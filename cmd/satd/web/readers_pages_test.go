package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// readerPagePaths are the reader pages TestBrowserScreenshots photographs
// and checks for sideways scrolling on a phone.
var readerPagePaths = []string{"/config/readers", "/config/readers/slot0", "/config/readers/slot0?protocol=internal", "/config/newreader?protocol=mouse"}

// fakeReaders is the daemon's reader control in miniature: a restart
// counts, a counter reset zeroes the reader's ECM counts in the status.
type fakeReaders struct {
	mu       sync.Mutex
	restarts map[string]int
	status   *fakeStatus
}

func (f *fakeReaders) Restart(label string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts[label]++
	return nil
}

func (f *fakeReaders) ResetCounters(label string) error {
	f.status.mu.Lock()
	defer f.status.mu.Unlock()
	for i := range f.status.st.Readers {
		if rd := &f.status.st.Readers[i]; rd.Label == label {
			rd.ECMOK, rd.ECMNotFound, rd.ECMTimeout, rd.AvgTime = 0, 0, 0, 0
		}
	}
	return nil
}

// readersRig has three readers of different kinds and states, with the
// reader control wired.
func readersRig(t *testing.T) (*rig, *fakeReaders, *http.Client) {
	r := newRig(t, "", func(c *config.Config) {
		sim := config.DefaultReader()
		sim.Label, sim.Protocol = "conax-sim", "constcw"
		if config.SimInBuild {
			sim.Protocol = "sim"
		}
		slot := config.DefaultReader()
		slot.Label, slot.Protocol, slot.Enable, slot.Device = "slot1", "pcsc", false, "0"
		c.Readers = append(c.Readers, sim, slot)
	})
	r.status.st.Readers = []ReaderStatus{
		{Label: "slot0", State: "ready", ECMOK: 12, ECMNotFound: 1, AvgTime: 180 * time.Millisecond},
		{Label: "conax-sim", State: "ready", ECMOK: 3, AvgTime: 0},
		{Label: "slot1", State: "disabled"},
	}
	fr := &fakeReaders{restarts: map[string]int{}, status: r.status}
	r.srv.opt.Readers = fr
	r.start()
	return r, fr, r.loggedInClient()
}

// TestReaderListShowsEveryReader: one row per reader with its protocol,
// whether it is enabled, its card state, ECM counts and average, and the
// actions that fit; "Add reader" and the import come before the list.
func TestReaderListShowsEveryReader(t *testing.T) {
	r, _, c := readersRig(t)
	b := get(t, c, r.url("/config/readers"))
	for _, tc := range []struct {
		label string
		want  []string
	}{
		{"slot0", []string{"<td>constcw</td><td>yes</td>", `<span class="state ready">ready</span>`, "<td>12 / 1 / 0</td><td>180 ms</td>", `id="disable-slot0"`, `id="restart-slot0"`, `id="reset-slot0"`}},
		{"conax-sim", []string{"<td>yes</td>", "<td>3 / 0 / 0</td><td>0 ms</td>", `id="disable-conax-sim"`}},
		{"slot1", []string{"<td>pcsc</td><td>no</td>", `<span class="state disabled">disabled</span>`, `id="enable-slot1"`}},
	} {
		i := strings.Index(b, `<tr id="reader-`+tc.label+`">`)
		if i < 0 {
			t.Errorf("no row for %s", tc.label)
			continue
		}
		row, _, _ := strings.Cut(b[i:], "</tr>")
		if !strings.Contains(row, `<a href="/config/readers/`+tc.label+`">`) {
			t.Errorf("%s: no link to its page", tc.label)
		}
		for _, w := range tc.want {
			if !strings.Contains(row, w) {
				t.Errorf("%s: row lacks %s\n%s", tc.label, w, row)
			}
		}
	}
	if strings.Contains(b, `id="restart-slot1"`) {
		t.Errorf("a disabled reader offers a restart")
	}
	add, imp, list := strings.Index(b, `id="add-reader"`), strings.Index(b, `href="#import"`), strings.Index(b, `id="reader-list"`)
	if add < 0 || imp < 0 || add > list || imp > list || !strings.Contains(b, `<div id="import">`) {
		t.Errorf("Add reader (%d) and import (%d) are not above the list (%d)", add, imp, list)
	}
}

// TestReaderActions: each action asks first when it is destructive, does
// nothing unconfirmed, and then does what it says, with the outcome shown
// after a redirect.
func TestReaderActions(t *testing.T) {
	for _, tc := range []struct {
		reader, act string
		confirm     bool
		flash       string
		check       func(r *rig, fr *fakeReaders) string
	}{
		{"slot0", "disable", true, "Reader slot0 disabled and applied.", func(r *rig, _ *fakeReaders) string {
			// The applied configuration is what the balancer gets: the
			// daemon takes the reader out at once (TestDisableReaderLive).
			if rd := r.current().Readers[0]; rd.Enable || r.savedConfig().Readers[0].Enable {
				return "slot0 still enabled"
			}
			return ""
		}},
		{"slot1", "enable", false, "Reader slot1 enabled", func(r *rig, _ *fakeReaders) string {
			if !r.savedConfig().Readers[2].Enable {
				return "slot1 not enabled"
			}
			return ""
		}},
		{"slot0", "restart", true, "Reader slot0 restarted.", func(_ *rig, fr *fakeReaders) string {
			if fr.restarts["slot0"] != 1 {
				return "slot0 not restarted"
			}
			return ""
		}},
		{"slot0", "reset", true, "Reader slot0 statistics reset.", func(r *rig, _ *fakeReaders) string {
			for _, row := range r.balancer.Stats() {
				if row.Reader == "slot0" {
					return "balancer statistics of slot0 kept"
				}
			}
			if st := r.status.Status().Readers[0]; st.ECMOK+st.ECMNotFound != 0 {
				return "ECM counts not zero"
			}
			return ""
		}},
		{"conax-sim", "delete", true, "Reader conax-sim deleted", func(r *rig, _ *fakeReaders) string {
			if readerIndex(r.savedConfig(), "conax-sim") >= 0 {
				return "conax-sim still configured"
			}
			return ""
		}},
	} {
		t.Run(tc.act, func(t *testing.T) {
			r, fr, c := readersRig(t)
			path := r.url("/config/readers/" + tc.reader + "/" + tc.act)
			if tc.confirm {
				resp, err := c.PostForm(path, nil)
				b := body(t, resp, err)
				if !strings.Contains(b, `id="confirm-question"`) || r.applies != 0 || tc.check(r, fr) == "" {
					t.Fatalf("unconfirmed %s was not asked first, or took effect", tc.act)
				}
			}
			resp, err := c.PostForm(path, url.Values{"confirmed": {"1"}})
			b := body(t, resp, err)
			if resp.Request.Method != http.MethodGet || resp.Request.URL.Path != "/config/readers" {
				t.Errorf("%s ended on %s %s, want a redirect to the list", tc.act, resp.Request.Method, resp.Request.URL)
			}
			if !strings.Contains(b, tc.flash) {
				t.Errorf("%s: page lacks %q", tc.act, tc.flash)
			}
			if why := tc.check(r, fr); why != "" {
				t.Error(why)
			}
			if (tc.act == "disable" || tc.act == "delete") && !strings.Contains(b, `id="apply-result"`) {
				t.Errorf("%s: no outcome per component", tc.act)
			}
		})
	}
}

// TestReaderActionRefusals: an unknown reader or action is a 404; every
// reader route refuses a POST without a session (401) or from another
// origin (403), and an action is POST only.
func TestReaderActionRefusals(t *testing.T) {
	r, fr, c := readersRig(t)
	for _, p := range []string{"/config/readers/nobody/disable", "/config/readers/slot0/explode", "/config/readers/nobody"} {
		resp, err := c.PostForm(r.url(p), url.Values{"confirmed": {"1"}})
		body(t, resp, err)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusConflict {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	routes := []string{"/config/readers/slot0", "/config/newreader"}
	for act := range readerActions {
		routes = append(routes, "/config/readers/slot0/"+act)
	}
	for _, p := range routes {
		resp, err := http.PostForm(r.url(p), url.Values{"confirmed": {"1"}, "index": {"0"}, "reader[0].label": {"x"}})
		body(t, resp, err)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d, want 401", p, resp.StatusCode)
		}
		req, _ := http.NewRequest("POST", r.url(p), strings.NewReader("confirmed=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://evil.example")
		resp, err = c.Do(req)
		body(t, resp, err)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	resp, err := c.Get(r.url("/config/readers/slot0/disable"))
	body(t, resp, err)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of an action: %d, want 405", resp.StatusCode)
	}
	if fr.restarts["slot0"] != 0 || r.applies != 0 || !r.current().Readers[0].Enable {
		t.Errorf("a refused request acted")
	}
}

// readerKeys are, per protocol, keys its page must show and keys it must
// not: the fields of one protocol and none of another's.
var readerKeys = []struct {
	protocol  string
	want, not []string
}{
	{"internal", []string{"device", "board", "chip", "mhz", "voltage", "pins.cmdvcc", "t1_crc", "pin"}, []string{"detect", "reset", "system", "local"}},
	{"mouse", []string{"device", "detect", "reset", "mhz", "t1_crc", "t0_repeat"}, []string{"chip", "voltage", "pins.cmdvcc", "system", "clkdiv"}},
	{"pcsc", []string{"device", "dropbadcws", "init_delay", "pin"}, []string{"t1_crc", "mhz", "detect", "chip", "pins.cmdvcc", "system", "ifsd"}},
	{"constcw", []string{"device", "dropbadcws", "local"}, []string{"t1_crc", "mhz", "pin", "detect", "pins.cmdvcc", "system"}},
	{"sim", []string{"system", "t1_crc", "local", "pin"}, []string{"device", "mhz", "detect", "chip", "pins.cmdvcc"}},
}

// TestReaderPageFieldsOfProtocol: a reader's page, its protocol switched
// without JavaScript (?protocol=), has that protocol's keys and the
// balancer's, and none of another protocol's.
func TestReaderPageFieldsOfProtocol(t *testing.T) {
	r, _, c := readersRig(t)
	for _, tc := range readerKeys {
		if tc.protocol == "sim" && !config.SimInBuild {
			continue
		}
		b := get(t, c, r.url("/config/readers/slot0?protocol="+tc.protocol))
		if !strings.Contains(b, `<option value="`+tc.protocol+`" selected>`) {
			t.Errorf("%s: not the selected protocol", tc.protocol)
		}
		for _, k := range append(tc.want, "label", "enable", "lb_weight", "caid", "group") {
			if !strings.Contains(b, `name="reader[0].`+k+`"`) {
				t.Errorf("%s page lacks %s", tc.protocol, k)
			}
		}
		for _, k := range tc.not {
			if strings.Contains(b, `name="reader[0].`+k+`"`) {
				t.Errorf("%s page shows %s", tc.protocol, k)
			}
		}
	}
	if b := get(t, c, r.url("/config/readers/slot0?protocol=constcw")); !strings.Contains(b, "path of the constant.cw file") {
		t.Errorf("constcw's device is not described as its file")
	}
}

// TestReaderPageSave: a valid save applies and comes back to the reader's
// page (POST-redirect-GET); a 0/1 switch left unchecked saves 0; an invalid
// one shows the summary linking to each bad field, marks it and keeps what
// was typed; a page of a list changed meanwhile is refused.
func TestReaderPageSave(t *testing.T) {
	r, _, c := readersRig(t)
	r.current().Readers[0].Fallback = 1
	form := url.Values{"index": {"0"}, "reader[0].label": {"slot0"}, "reader[0].protocol": {"constcw"},
		"reader[0].lb_weight": {"250"}, "reader[0].fallback.present": {"1"}}
	resp, err := c.PostForm(r.url("/config/readers/slot0"), form)
	b := body(t, resp, err)
	if resp.Request.URL.RequestURI() != "/config/readers/slot0?saved=1" || !strings.Contains(b, `id="apply-result"`) {
		t.Errorf("save ended on %s", resp.Request.URL)
	}
	if got := r.savedConfig().Readers[0]; got.LBWeight != 250 || got.Fallback != 0 {
		t.Errorf("saved lb_weight %d fallback %d, want 250 and 0", got.LBWeight, got.Fallback)
	}

	form.Set("reader[0].label", "bad label!")
	form.Set("reader[0].lb_weight", "heavy")
	resp, err = c.PostForm(r.url("/config/readers/slot0"), form)
	b = body(t, resp, err)
	if resp.StatusCode != http.StatusUnprocessableEntity || resp.Request.URL.Path != "/config/readers/slot0" {
		t.Fatalf("invalid save: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	summary, _, _ := strings.Cut(b[strings.Index(b, `id="error-summary"`):], "</div>")
	for _, id := range []string{"f-reader-0-label", "f-reader-0-lb_weight"} {
		if !strings.Contains(summary, `<a href="#`+id+`">`) {
			t.Errorf("summary lacks a link to %s", id)
		}
		if !strings.Contains(b, `id="`+id+`" name=`) || !strings.Contains(b, `aria-describedby="`+id+`-error"`) {
			t.Errorf("the link to %s leads nowhere, or the field is not marked", id)
		}
	}
	for _, typed := range []string{`value="bad label!"`, `value="heavy"`} {
		if !strings.Contains(b, typed) {
			t.Errorf("typed %s lost", typed)
		}
	}

	// A new reader from its own page.
	b = get(t, c, r.url("/config/newreader?protocol=constcw"))
	if !strings.Contains(b, `name="index" value="3"`) {
		t.Fatalf("new reader page has no index 3")
	}
	resp, err = c.PostForm(r.url("/config/newreader"), url.Values{"index": {"3"}, "reader[3].label": {"cw2"}, "reader[3].protocol": {"constcw"},
		"reader[3].enable.present": {"1"}, "reader[3].enable": {"on"}})
	b = body(t, resp, err)
	if got := r.savedConfig().Readers; len(got) != 4 || got[3].Label != "cw2" || resp.Request.URL.Path != "/config/readers/cw2" || !strings.Contains(b, "restart needed") {
		t.Errorf("new reader: at %s, readers %d", resp.Request.URL, len(got))
	}
	// The list changed since this page was loaded: index 3 is cw2 now.
	resp, err = c.PostForm(r.url("/config/newreader"), url.Values{"index": {"3"}, "reader[3].label": {"cw3"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusConflict || slices.ContainsFunc(r.savedConfig().Readers, func(rd config.Reader) bool { return rd.Label == "cw3" }) {
		t.Errorf("stale page saved: %d", resp.StatusCode)
	}
}

// TestCancelGoesBack checks that a confirmation's Cancel returns to the page
// the action came from, not to Status.
func TestCancelGoesBack(t *testing.T) {
	tests := []struct {
		action string
		form   map[string][]string
		want   string
	}{
		{"/config/readers/card1/disable", nil, "/config/readers"},
		{"/config", map[string][]string{"section": {"board"}}, "/config?section=board"},
		{"/config", nil, "/config"},
		{"/balancer/reset", nil, "/balancer"},
		{"/system/restart", nil, "/system"},
		{"/mounts/delete", nil, "/mounts"},
		{"/x", nil, "/"},
	}
	for _, tc := range tests {
		if got := cancelTarget(tc.action, tc.form); got != tc.want {
			t.Errorf("cancelTarget(%q, %v) = %q, want %q", tc.action, tc.form, got, tc.want)
		}
	}
}

// TestProtocolSwitchKeepsEdits: changing a reader's protocol (the Change
// button, or Save pressed right after choosing another protocol, without
// JavaScript) posts the form as a preview: the new protocol's fields come
// back holding what was typed in the keys both protocols share, the
// other protocol's keys are gone, and nothing is saved until Save. Enter in
// a field still saves: the form's first submit button is a Save.
func TestProtocolSwitchKeepsEdits(t *testing.T) {
	r, _, c := readersRig(t)
	b := get(t, c, r.url(readerPath("slot1")))
	form, _, _ := strings.Cut(b[strings.Index(b, `id="reader-form"`):], "</form>")
	if first, _, _ := strings.Cut(form[strings.Index(form, "<button"):], ">"); strings.Contains(first, "name=") {
		t.Errorf("the form's default button is %s, not a plain Save", first)
	}
	edits := url.Values{"section": {"reader"}, "index": {"2"}, "shown-protocol": {"pcsc"}, "reader[2].protocol": {"constcw"},
		"reader[2].label": {"slot1"}, "reader[2].device": {"/tmp/slot1.cw"}, "reader[2].lb_weight": {"333"},
		"reader[2].init_delay": {"9s"}, "reader[2].enable.present": {"1"}, "reader[2].pin": {"4711"}}
	for name, extra := range map[string]url.Values{"Change button": {"switch": {"1"}}, "Save after a new protocol": {}} {
		form := url.Values{}
		for k, v := range edits {
			form[k] = v
		}
		for k, v := range extra {
			form[k] = v
		}
		resp, err := c.PostForm(r.url(readerPath("slot1")), form)
		b := body(t, resp, err)
		if resp.StatusCode != http.StatusOK || !strings.Contains(b, "Not saved yet") {
			t.Errorf("%s: %d, not a preview", name, resp.StatusCode)
		}
		for _, want := range []string{`<option value="constcw" selected>`, `name="shown-protocol" value="constcw"`,
			`id="f-reader-2-device" name="reader[2].device" value="/tmp/slot1.cw"`, `id="f-reader-2-lb_weight" name="reader[2].lb_weight" min="1" max="1000" value="333"`,
			`id="f-reader-2-local"`} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: the preview lacks %s", name, want)
			}
		}
		if strings.Contains(b, "4711") {
			t.Errorf("%s: the preview echoes the typed PIN", name)
		}
		if strings.Contains(b, `id="f-reader-2-init_delay"`) || strings.Contains(b, `class="field invalid"`) {
			t.Errorf("%s: the preview shows a pcsc key or marks a field", name)
		}
		if got := r.savedConfig().Readers[2]; r.applies != 0 || got.Protocol != "pcsc" || got.Device != "0" || got.LBWeight == 333 {
			t.Fatalf("%s: the preview saved: %+v (applies %d)", name, got, r.applies)
		}
	}
	// A protocol with a PIN: the typed one is never sent back, nor shown
	// as set (the save would keep the one in force).
	edits.Set("reader[2].protocol", "mouse")
	edits.Set("switch", "1")
	resp, err := c.PostForm(r.url(readerPath("slot1")), edits)
	if b := body(t, resp, err); strings.Contains(b, "4711") || !strings.Contains(b, "Type the PIN again") ||
		!strings.Contains(b, `id="f-reader-2-pin" name="reader[2].pin" placeholder="not set"`) {
		t.Errorf("the preview echoes the typed PIN or shows it as set")
	}
	save := url.Values{"section": {"reader"}, "index": {"2"}, "shown-protocol": {"constcw"}, "reader[2].protocol": {"constcw"},
		"reader[2].label": {"slot1"}, "reader[2].device": {"/tmp/slot1.cw"}, "reader[2].lb_weight": {"333"},
		"reader[2].enable.present": {"1"}, "current": {"correct horse"}}
	resp, err = c.PostForm(r.url(readerPath("slot1")), save)
	body(t, resp, err)
	if got := r.savedConfig().Readers[2]; resp.Request.URL.RequestURI() != readerPath("slot1")+"?saved=1" || got.Protocol != "constcw" || got.Device != "/tmp/slot1.cw" || got.LBWeight != 333 {
		t.Errorf("save after the preview ended on %s: %+v", resp.Request.URL, got)
	}
}
