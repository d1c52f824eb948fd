package web

import (
	"io"
	"net/http"
	"sync"
	"time"

	"satd.dev/satd/internal/promtext"
)

// Metrics is satd's Prometheus exposition, served at /metrics. The balancer
// and the relay report events through its methods (wired by the daemon);
// gauges that are a snapshot (listeners, reader states) are read from the
// StatusSource at scrape time. The methods allocate nothing once a label set
// has been seen, so they may sit on the ECM path.
type Metrics struct {
	set *promtext.Set

	mu      sync.Mutex
	ecms    map[pair]*promtext.Counter
	latency map[string]*promtext.Histogram
	auths   map[string]*promtext.Counter

	cacheHits *promtext.Counter
	evictions *promtext.Counter
}

type pair struct{ a, b string }

// NewMetrics returns an empty exposition.
func NewMetrics() *Metrics {
	s := promtext.NewSet()
	return &Metrics{
		set:       s,
		ecms:      map[pair]*promtext.Counter{},
		latency:   map[string]*promtext.Histogram{},
		auths:     map[string]*promtext.Counter{},
		cacheHits: s.Counter("satd_ecm_cache_hits_total"),
		evictions: s.Counter("satd_ecm_cache_evictions_total"),
	}
}

// labelValue makes an untrusted string safe inside a quoted label value.
var labelValue = promtext.LabelValue

// ECM counts one answered (or failed) ECM of reader with result ("found",
// "not found", "timeout", ...) and records its latency.
func (m *Metrics) ECM(reader, result string, took time.Duration) {
	m.mu.Lock()
	c, ok := m.ecms[pair{reader, result}]
	if !ok {
		c = m.set.Counter(`satd_ecm_total{reader="` + labelValue(reader) + `",result="` + labelValue(result) + `"}`)
		m.ecms[pair{reader, result}] = c
	}
	h, ok := m.latency[reader]
	if !ok {
		h = m.set.Histogram(`satd_reader_ecm_duration_seconds{reader="`+labelValue(reader)+`"}`, promtext.LatencyBuckets)
		m.latency[reader] = h
	}
	m.mu.Unlock()
	c.Inc()
	h.Observe(took.Seconds())
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
		c = m.set.Counter(`satd_web_auth_total{decision="` + labelValue(decision) + `"}`)
		m.auths[decision] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// write writes the exposition with the scrape-time snapshot of src.
func (m *Metrics) write(w io.Writer, src StatusSource) {
	m.set.Write(w)
	st := src.Status()
	var listeners, switches, ready []promtext.Sample
	for _, mt := range st.Mounts {
		l := `mount="` + labelValue(mt.Name) + `"`
		listeners = append(listeners, promtext.Sample{Labels: l, Value: float64(mt.Listeners)})
		switches = append(switches, promtext.Sample{Labels: l, Value: float64(mt.UpstreamSwitches)})
	}
	for _, r := range st.Readers {
		v := 0.0
		if r.State == "ready" {
			v = 1
		}
		ready = append(ready, promtext.Sample{Labels: `reader="` + labelValue(r.Label) + `"`, Value: v})
	}
	promtext.WriteFamily(w, "satd_stream_listeners", "gauge", listeners...)
	promtext.WriteFamily(w, "satd_stream_upstream_switches_total", "counter", switches...)
	promtext.WriteFamily(w, "satd_reader_ready", "gauge", ready...)
	promtext.WriteFamily(w, "satd_services_active", "gauge", promtext.Sample{Value: float64(len(st.Services))})
	promtext.WriteProcess(w)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.guard.policy.Load().public && !s.loggedIn(r) {
		http.Error(w, "401 log in first (web.metrics_public = false)", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	s.opt.Metrics.write(w, s.opt.Status)
}
