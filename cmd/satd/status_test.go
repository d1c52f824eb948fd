package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/update"
	"satd.dev/satd/cmd/satd/web"
)

// startRig starts the readers and balancer components on a temp config
// with a constant-CW reader and a simulated Conax card, both ready.
func startRig(t *testing.T) *daemon {
	t.Helper()
	return startRigMode(t, 1)
}

// startRigMode is startRig at lb_mode mode.
func startRigMode(t *testing.T, mode int) *daemon {
	t.Helper()
	// The global log ring's change channel may have been made inside an
	// earlier test's synctest bubble; closing it from outside is fatal.
	webLogs = web.NewLogRing(1000)
	dir := t.TempDir()
	cw := "2600:0:0001:0:0::01 02 03 06 05 06 07 12 09 0A 0B 1E 0D 0E 0F 2A\n"
	if err := os.WriteFile(filepath.Join(dir, "fixed.cw"), []byte(cw), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Global.StateDir = dir
	cfg.Balancer.LBMode = mode
	conax := readerCfg("card1", "sim")
	conax.System = "conax"
	cfg.Readers = []config.Reader{readerCfg("fixed", "constcw"), conax}
	ctx, cancel := context.WithCancel(context.Background())
	d := startReadersAndBalancer(t, ctx, cfg)
	t.Cleanup(func() {
		cancel()
		if code := d.stop(d.log.component("main")); code != 0 {
			t.Errorf("stop exit code %d", code)
		}
	})
	waitReady(t, d, "card1")
	waitReady(t, d, "fixed")
	return d
}

// solveOne submits one Conax ECM for service 1 through the dispatcher;
// seed varies its bytes. It wants the answer with result want.
func solveOne(t *testing.T, d *daemon, seed byte, want balancer.Result) {
	t.Helper()
	ecm := []byte{0x80, 0x70, 0x10}
	for i := range 16 {
		ecm = append(ecm, byte(i*13)+seed)
	}
	got := make(answers, 1)
	if err := d.balancer().Submit(&balancer.ECM{CAID: 0x0B00, SrvID: 1, Len: uint16(len(ecm)), Data: ecm, Client: got}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.Result != want {
			t.Fatalf("answer %+v", a)
		}
	case <-time.After(time.Minute): // a hang guard: the answer takes milliseconds
		t.Fatal("hung: no answer")
	}
}

func TestStatusAdapterReaders(t *testing.T) {
	d := startRig(t)
	solveOne(t, d, 0, balancer.Found)
	st := daemonStatus{d}.Status()
	if len(st.Readers) != 2 {
		t.Fatalf("readers %+v", st.Readers)
	}
	fixed, card := st.Readers[0], st.Readers[1]
	if fixed.Label != "fixed" || fixed.State != "ready" || fixed.Protocol != "constcw" || fixed.ATR != "" {
		t.Errorf("constcw reader %+v", fixed)
	}
	raw := d.readers()[1]
	if card.Label != "card1" || card.State != "ready" || card.CAID != 0x0B00 || card.CardSystem != "conax" ||
		card.Serial == "" || card.Serial != raw.Serial || card.ATR == "" || !strings.HasPrefix(card.Protocol, "T=") || card.Baud == 0 {
		t.Errorf("conax reader %+v", card)
	}
	if len(card.Subscriptions) != 1 || card.Subscriptions[0].Name != "DEMO BASIC" || !card.Subscriptions[0].End.After(time.Now()) {
		t.Errorf("subscriptions %+v", card.Subscriptions)
	}
	if card.ECMOK != 1 || card.AvgTime <= 0 {
		t.Errorf("ECM counts: ok %d avg %v", card.ECMOK, card.AvgTime)
	}
	if st.Mounts != nil || st.Services != nil {
		t.Errorf("mounts %v services %v with the relay and dvbapi off", st.Mounts, st.Services)
	}
}

func TestBalancerViewAdapter(t *testing.T) {
	d := startRig(t)
	v := balancerView{d}
	if rows := v.Stats(); len(rows) != 0 {
		t.Fatalf("rows before any ECM: %+v", rows)
	}
	// The balancer stamps in whole milliseconds since its origin, so a stamp
	// made during solveOne is at most 1 ms before this instant: an ordering
	// check, not a bound on how long anything took.
	before := time.Now().Add(-time.Millisecond)
	solveOne(t, d, 0, balancer.Found)
	after := time.Now()
	during := func(at time.Time) bool { return !at.Before(before) && !at.After(after) }
	rows := v.Stats()
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.Reader != "card1" || r.Key != "0B00@000000:0001:0000:19" || r.Result != "found" || r.Count != 1 ||
		r.Avg <= 0 || r.Last <= 0 || !r.BlockedUntil.IsZero() || !during(r.LastSeen) {
		t.Errorf("row %+v", r)
	}
	dec := v.Decisions()
	if len(dec) != 1 || dec[0].Service != "0B00@000000:0001" || !slices.Equal(dec[0].Readers, []string{"card1"}) ||
		!strings.Contains(dec[0].Explanation, "fixed: ") || !during(dec[0].When) {
		t.Errorf("decisions %+v", dec)
	}

	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"bad key", func() error { return v.Clear("card1", "0B00:1") }, nil},
		{"unknown reader", func() error { return v.Reset("nope") }, balancer.ErrUnknownReader},
		{"other ecmlen", func() error { return v.Clear("card1", "0B00@000000:0001:0000:20") }, balancer.ErrNoStat},
		{"clear", func() error { return v.Clear(r.Reader, r.Key) }, nil},
		{"clear again", func() error { return v.Clear(r.Reader, r.Key) }, balancer.ErrNoStat},
	}
	for _, tc := range tests {
		err := tc.do()
		switch {
		case tc.name == "bad key" && err == nil:
			t.Errorf("%s accepted", tc.name)
		case tc.name != "bad key" && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if rows := v.Stats(); len(rows) != 0 {
		t.Errorf("rows after clear %+v", rows)
	}
	solveOne(t, d, 1, balancer.Found)
	if err := v.Reset(""); err != nil || len(v.Stats()) != 0 {
		t.Errorf("reset all: %v, rows %+v", err, v.Stats())
	}
	none := balancerView{&daemon{}}
	if err := none.Reset(""); !errors.Is(err, web.ErrNotAvailable) || none.Stats() != nil {
		t.Errorf("no balancer: %v", err)
	}
}

func TestMetricsCollector(t *testing.T) {
	d := startRig(t)
	m := web.NewMetrics()
	c := newMetricsCollector(d, m)
	solveOne(t, d, 0, balancer.Found)
	c.collect()
	solveOne(t, d, 0, balancer.Cache) // the same ECM again
	c.collect()
	c.collect() // nothing new: nothing added twice
	// The site is served in-process: no listener, so no port to collide
	// with a running satd (make run holds 127.0.0.1:8080).
	cfg := *d.cfg
	cfg.Web.MetricsPublic = true
	srv, err := web.New(web.Options{Config: func() *config.Config { return &cfg }, ConfigPath: filepath.Join(t.TempDir(), "satd.toml"),
		Apply: func(*config.Config) web.ApplyResult { return nil }, Status: daemonStatus{d}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	body := rec.Body.Bytes()
	for _, want := range []string{
		`satd_ecm_total{reader="card1",result="found"} 1` + "\n",
		"satd_ecm_cache_hits_total 1\n",
		`satd_reader_ready{reader="card1"} 1` + "\n",
		`satd_reader_ecm_duration_seconds_bucket{reader="card1"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestHealthReadsReaders(t *testing.T) {
	d := startRig(t)
	h := daemonHealth{d}
	if got := h.ReadyReaders(); !slices.Equal(got, []string{"fixed", "card1"}) {
		t.Fatalf("ReadyReaders %v", got)
	}
	if got := h.UpMounts(); got != nil {
		t.Errorf("UpMounts %v with the relay off", got)
	}
	d.cfg.Web.Enabled = false
	ok := update.CheckHealth(context.Background(), h, update.BaselineOf(h), time.Second, 10*time.Millisecond)
	if !ok.Passed {
		t.Errorf("same readers: %s", ok)
	}
	lost := update.CheckHealth(context.Background(), h, update.Baseline{Readers: []string{"card1", "card2"}}, 50*time.Millisecond, 10*time.Millisecond)
	if lost.Passed || !strings.Contains(lost.String(), "not back: card2") {
		t.Errorf("missing reader passed: %s", lost)
	}
}

// updateDaemon returns a daemon with a real update component (RAUC, a
// fresh key) that has not been started.
func updateDaemon(t testing.TB) *daemon {
	t.Helper()
	pub, _, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Global.StateDir = t.TempDir()
	cfg.Update.PublicKeys, cfg.Update.Board, cfg.Update.Install = []string{pub.String()}, "satrx-armv7", "rauc"
	logs, _ := newLogging(cfg.Log, io.Discard)
	d := &daemon{log: logs, cfg: cfg}
	c, err := buildUpdate(env{cfg: cfg, log: logs.component("update"), daemon: d})
	if err != nil || c == nil {
		t.Fatalf("buildUpdate: %v", err)
	}
	d.addPart("update", c)
	return d
}

// tarOf builds a firmware upload from name/content pairs.
func tarOf(t *testing.T, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return b.Bytes()
}

func TestUpdaterAdapter(t *testing.T) {
	off := daemonUpdater{&daemon{}}
	if err := off.Install(context.Background(), "x.tar", strings.NewReader(""), 0); !errors.Is(err, web.ErrNotAvailable) {
		t.Errorf("updates off: %v", err)
	}
	if off.State().Phase != "unavailable" {
		t.Errorf("updates off: %+v", off.State())
	}

	u := daemonUpdater{updateDaemon(t)}
	tests := []struct {
		name   string
		upload []byte
		want   error
		msg    string
	}{
		{"not a tar", []byte("garbage"), errUpload, ".json member"},
		{"wrong order", tarOf(t, "satd-update.json.minisig", "sig", "satd-update.json", "{}"), errUpload, "want a .json file"},
		{"no payload", tarOf(t, "satd-update.json", "{}", "satd-update.json.minisig", "sig"), errUpload, "payload: missing"},
		{"manifest too big", tarOf(t, "satd-update.json", strings.Repeat(" ", maxManifestSize+1)), errUpload, "at most"},
		{"bad signature reaches the manager", tarOf(t, "satd-update.json", "{}", "satd-update.json.minisig", "sig", "image.raucb", "payload"), update.ErrMalformedManifest, ""},
	}
	for _, tc := range tests {
		err := u.Install(context.Background(), "upload.tar", bytes.NewReader(tc.upload), int64(len(tc.upload)))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if st := u.State(); st.Phase != "failed" || st.Message == "" || st.Current != version {
		t.Errorf("state after a refused upload %+v", st)
	}
}

// FuzzFirmwareUpload feeds arbitrary uploads to the updater: refused with
// an error, never a panic.
func FuzzFirmwareUpload(f *testing.F) {
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	d := updateDaemon(f)
	f.Fuzz(func(t *testing.T, upload []byte) {
		if err := (daemonUpdater{d}).Install(context.Background(), "f.tar", bytes.NewReader(upload), -1); err == nil {
			t.Fatal("arbitrary upload installed")
		}
	})
}

// TestCardResetOnStatus: a simulated Conax card that hangs (90 11) is
// warm-reset at its card system's request, answers again, and the reset
// is counted in the reader status the Status page and /api/status show.
func TestCardResetOnStatus(t *testing.T) {
	d := startRig(t)
	rc, ok := part[*readersComponent](d)
	if !ok {
		t.Fatal("no readers component")
	}
	var src *cardSource
	for _, u := range rc.units {
		if s, ok := u.source().(*cardSource); ok && u.cfg.Label == "card1" {
			src = s
		}
	}
	if src == nil || !src.simMode(personality.Hang) {
		t.Fatal("no sim reader card1")
	}
	solveOne(t, d, 1, balancer.NotFound)
	src.simMode(personality.Normal)
	deadline := time.Now().Add(hangGuard)
	// The reader turns ready before its watcher hands the card system to
	// the balancer (cardSource.update); src.solve below bypasses the
	// balancer, so wait for both.
	for st := d.readers()[1]; st.CardResets == 0 || st.State != "ready" || src.active.Load() == nil; st = d.readers()[1] {
		if time.Now().After(deadline) {
			t.Fatalf("no card reset: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The balancer keeps the hang's not-found for this service a while:
	// ask the card directly.
	ecm := []byte{0x80, 0x70, 0x03, 1, 2, 3}
	if res, cw, why := src.solve(&balancer.Request{CAID: 0x0B00, SrvID: 1, ECM: ecm}); res != balancer.Found || cw != personality.ExpectedCW("conax", ecm) {
		t.Errorf("after the reset: %v % X %s", res, cw, why)
	}
	// A loaded machine may let the reader retry its reset while the card
	// still hangs: at least one reset, and the count the reader keeps.
	if card, want := (daemonStatus{d}).Status().Readers[1], d.readers()[1].CardResets; card.CardResets == 0 || card.CardResets != want {
		t.Errorf("Status page reader %+v, want the reader's %d card resets (at least 1)", card, want)
	}
}
