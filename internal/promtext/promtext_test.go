package promtext

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	s := NewSet()
	s.Counter(`ecm_total{reader="a",result="found"}`).Add(3)
	s.Counter(`ecm_total{reader="a",result="timeout"}`).Inc()
	s.Counter("hits_total").Inc()
	h := s.Histogram(`lat_seconds{reader="a"}`, []float64{0.1, 0.5, 1})
	for _, v := range []float64{0.05, 0.1, 0.3, 2} {
		h.Observe(v)
	}
	var b bytes.Buffer
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	WriteFamily(&b, "listeners", "gauge", Sample{`mount="/a"`, 4}, Sample{`mount="/b"`, 0})
	want := `# TYPE ecm_total counter
ecm_total{reader="a",result="found"} 3
ecm_total{reader="a",result="timeout"} 1
# TYPE hits_total counter
hits_total 1
# TYPE lat_seconds histogram
lat_seconds_bucket{reader="a",le="0.1"} 2
lat_seconds_bucket{reader="a",le="0.5"} 3
lat_seconds_bucket{reader="a",le="1"} 3
lat_seconds_bucket{reader="a",le="+Inf"} 4
lat_seconds_sum{reader="a"} 2.45
lat_seconds_count{reader="a"} 4
# TYPE listeners gauge
listeners{mount="/a"} 4
listeners{mount="/b"} 0
`
	if b.String() != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSameNameSameSeries(t *testing.T) {
	s := NewSet()
	if s.Counter("x_total") != s.Counter("x_total") {
		t.Error("a second Counter call made a second series")
	}
	if s.Histogram("h", LatencyBuckets) != s.Histogram("h", LatencyBuckets) {
		t.Error("a second Histogram call made a second series")
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s := NewSet()
	c := s.Counter("c_total")
	h := s.Histogram("h_seconds", LatencyBuckets)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Inc()
				h.Observe(0.25)
			}
		}()
	}
	wg.Wait()
	var b bytes.Buffer
	s.Write(&b)
	for _, want := range []string{"c_total 8000\n", `h_seconds_bucket{le="0.3"} 8000`, "h_seconds_sum 2000\n", "h_seconds_count 8000\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestUpdatesAllocateNothing(t *testing.T) {
	s := NewSet()
	c := s.Counter("c_total")
	h := s.Histogram("h_seconds", LatencyBuckets)
	if n := testing.AllocsPerRun(1000, func() { c.Inc(); h.Observe(0.12) }); n != 0 {
		t.Errorf("updates allocate %.1f times", n)
	}
}

func TestProcessFamilies(t *testing.T) {
	var b bytes.Buffer
	WriteProcess(&b)
	for _, want := range []string{"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ", "go_goroutines ", "# TYPE go_goroutines gauge"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestLabelValue(t *testing.T) {
	if got := LabelValue("a\"b\\c\nd"); got != "a_b_c_d" {
		t.Errorf("LabelValue = %q", got)
	}
}
