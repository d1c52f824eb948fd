package web

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics is satd's Prometheus exposition, served at /metrics. The balancer
// and the relay report events through its methods (wired by the daemon);
// gauges that are a snapshot (listeners, reader states) are read from the
// StatusSource at scrape time. The methods allocate nothing once a label set
// has been seen, so they may sit on the ECM path.
type Metrics struct {
	set *metrics.Set

	mu      sync.Mutex
	ecms    map[pair]*metrics.Counter
	latency map[string]*metrics.Histogram
	auths   map[string]*metrics.Counter

	cacheHits *metrics.Counter
	evictions *metrics.Counter
}

type pair struct{ a, b string }

// NewMetrics returns an empty exposition.
func NewMetrics() *Metrics {
	s := metrics.NewSet()
	return &Metrics{
		set:       s,
		ecms:      map[pair]*metrics.Counter{},
		latency:   map[string]*metrics.Histogram{},
		auths:     map[string]*metrics.Counter{},
		cacheHits: s.NewCounter("satd_ecm_cache_hits_total"),
		evictions: s.NewCounter("satd_ecm_cache_evictions_total"),
	}
}

// labelValue makes an untrusted string safe inside a quoted label value.
func labelValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 {
			return '_'
		}
		return r
	}, s)
}

// ECM counts one answered (or failed) ECM of reader with result ("found",
// "not found", "timeout", ...) and records its latency.
func (m *Metrics) ECM(reader, result string, took time.Duration) {
	m.mu.Lock()
	c, ok := m.ecms[pair{reader, result}]
	if !ok {
		c = m.set.GetOrCreateCounter(`satd_ecm_total{reader="` + labelValue(reader) + `",result="` + labelValue(result) + `"}`)
		m.ecms[pair{reader, result}] = c
	}
	h, ok := m.latency[reader]
	if !ok {
		h = m.set.GetOrCreateHistogram(`satd_reader_ecm_duration_seconds{reader="` + labelValue(reader) + `"}`)
		m.latency[reader] = h
	}
	m.mu.Unlock()
	c.Inc()
	h.Update(took.Seconds())
}

// CacheHit counts an ECM answered from the control-word cache.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// Eviction counts an entry evicted from the control-word cache.
func (m *Metrics) Eviction() { m.evictions.Inc() }

// auth counts one decision of the web form's guards and login.
func (m *Metrics) auth(decision string) {
	m.mu.Lock()
	c, ok := m.auths[decision]
	if !ok {
		c = m.set.GetOrCreateCounter(`satd_web_auth_total{decision="` + labelValue(decision) + `"}`)
		m.auths[decision] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// write writes the exposition with the scrape-time snapshot of src.
func (m *Metrics) write(w io.Writer, src StatusSource) {
	m.set.WritePrometheus(w)
	st := src.Status()
	for _, mt := range st.Mounts {
		l := `{mount="` + labelValue(mt.Name) + `"}`
		metrics.WriteGaugeUint64(w, "satd_stream_listeners"+l, uint64(mt.Listeners))
		metrics.WriteCounterUint64(w, "satd_stream_upstream_switches_total"+l, mt.UpstreamSwitches)
	}
	for _, r := range st.Readers {
		ready := uint64(0)
		if r.State == "ready" {
			ready = 1
		}
		metrics.WriteGaugeUint64(w, `satd_reader_ready{reader="`+labelValue(r.Label)+`"}`, ready)
	}
	metrics.WriteGaugeUint64(w, "satd_services_active", uint64(len(st.Services)))
	metrics.WriteProcessMetrics(w)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.guard.policy.Load().public && !s.loggedIn(r) {
		http.Error(w, "401 log in first (web.metrics_public = false)", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	s.opt.Metrics.write(w, s.opt.Status)
}
