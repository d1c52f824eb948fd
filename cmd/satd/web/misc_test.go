package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLogRing(t *testing.T) {
	ring := NewLogRing(3)
	log := slog.New(ring.Handler()).With("component", "web").WithGroup("g")
	for i := 0; i < 5; i++ {
		log.Info("m", "i", i)
	}
	log.Debug("quiet")
	got, changed := ring.Since(0, slog.LevelInfo)
	if len(got) != 2 || got[0].Seq != 4 || got[1].Attrs != "component=web g.i=4" {
		t.Fatalf("since 0: %+v", got)
	}
	if all, _ := ring.Since(0, slog.LevelDebug); len(all) != 3 {
		t.Errorf("debug filter: %d entries", len(all))
	}
	select {
	case <-changed:
		t.Fatal("changed before a new record")
	default:
	}
	log.Warn("new")
	<-changed
	if got, _ := ring.Since(6, slog.LevelInfo); len(got) != 1 || got[0].Msg != "new" {
		t.Errorf("since 6: %+v", got)
	}
}

func TestMetricsExposition(t *testing.T) {
	r := newRig(t, "", nil)
	r.status.st = Status{Mounts: []MountStatus{{Name: `radio"x`, Listeners: 4, UpstreamSwitches: 2}}, Readers: []ReaderStatus{{Label: "slot0", State: "ready"}}}
	m := r.srv.opt.Metrics
	m.ECM("slot0", "found", 150*time.Millisecond)
	m.ECM("slot0", "timeout", 3*time.Second)
	m.CacheHit()
	m.Eviction()
	h := r.srv.Handler()
	req := httptest.NewRequest("POST", "http://127.0.0.1/system/restart", nil)
	req.RemoteAddr = "127.0.0.1:1"
	h.ServeHTTP(httptest.NewRecorder(), req) // an auth decision: no session
	rec := httptest.NewRecorder()
	req = httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`satd_ecm_total{reader="slot0",result="found"} 1`,
		`satd_ecm_total{reader="slot0",result="timeout"} 1`,
		`satd_reader_ecm_duration_seconds_bucket{reader="slot0",le="0.2"} 1`,
		`satd_ecm_cache_hits_total 1`,
		`satd_ecm_cache_evictions_total 1`,
		`satd_stream_listeners{mount="radio_x"} 4`,
		`satd_stream_upstream_switches_total{mount="radio_x"} 2`,
		`satd_reader_ready{reader="slot0"} 1`,
		`satd_web_auth_total{decision="no_session"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestECMMetricAllocs guards the ECM path: no allocation once a reader and
// result have been seen.
func TestECMMetricAllocs(t *testing.T) {
	m := NewMetrics()
	m.ECM("slot0", "found", time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.ECM("slot0", "found", 150*time.Millisecond); m.CacheHit() }); n != 0 {
		t.Errorf("ECM allocates %.1f times per call", n)
	}
}

// pagePaths are the pages a logged-in user sees.
var pagePaths = []string{"/", "/balancer", "/config?section=web", "/config/readers", "/log", "/system", "/confirm"}

// TestPageWeight checks every page, with its stylesheet and script, stays
// under 100 KB, with many readers, rows and log lines in it.
func TestPageWeight(t *testing.T) {
	r := newRig(t, "", nil)
	busy(r)
	r.start()
	c := r.loggedInClient()
	assets := len(get(t, c, r.url("/static/satd.css"))) + len(get(t, c, r.url("/static/satd.js")))
	for _, p := range pagePaths {
		n := len(get(t, c, r.url(p)))
		t.Logf("%-22s %6d bytes + %d of CSS/JS", p, n, assets)
		if n+assets > 100<<10 {
			t.Errorf("%s: %d bytes with its assets, over 100 KB", p, n+assets)
		}
	}
}

// busy fills the fakes as on a busy receiver: 4 readers, 16 services, 200
// statistics rows and a full log ring.
func busy(r *rig) {
	var st Status
	for i := 0; i < 4; i++ {
		st.Readers = append(st.Readers, ReaderStatus{Label: "slot" + string(rune('0'+i)), State: "ready", ATR: "3B 24 00 30 42 30 30", Providers: []string{"000000"}, Subscriptions: []Subscription{{Name: "Basic"}}})
	}
	for i := 0; i < 16; i++ {
		st.Services = append(st.Services, ServiceStatus{Client: "tvheadend", Channel: "Channel", Reader: "slot0"})
	}
	r.status.st = st
	for i := 0; i < 200; i++ {
		r.balancer.rows = append(r.balancer.rows, StatsRow{Reader: "slot1", Key: "0B00@000000:0001:0000:64", Channel: "Channel", Result: "found", Count: i})
	}
	for i := 0; i < 100; i++ {
		r.srv.opt.Log.Info("ecm answered", "reader", "slot0", "caid", "0B00", "ms", 180)
	}
}

// BenchmarkPageRender measures the server side of a first render: session
// check, snapshot, template, for each page.
func BenchmarkPageRender(b *testing.B) {
	t := &testing.T{}
	_ = t
	for _, p := range pagePaths {
		b.Run(strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(p), func(b *testing.B) {
			r := newRig(&testing.T{}, "", nil)
			busy(r)
			r.srv.pw.set("correct horse")
			token := r.srv.sess.create()
			h := r.srv.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://127.0.0.1"+p, nil)
				req.RemoteAddr = "127.0.0.1:1"
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", p, rec.Code)
				}
			}
		})
	}
}
