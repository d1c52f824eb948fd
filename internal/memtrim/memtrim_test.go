package memtrim

import (
	"runtime/metrics"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	p := Policy{Every: time.Second, Quiet: 100, Min: 1000, Interval: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name string
		s    Sample
		at   time.Duration
		want bool
	}{
		{"first sample has no rate", Sample{Allocs: 0, Free: 5000}, 0, false},
		{"busy: many bytes allocated", Sample{Allocs: 10000, Free: 5000}, time.Second, false},
		{"quiet and enough free", Sample{Allocs: 10050, Free: 5000}, 2 * time.Second, true},
		{"again too soon", Sample{Allocs: 10060, Free: 5000}, 3 * time.Second, false},
		{"quiet, little free, little allocated", Sample{Allocs: 10070, Free: 999}, 13 * time.Second, false},
		{"interval over, enough free", Sample{Allocs: 10080, Free: 2000}, 14 * time.Second, true},
		{"busy again", Sample{Allocs: 12000, Free: 0}, 25 * time.Second, false},
		{"quiet after enough allocated, nothing free", Sample{Allocs: 12010, Free: 0}, 26 * time.Second, true},
		{"quiet, nothing since", Sample{Allocs: 12020, Free: 0}, 40 * time.Second, false},
	}
	var st state
	for _, s := range steps {
		if got := p.due(&st, s.s, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: due = %v, want %v", s.name, got, s.want)
		}
	}
}

// TestMetricsExist guards the metric names against a runtime that renamed
// them (read would then see zeros and never trim).
func TestMetricsExist(t *testing.T) {
	ms := make([]metrics.Sample, len(names))
	for i, n := range names {
		ms[i].Name = n
	}
	// A large object is counted at once; small ones only when their span's
	// cache is flushed, which a short test on a 32-bit target may never see.
	sink = make([]byte, 1<<20)
	metrics.Read(ms)
	for _, m := range ms {
		if m.Value.Kind() != metrics.KindUint64 {
			t.Errorf("metric %s: kind %v, want uint64", m.Name, m.Value.Kind())
		}
	}
	if s := read(ms); s.Allocs == 0 {
		t.Errorf("allocs = 0 after the test allocated")
	}
}

// sink keeps the test's allocation reachable.
var sink []byte
