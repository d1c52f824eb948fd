package balancer

import (
	"errors"
	"testing"
	"time"
)

// TestStatKeyRoundTrip checks that every key the view shows parses back.
func TestStatKeyRoundTrip(t *testing.T) {
	k := StatKey{CAID: 0x0963, PRID: 0x00ABCD, SrvID: 0x1234, CHID: 0x0007, ECMLen: 140}
	if s := k.String(); s != "0963@00ABCD:1234:0007:140" {
		t.Fatalf("String = %q", s)
	}
	got, err := ParseStatKey(k.String())
	if err != nil || got != k {
		t.Fatalf("ParseStatKey = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "0963", "0963@0:1:2", "0963@0:1:2:x", "10000@0:1:2:3", "0963@1000000:1:2:3", "0963@0:1:2:3:4"} {
		if _, err := ParseStatKey(bad); err == nil {
			t.Errorf("ParseStatKey(%q) accepted", bad)
		}
	}
}

func TestStatViews(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.setStat("A", Found, 10, 200, 0, 1000).ring[0] = 180
	r.setStat("B", NotFound, 0, undefAvg, 2, 0)
	views := r.d.StatViews()
	if len(views) != 2 {
		t.Fatalf("%d views, want 2: %+v", len(views), views)
	}
	a, b := views[0], views[1]
	origin := r.clock.Origin()
	if a.Reader != "A" || a.Key.String() != "0963@000000:1234:0000:140" || a.Result != Found || a.Count != 10 ||
		a.Avg != 200*time.Millisecond || a.Last != 180*time.Millisecond || !a.BlockedUntil.IsZero() ||
		!a.LastSeen.Equal(origin.Add(-time.Second)) {
		t.Errorf("A: %+v", a)
	}
	block := 2 * time.Duration(r.d.Settings().ReopenSeconds) * time.Second
	if b.Reader != "B" || b.Result != NotFound || b.Avg != 0 || b.Fail != 2 || !b.BlockedUntil.Equal(origin.Add(block)) {
		t.Errorf("B: %+v (block %v)", b, block)
	}
	if r.stat("B").fail != 2 {
		t.Error("StatViews changed an entry")
	}
}

func TestResetStats(t *testing.T) {
	tests := []struct {
		name   string
		reader string
		left   []string
		n      int
		err    error
	}{
		{"one reader", "A", []string{"B"}, 1, nil},
		{"all readers", "", nil, 2, nil},
		{"unknown reader", "C", []string{"A", "B"}, 0, ErrUnknownReader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, baseline(), "A", "B")
			r.valid("A", 100)
			r.valid("B", 100)
			n, err := r.d.ResetStats(tt.reader)
			if !errors.Is(err, tt.err) || n != tt.n {
				t.Fatalf("ResetStats(%q) = %d, %v; want %d, %v", tt.reader, n, err, tt.n, tt.err)
			}
			var left []string
			for _, v := range r.d.StatViews() {
				left = append(left, v.Reader)
			}
			if len(left) != len(tt.left) || (len(left) > 0 && left[0] != tt.left[0]) {
				t.Fatalf("left %v, want %v", left, tt.left)
			}
			// The table still works after a reset: a new stat can be created.
			r.valid("A", 50)
			if r.stat("A") == nil {
				t.Fatal("no stat after reset")
			}
		})
	}
}

func TestClearStat(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.valid("A", 100)
	r.valid("B", 100)
	k := StatKey{CAID: keyK.caid, SrvID: keyK.srvid, ECMLen: keyK.ecmlen}
	if err := r.d.ClearStat("A", k); err != nil {
		t.Fatal(err)
	}
	if r.stat("A") != nil || r.stat("B") == nil {
		t.Fatal("wrong entry cleared")
	}
	if err := r.d.ClearStat("A", k); !errors.Is(err, ErrNoStat) {
		t.Errorf("second clear: %v, want ErrNoStat", err)
	}
	other := k
	other.ECMLen = 141
	if err := r.d.ClearStat("B", other); !errors.Is(err, ErrNoStat) {
		t.Errorf("other ecmlen: %v, want ErrNoStat", err)
	}
	if err := r.d.ClearStat("Z", k); !errors.Is(err, ErrUnknownReader) {
		t.Errorf("unknown reader: %v", err)
	}
}

// TestResetRace runs resets and views against ECMs; -race checks the lock.
func TestResetRace(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			r.d.ResetStats("")
			r.d.StatViews()
		}
	}()
	for range 200 {
		r.d.mu.Lock()
		r.valid("A", 10)
		r.d.mu.Unlock()
	}
	<-done
}

// FuzzParseStatKey checks that any key the web form posts either parses
// to one that formats back to itself or is refused, never panics.
func FuzzParseStatKey(f *testing.F) {
	for _, s := range []string{"0963@00ABCD:1234:0007:140", "0B00@000000:0001:0000:19", "", "@:::", "0963@0:1:2:-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseStatKey(s)
		if err != nil {
			return
		}
		if again, err := ParseStatKey(k.String()); err != nil || again != k {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, k, k.String(), again, err)
		}
	})
}
