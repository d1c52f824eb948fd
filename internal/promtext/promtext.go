// Package promtext writes the Prometheus text exposition format (version
// 0.0.4): counters, gauges, fixed-bucket histograms and the process metrics
// a scraper expects.
//
// It exists instead of a metrics library because satd needs only these few
// shapes, and the library it replaced linked regexp and its own histogram
// packages into the receiver's binary (~0.2 MB of a 10 MB budget). Updates
// are atomic and allocate nothing, so they may sit on the ECM path.
package promtext

import (
	"bufio"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter is a monotonically increasing count.
type Counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.n.Add(n) }

// Get returns the count.
func (c *Counter) Get() uint64 { return c.n.Load() }

// Histogram counts observations into fixed cumulative buckets.
type Histogram struct {
	bounds []float64 // upper bounds, ascending; +Inf is implicit
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// LatencyBuckets are the upper bounds, in seconds, of an ECM latency
// histogram: fine below 1 s where cards answer, coarse up to the client
// timeouts.
var LatencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // first bound >= v: le is inclusive
	if i < len(h.counts) {
		h.counts[i].Add(1)
	}
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// metric is one registered sample series.
type metric struct {
	family string // the name before the labels
	labels string // "" or `{a="b",...}` without the braces' content changes
	c      *Counter
	h      *Histogram
}

// Set is a registry of counters and histograms, written in registration
// order grouped by family.
type Set struct {
	mu      sync.Mutex
	byName  map[string]*metric
	ordered []*metric
}

// NewSet returns an empty registry.
func NewSet() *Set { return &Set{byName: map[string]*metric{}} }

// Counter returns the counter of name (with its labels, `n{k="v"}`),
// creating it on first use.
func (s *Set) Counter(name string) *Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.byName[name]; ok && m.c != nil {
		return m.c
	}
	m := s.add(name)
	m.c = &Counter{}
	return m.c
}

// Histogram returns the histogram of name (with its labels) over bounds,
// creating it on first use.
func (s *Set) Histogram(name string, bounds []float64) *Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.byName[name]; ok && m.h != nil {
		return m.h
	}
	m := s.add(name)
	m.h = &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
	return m.h
}

func (s *Set) add(name string) *metric {
	family, labels := name, ""
	if i := strings.IndexByte(name, '{'); i >= 0 {
		family, labels = name[:i], strings.TrimSuffix(name[i+1:], "}")
	}
	m := &metric{family: family, labels: labels}
	s.byName[name] = m
	s.ordered = append(s.ordered, m)
	return m
}

// Write writes every registered series, each family under one TYPE line.
func (s *Set) Write(w io.Writer) error {
	s.mu.Lock()
	ms := slices.Clone(s.ordered)
	s.mu.Unlock()
	slices.SortStableFunc(ms, func(a, b *metric) int { return strings.Compare(a.family, b.family) })
	bw := bufio.NewWriter(w)
	for i, m := range ms {
		if i == 0 || ms[i-1].family != m.family {
			typ := "counter"
			if m.h != nil {
				typ = "histogram"
			}
			bw.WriteString("# TYPE " + m.family + " " + typ + "\n")
		}
		if m.c != nil {
			writeSample(bw, m.family, m.labels, "", strconv.FormatUint(m.c.Get(), 10))
			continue
		}
		writeHistogram(bw, m)
	}
	return bw.Flush()
}

func writeHistogram(w *bufio.Writer, m *metric) {
	var cum uint64
	for i, b := range m.h.bounds {
		cum += m.h.counts[i].Load()
		writeSample(w, m.family+"_bucket", m.labels, `le="`+formatFloat(b)+`"`, strconv.FormatUint(cum, 10))
	}
	n := m.h.count.Load()
	writeSample(w, m.family+"_bucket", m.labels, `le="+Inf"`, strconv.FormatUint(n, 10))
	writeSample(w, m.family+"_sum", m.labels, "", formatFloat(math.Float64frombits(m.h.sum.Load())))
	writeSample(w, m.family+"_count", m.labels, "", strconv.FormatUint(n, 10))
}

func writeSample(w *bufio.Writer, name, labels, extra, value string) {
	w.WriteString(name)
	if labels != "" || extra != "" {
		w.WriteByte('{')
		w.WriteString(labels)
		if labels != "" && extra != "" {
			w.WriteByte(',')
		}
		w.WriteString(extra)
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(value)
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Sample is one value of a family read at scrape time; Labels is empty or
// the inside of the braces (`mount="x"`).
type Sample struct {
	Labels string
	Value  float64
}

// WriteFamily writes samples of one family read at scrape time under one
// TYPE line (typ is "gauge" or "counter"). A family with no samples writes
// nothing.
func WriteFamily(w io.Writer, family, typ string, samples ...Sample) {
	if len(samples) == 0 {
		return
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("# TYPE " + family + " " + typ + "\n")
	for _, s := range samples {
		writeSample(bw, family, s.Labels, "", formatFloat(s.Value))
	}
	bw.Flush()
}

// LabelValue makes an untrusted string safe inside a quoted label value.
func LabelValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 {
			return '_'
		}
		return r
	}, s)
}
