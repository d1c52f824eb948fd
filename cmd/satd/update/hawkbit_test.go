package update

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// stateRAUC is a RAUC that holds its slot state in memory: the bundle
// written to the other slot and the marks given to the booted one.
type stateRAUC struct {
	mu        sync.Mutex
	installed []byte
	marks     []string
}

var _ RAUC = (*stateRAUC)(nil)

func (r *stateRAUC) Install(ctx context.Context, path string, progress func(int, string)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.installed = b
	progress(100, "Installing done.")
	return nil
}

func (r *stateRAUC) mark(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, s)
	return nil
}

func (r *stateRAUC) MarkGood(context.Context) error { return r.mark("good") }
func (r *stateRAUC) MarkBad(context.Context) error  { return r.mark("bad") }
func (r *stateRAUC) Status(context.Context) (RAUCStatus, error) {
	return RAUCStatus{Booted: "A"}, nil
}

// hawkBitFixture is one box (its update directory and RAUC slots) talking
// to a DDI server; every client it makes is a new satd process on that box.
type hawkBitFixture struct {
	t        *testing.T
	key      testKey
	srv      *ddiServer
	dir      string
	rauc     *stateRAUC
	restarts []bool
	bundle   []byte
}

func newHawkBitFixture(t *testing.T) *hawkBitFixture {
	return &hawkBitFixture{t: t, key: newTestKey(t), srv: newDDIServer(t).start(), dir: t.TempDir(),
		rauc: &stateRAUC{}, bundle: bytes.Repeat([]byte("RAUC bundle for satrx-armv7 "), 8192)}
}

// action returns deployment id carrying a signed manifest for the bundle;
// edit may change the manifest before signing, and the files after.
func (f *hawkBitFixture) action(id string, editManifest func(*Manifest), editFiles func([]ddiTestFile)) *ddiTestAction {
	doc := manifestFor(f.t, f.bundle, func(m *Manifest) {
		m.Kind, m.URL = KindRAUC, "satd-1.1.0.raucb"
		if editManifest != nil {
			editManifest(m)
		}
	})
	files := []ddiTestFile{
		{name: ManifestArtifact, data: doc},
		{name: SignatureArtifact, data: f.key.sign(doc)},
		{name: "satd-1.1.0.raucb", data: f.bundle},
	}
	for i := range files {
		files[i].sha256, files[i].size = sha256Hex(files[i].data), int64(len(files[i].data))
	}
	if editFiles != nil {
		editFiles(files)
	}
	return &ddiTestAction{id: id, download: "forced", update: "forced", files: files}
}

// client starts "satd" version running on the box: a Manager and its DDI client.
func (f *hawkBitFixture) client(running string, health HealthSource) (*Manager, *HawkBit) {
	f.t.Helper()
	p := testPolicy(f.key.pubText(f.t))
	p.Running = running
	m, err := New(Options{Policy: p, Dir: f.dir, Kind: KindRAUC, RAUC: f.rauc, Health: health,
		HealthTimeout: 300 * time.Millisecond, Restart: func(rb bool) { f.restarts = append(f.restarts, rb) }})
	if err != nil {
		f.t.Fatal(err)
	}
	h, err := NewHawkBit(m, HawkBitOptions{Server: f.srv.url, Tenant: "DEFAULT", ControllerID: f.srv.ctrl, TargetToken: "tok-123",
		Attributes: map[string]string{"board": "satrx-armv7", "version": running, "install": "rauc"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return m, h
}

// executions lists the feedback as "kind execution/finished".
func executions(rs []ddiRecord) []string {
	var out []string
	for _, r := range rs {
		if r.Progress != nil {
			continue // progress steps vary with read sizes
		}
		out = append(out, r.Kind+" "+r.Execution+"/"+r.Finished)
	}
	return out
}

func (f *hawkBitFixture) poll(h *HawkBit) {
	f.t.Helper()
	if err := h.Poll(context.Background()); err != nil {
		f.t.Fatalf("Poll: %v", err)
	}
}

// TestHawkBitHappyPath: poll → configData → deployment → download →
// downloaded → install → restart; the new version passes its health checks
// and only then, from the new process, reports closed/success.
func TestHawkBitHappyPath(t *testing.T) {
	f := newHawkBitFixture(t)
	cdn := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("the artifact CDN received the token %q", a)
		}
		http.ServeContent(w, r, "bundle", time.Time{}, bytes.NewReader(f.bundle))
	}))
	f.srv.payloadURL = cdn.URL
	f.srv.sleep = "00:00:42"
	f.srv.offer(f.action("17", nil, nil))
	health := &fakeHealth{readers: []string{"slot0"}}
	_, old := f.client("1.0.0", health)
	f.poll(old)
	want := map[string]string{"board": "satrx-armv7", "version": "1.0.0", "install": "rauc"}
	if !reflect.DeepEqual(f.srv.config, want) {
		t.Errorf("configData %v, want %v", f.srv.config, want)
	}
	if old.interval() != 42*time.Second {
		t.Errorf("polling interval %s, want the server's 42s", old.interval())
	}
	if !bytes.Equal(f.rauc.installed, f.bundle) || !reflect.DeepEqual(f.restarts, []bool{false}) {
		t.Fatalf("installed %d bytes, restarts %v", len(f.rauc.installed), f.restarts)
	}
	before := []string{"deployment downloaded/none", "deployment proceeding/none"}
	if got := executions(f.srv.records()); !reflect.DeepEqual(got, before) {
		t.Fatalf("feedback before the restart %v, want %v", got, before)
	}
	if rs := f.srv.records(); rs[0].Progress == nil || rs[len(rs)-3].Progress.Cnt != 10 {
		t.Errorf("download progress not reported up to 10 of 10: %v", rs)
	}
	f.poll(old) // the action is still open: nothing happens before the restart
	if got := executions(f.srv.records()); !reflect.DeepEqual(got, before) {
		t.Fatalf("a poll before the restart sent %v", got)
	}

	booted, h := f.client("1.1.0", health)
	if err := booted.ConfirmBoot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.rauc.marks, []string{"good"}) {
		t.Errorf("rauc marks %v", f.rauc.marks)
	}
	f.srv.mu.Lock()
	f.srv.failPost = 1
	f.srv.mu.Unlock()
	if err := h.Poll(context.Background()); !transient(err) {
		t.Fatalf("poll with the server failing: %v, want a transient error", err)
	}
	_, h = f.client("1.1.0", health) // restarted before the feedback got through
	f.poll(h)
	rs := f.srv.records()
	last := rs[len(rs)-1]
	if got := executions(rs); len(got) != 3 || got[2] != "deployment closed/success" || !strings.Contains(strings.Join(last.Details, " "), "health checks passed") {
		t.Fatalf("feedback after the restart %v (%v)", got, last)
	}
	if !f.srv.action.closed {
		t.Error("the action is not closed on the server")
	}
	f.poll(h)
	if n := len(f.srv.records()); n != len(rs) {
		t.Errorf("feedback sent again: %v", f.srv.records()[len(rs):])
	}
}

// TestHawkBitRollbackReportsFailure: the new version fails its health
// checks, marks its slot bad and reboots; the old slot reports closed/failure.
func TestHawkBitRollbackReportsFailure(t *testing.T) {
	f := newHawkBitFixture(t)
	f.srv.offer(f.action("18", nil, nil))
	_, old := f.client("1.0.0", &fakeHealth{readers: []string{"slot0"}})
	f.poll(old)
	booted, h := f.client("1.1.0", &fakeHealth{}) // the reader never comes back
	if err := booted.ConfirmBoot(context.Background()); !errors.Is(err, ErrHealth) {
		t.Fatalf("ConfirmBoot = %v, want ErrHealth", err)
	}
	f.poll(h)
	if got := executions(f.srv.records()); len(got) != 2 {
		t.Fatalf("the failing version reported %v itself", got)
	}
	fallback, h := f.client("1.0.0", &fakeHealth{readers: []string{"slot0"}})
	fallback.ConfirmBoot(context.Background())
	f.poll(h)
	rs := f.srv.records()
	last := rs[len(rs)-1]
	if last.Execution != execClosed || last.Finished != finishedFailure || !strings.Contains(last.Details[0], "rolled back to 1.0.0") {
		t.Fatalf("after the rollback: %v", last)
	}
	if !reflect.DeepEqual(f.rauc.marks, []string{"bad"}) || !reflect.DeepEqual(f.restarts, []bool{false, true}) {
		t.Errorf("marks %v, restarts %v", f.rauc.marks, f.restarts)
	}
}

// TestHawkBitRefusals: every refusal is reported closed/failure with its
// own error text, and nothing is installed.
func TestHawkBitRefusals(t *testing.T) {
	other := newTestKey(t)
	tests := []struct {
		name     string
		manifest func(*Manifest)
		files    func(f *hawkBitFixture, fs []ddiTestFile)
		want     error
	}{
		{name: "tampered payload", want: ErrPayloadDigest, files: func(_ *hawkBitFixture, fs []ddiTestFile) {
			fs[2].data = bytes.Clone(fs[2].data)
			fs[2].data[1000] ^= 1
		}},
		{name: "hawkBit hash differs from the manifest", want: ErrArtifactMismatch, files: func(_ *hawkBitFixture, fs []ddiTestFile) {
			fs[2].sha256 = strings.Repeat("ab", 32)
		}},
		{name: "tampered manifest", want: ErrBadSignature, files: func(_ *hawkBitFixture, fs []ddiTestFile) {
			fs[0].data = bytes.Replace(fs[0].data, []byte("1.1.0"), []byte("1.9.0"), 1)
			fs[0].sha256, fs[0].size = sha256Hex(fs[0].data), int64(len(fs[0].data))
		}},
		{name: "unknown key", want: ErrUnknownKey, files: func(_ *hawkBitFixture, fs []ddiTestFile) {
			fs[1].data = other.sign(fs[0].data)
			fs[1].sha256, fs[1].size = sha256Hex(fs[1].data), int64(len(fs[1].data))
		}},
		{name: "unsigned", want: ErrArtifactMismatch, files: func(_ *hawkBitFixture, fs []ddiTestFile) {
			fs[1].name = "README"
		}},
		{name: "another board", want: ErrWrongBoard, manifest: func(m *Manifest) { m.Board = "satrx-mips" }},
		{name: "downgrade", want: ErrDowngrade, manifest: func(m *Manifest) { m.Version = "0.9.0" }},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHawkBitFixture(t)
			f.srv.offer(f.action("21", tc.manifest, func(fs []ddiTestFile) {
				if tc.files != nil {
					tc.files(f, fs)
				}
			}))
			m, h := f.client("1.0.0", &fakeHealth{})
			f.poll(h)
			rs := f.srv.records()
			last := rs[len(rs)-1]
			if last.Execution != execClosed || last.Finished != finishedFailure || len(last.Details) != 1 || !strings.Contains(last.Details[0], tc.want.Error()) {
				t.Fatalf("last feedback %v, want closed/failure naming %q", last, tc.want)
			}
			if prev, dup := seen[last.Details[0]]; dup {
				t.Errorf("same details as %s: %q", prev, last.Details[0])
			}
			seen[last.Details[0]] = tc.name
			if f.rauc.installed != nil || len(f.restarts) != 0 || m.Status().Phase != PhaseFailed {
				t.Errorf("installed %d bytes, restarts %v, status %+v", len(f.rauc.installed), f.restarts, m.Status())
			}
			if entries, _ := filepath.Glob(filepath.Join(f.dir, "payload-*")); len(entries) != 0 {
				t.Errorf("refused payload kept: %v", entries)
			}
		})
	}
}

// TestHawkBitDownloadOnly: update "skip" or an unavailable maintenance
// window download and report downloaded once, and install once allowed.
func TestHawkBitDownloadOnly(t *testing.T) {
	for _, tc := range []struct {
		name         string
		hold, permit func(*ddiTestAction)
	}{
		{"update skip", func(a *ddiTestAction) { a.update = "skip" }, func(a *ddiTestAction) { a.update = "attempt" }},
		{"maintenance window unavailable", func(a *ddiTestAction) { a.window = "unavailable" }, func(a *ddiTestAction) { a.window = "available" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHawkBitFixture(t)
			a := f.action("30", nil, nil)
			tc.hold(a)
			f.srv.offer(a)
			m, h := f.client("1.0.0", &fakeHealth{})
			f.poll(h)
			f.poll(h)
			if got := executions(f.srv.records()); !reflect.DeepEqual(got, []string{"deployment downloaded/none"}) || f.rauc.installed != nil {
				t.Fatalf("held: feedback %v, installed %d bytes", got, len(f.rauc.installed))
			}
			if st := m.Status(); st.Phase != PhaseIdle || !strings.Contains(st.Outcome, "downloaded 1.1.0") {
				t.Errorf("status while held: %+v", st)
			}
			f.srv.mu.Lock()
			tc.permit(a)
			f.srv.mu.Unlock()
			f.poll(h)
			if !bytes.Equal(f.rauc.installed, f.bundle) {
				t.Fatal("not installed once permitted")
			}
			if n := len(f.srv.ranges); n != 1 {
				t.Errorf("payload downloaded %d times, want once", n)
			}
		})
	}
}

// TestHawkBitCancel: a cancel before the install is accepted (closed/success)
// and drops the held download; after the install it is rejected.
func TestHawkBitCancel(t *testing.T) {
	t.Run("before install", func(t *testing.T) {
		f := newHawkBitFixture(t)
		a := f.action("40", nil, nil)
		a.window = "unavailable"
		f.srv.offer(a)
		_, h := f.client("1.0.0", &fakeHealth{})
		f.poll(h)
		if held, _ := filepath.Glob(filepath.Join(f.dir, "payload-*")); len(held) != 1 {
			t.Fatalf("held payload: %v", held)
		}
		f.srv.mu.Lock()
		f.srv.cancel = true
		f.srv.mu.Unlock()
		f.poll(h)
		rs := f.srv.records()
		if last := rs[len(rs)-1]; last.Kind != "cancel" || last.Execution != execClosed || last.Finished != finishedSuccess || !a.cancelled {
			t.Fatalf("cancel answered %v", last)
		}
		if held, _ := filepath.Glob(filepath.Join(f.dir, "payload-*")); len(held) != 0 || f.rauc.installed != nil {
			t.Errorf("after cancel: held %v, installed %d bytes", held, len(f.rauc.installed))
		}
	})
	t.Run("too late", func(t *testing.T) {
		f := newHawkBitFixture(t)
		a := f.action("41", nil, nil)
		f.srv.offer(a)
		_, h := f.client("1.0.0", &fakeHealth{})
		f.poll(h)
		f.srv.mu.Lock()
		f.srv.cancel = true
		f.srv.mu.Unlock()
		f.poll(h)
		rs := f.srv.records()
		if last := rs[len(rs)-1]; last.Kind != "cancel" || last.Execution != execRejected || a.cancelled || !strings.Contains(last.Details[0], "too late") {
			t.Fatalf("cancel answered %v", last)
		}
	})
}

// TestHawkBitTruncatedDownloadResumes: the first payload download breaks
// off; the poll fails (to be retried) without closing the action, and the
// next one resumes with a Range request and installs.
func TestHawkBitTruncatedDownloadResumes(t *testing.T) {
	f := newHawkBitFixture(t)
	f.srv.offer(f.action("50", nil, nil))
	f.srv.truncate = true
	_, h := f.client("1.0.0", &fakeHealth{})
	err := h.Poll(context.Background())
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("first poll: %v, want ErrTruncated", err)
	}
	rs := f.srv.records()
	if last := rs[len(rs)-1]; last.Execution != execProceeding || !strings.Contains(last.Details[0], "resuming") {
		t.Errorf("after the break: %v", last)
	}
	f.poll(h)
	if !bytes.Equal(f.rauc.installed, f.bundle) {
		t.Fatal("not installed after the resumed download")
	}
	if len(f.srv.ranges) != 2 || f.srv.ranges[0] != "" || !strings.HasPrefix(f.srv.ranges[1], "bytes=") || f.srv.ranges[1] == "bytes=0-" {
		t.Errorf("payload requests' Range headers: %q", f.srv.ranges)
	}
}

// TestHawkBitAuthRequired: a wrong token is a poll error, not a crash.
func TestHawkBitAuthRequired(t *testing.T) {
	f := newHawkBitFixture(t)
	f.srv.auth = "TargetToken other"
	_, h := f.client("1.0.0", &fakeHealth{})
	if err := h.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "401") || transient(err) {
		t.Errorf("Poll with a wrong token: %v", err)
	}
}

func TestNewHawkBitRejectsBadOptions(t *testing.T) {
	k := newTestKey(t)
	m, err := New(Options{Policy: testPolicy(k.pubText(t)), Dir: t.TempDir(), Kind: KindRAUC, RAUC: &stateRAUC{}})
	if err != nil {
		t.Fatal(err)
	}
	good := HawkBitOptions{Server: "https://hb.example", Tenant: "DEFAULT", ControllerID: "box", TargetToken: "t"}
	for name, edit := range map[string]func(*HawkBitOptions){
		"no server":  func(o *HawkBitOptions) { o.Server = "" },
		"ftp server": func(o *HawkBitOptions) { o.Server = "ftp://hb.example" },
		"two tokens": func(o *HawkBitOptions) { o.GatewayToken = "g" },
		"no token":   func(o *HawkBitOptions) { o.TargetToken = "" },
	} {
		o := good
		edit(&o)
		if _, err := NewHawkBit(m, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h, err := NewHawkBit(m, good)
	if err != nil || h.Base() != "https://hb.example/DEFAULT/controller/v1/box" {
		t.Errorf("base %q, %v", h.Base(), err)
	}
}

// synctestHawkBit runs a DDI client against srv in memory (fake time).
func synctestHawkBit(t *testing.T, srv *ddiServer, timeout time.Duration) *HawkBit {
	t.Helper()
	srv.url = "http://hawkbit.test"
	k := newTestKey(t)
	m, err := New(Options{Policy: testPolicy(k.pubText(t)), Dir: t.TempDir(), Kind: KindRAUC, RAUC: &stateRAUC{}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHawkBit(m, HawkBitOptions{Server: srv.url, Tenant: srv.tenant, ControllerID: srv.ctrl, TargetToken: "tok-123",
		Attributes: map[string]string{"version": "1.0.0"}, Transport: handlerTransport{srv}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// runFor runs h.Run for d of fake time and returns the server's poll times.
func runFor(h *HawkBit, srv *ddiServer, d time.Duration, midway func()) []time.Time {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	time.Sleep(d / 2)
	if midway != nil {
		midway()
	}
	time.Sleep(d / 2)
	cancel()
	<-done
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return slices.Clone(srv.polls)
}

// TestHawkBitHonoursPollingSleep: the client polls every config.polling.sleep
// plus up to a quarter of it, and follows a change of the server's interval.
func TestHawkBitHonoursPollingSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newDDIServer(t)
		srv.sleep = "00:10:00"
		h := synctestHawkBit(t, srv, 0)
		start := time.Now()
		polls := runFor(h, srv, 4*time.Hour, func() {
			srv.mu.Lock()
			srv.sleep = "00:01:00"
			srv.mu.Unlock()
		})
		if first := polls[0].Sub(start); first > 5*time.Minute/4 {
			t.Errorf("first poll after %s, want the jitter of the default 5m alone", first)
		}
		var long, short int
		for i := 1; i < len(polls); i++ {
			switch gap := polls[i].Sub(polls[i-1]); {
			case gap >= 10*time.Minute && gap <= 12*time.Minute+30*time.Second:
				long++
			case gap >= time.Minute && gap <= 75*time.Second:
				short++
			default:
				t.Errorf("poll %d came %s after the previous one", i, gap)
			}
		}
		// Bounds from the jitter alone: the first 2 h hold 9 to 13 gaps of
		// 10-12.5 min (the first poll within 6.25 min, the last long sleep
		// running on past the switch); the rest, at least 2 h - 12.5 min -
		// 75 s, holds 85 to 120 gaps of 60-75 s. 96 was the mean-free
		// bound of a full 2 h and failed once in a 5-run.
		if long < 9 || long > 13 || short < 85 || short > 120 {
			t.Errorf("%d gaps of 10m and %d of 1m in 2h each", long, short)
		}
	})
}

// TestHawkBitRetriesWithBackoff: 503 answers and a server that does not
// answer (timeout) are retried after 15s, 30s, 60s, 120s (plus jitter),
// then the polling interval applies again.
func TestHawkBitRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newDDIServer(t)
		srv.sleep, srv.fail, srv.hang = "00:10:00", 3, 1
		h := synctestHawkBit(t, srv, 5*time.Second)
		polls := runFor(h, srv, 40*time.Minute, nil)
		want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 5*time.Second + 2*time.Minute, 10 * time.Minute, 10 * time.Minute}
		if len(polls) < len(want)+1 {
			t.Fatalf("%d polls: %v", len(polls), polls)
		}
		for i, w := range want {
			base := w
			if i == 3 {
				base = 2 * time.Minute // the timeout is not jittered
			}
			if gap := polls[i+1].Sub(polls[i]); gap < w || gap > w+base/4 {
				t.Errorf("retry %d after %s, want %s plus up to a quarter", i+1, gap, w)
			}
		}
	})
}

// TestDDIParseErrorsNameURLAndField: malformed answers are refused with an
// error naming the URL and the field.
func TestDDIParseErrorsNameURLAndField(t *testing.T) {
	const url = "https://hb.example/DEFAULT/controller/v1/box"
	dep := func(s string) string {
		return `{"id":"3","deployment":{"download":"forced","update":"forced","chunks":[{"part":"os","artifacts":[` + s + `]}]}}`
	}
	art := `{"filename":"satd-update.json","size":10,"hashes":{"sha256":"%s"},"_links":{"download":{"href":"https://x/a"}}}`
	tests := []struct {
		name, doc, field string
		parse            func(string, []byte) error
	}{
		{"sleep", `{"config":{"polling":{"sleep":"5 minutes"}}}`, "config.polling.sleep", parseBase},
		{"sleep minutes", `{"config":{"polling":{"sleep":"00:61:00"}}}`, "config.polling.sleep", parseBase},
		{"not JSON", `{"config":`, "unexpected end", parseBase},
		{"link type", `{"config":{"polling":{"sleep":"00:01:00"}},"_links":{"deploymentBase":"x"}}`, "_links.deploymentBase", parseBase},
		{"no id", `{"deployment":{"download":"forced","update":"forced"}}`, "field id", parseDep},
		{"download", `{"id":"3","deployment":{"download":"never","update":"forced"}}`, "deployment.download", parseDep},
		{"window", `{"id":"3","deployment":{"download":"forced","update":"forced","maintenanceWindow":"soon"}}`, "deployment.maintenanceWindow", parseDep},
		{"size type", dep(`{"filename":"a","size":"big"}`), "deployment.chunks.artifacts.size", parseDep},
		{"sha256", dep(strings.Replace(art, "%s", "xyz", 1)), "deployment.chunks[0].artifacts[0].hashes.sha256", parseDep},
		{"filename", dep(`{"filename":"../etc/passwd","_links":{"download":{"href":"h"}}}`), "artifacts[0].filename", parseDep},
		{"no link", dep(`{"filename":"a"}`), "artifacts[0]._links.download", parseDep},
		{"stopId", `{"id":"3","cancelAction":{}}`, "cancelAction.stopId", parseCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(url, []byte(tc.doc))
			if !errors.Is(err, ErrDDI) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v, want ErrDDI naming %s and %s", err, url, tc.field)
			}
		})
	}
}

func parseBase(url string, b []byte) error {
	_, err := parseControllerBase(url, b)
	return err
}

func parseDep(url string, b []byte) error {
	_, err := parseDeploymentBase(url, b)
	return err
}

func parseCancel(url string, b []byte) error {
	_, err := parseCancelAction(url, b)
	return err
}

// TestDDIBodyBounded: an answer above 1 MiB is refused, not read whole.
func TestDDIBodyBounded(t *testing.T) {
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"config":{"polling":{"sleep":"00:01:00"}},"pad":"`))
		w.Write(bytes.Repeat([]byte("x"), maxDDIBody))
		w.Write([]byte(`"}`))
	})
	c := newAuthClient(handlerTransport{big}, "hb.test", "t", "")
	_, err := c.get(context.Background(), "http://hb.test/x", time.Minute) // a bound, not a measurement: a loaded CI needs room
	if !errors.Is(err, ErrDDI) || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("oversized answer: %v", err)
	}
}

// FuzzDDIResponses feeds the DDI parsers arbitrary server answers: they
// must not panic, and what they accept must be usable.
func FuzzDDIResponses(f *testing.F) {
	f.Add([]byte(`{"config":{"polling":{"sleep":"00:05:00"}},"_links":{"deploymentBase":{"href":"https://hb/DEFAULT/controller/v1/box/deploymentBase/3?c=-2129030598"},"configData":{"href":"https://hb/DEFAULT/controller/v1/box/configData"}}}`))
	f.Add([]byte(`{"id":"3","deployment":{"download":"forced","update":"attempt","maintenanceWindow":"available","chunks":[{"part":"os","version":"1.1.0","name":"satd","artifacts":[{"filename":"satd-update.json","size":180,"hashes":{"sha1":"a","md5":"b","sha256":"8b1644c3c9e5b0e0d1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6c8cf"},"_links":{"download":{"href":"https://hb/a"},"download-http":{"href":"http://hb/a"}}}]}]},"actionHistory":{"status":"RUNNING","messages":[]}}`))
	f.Add([]byte(`{"id":"11","cancelAction":{"stopId":"11"}}`))
	f.Add([]byte(`{"config":{"polling":{"sleep":"9999:59:59"}}}`))
	f.Add([]byte(`{"id":"3","deployment":{"download":"skip","update":"skip","chunks":[{"artifacts":[{"filename":"a","size":-1}]}]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		const url = "https://hb.example/DEFAULT/controller/v1/box"
		if cb, err := parseControllerBase(url, doc); err == nil && cb.sleep <= 0 {
			t.Errorf("accepted sleep %s", cb.sleep)
		} else if err != nil && !errors.Is(err, ErrDDI) {
			t.Errorf("error without ErrDDI: %v", err)
		}
		if d, err := parseDeploymentBase(url, doc); err == nil {
			if d.ID == "" || !validHandling(d.Deployment.Update) {
				t.Errorf("accepted %+v", d)
			}
			for _, c := range d.Deployment.Chunks {
				for _, a := range c.Artifacts {
					if a.href() == "" || a.Size < 0 || d.artifact(a.Filename) == nil {
						t.Errorf("accepted artifact %+v", a)
					}
				}
			}
		}
		if c, err := parseCancelAction(url, doc); err == nil && (c.ID == "" || c.CancelAction.StopID == "") {
			t.Errorf("accepted %+v", c)
		}
	})
}
