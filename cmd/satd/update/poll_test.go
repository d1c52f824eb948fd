package update

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recordingTransport answers every request with 404 and records its time.
type recordingTransport struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/satd-update.json" {
		r.times = append(r.times, time.Now())
	}
	return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Body: http.NoBody, Request: req}, nil
}

// TestPollSpacing checks that polls come every interval plus at most a
// quarter of it, and the first after the jitter alone.
func TestPollSpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &recordingTransport{}
		k := newTestKey(t)
		m, err := New(Options{Policy: testPolicy(k.pubText(t)), ManifestURL: "http://updates.invalid/satd-update.json",
			Dir: t.TempDir(), Kind: KindBinary, Fetcher: &Fetcher{Client: &http.Client{Transport: rt}}})
		if err != nil {
			t.Fatal(err)
		}
		const interval = time.Hour
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Poll(ctx, interval); close(done) }()
		time.Sleep(10*interval + time.Minute)
		cancel()
		<-done
		if len(rt.times) < 8 || len(rt.times) > 11 {
			t.Fatalf("%d polls in 10 intervals", len(rt.times))
		}
		if first := rt.times[0].Sub(start); first > interval/4 {
			t.Errorf("first poll after %s, want at most %s", first, interval/4)
		}
		for i := 1; i < len(rt.times); i++ {
			if gap := rt.times[i].Sub(rt.times[i-1]); gap < interval || gap > interval+interval/4 {
				t.Errorf("poll %d came %s after the previous one", i, gap)
			}
		}
		if st := m.Status(); st.Phase != PhaseFailed || st.Err == "" {
			t.Errorf("status after a failed poll: %+v", st)
		}
	})
}

func TestJitterBounds(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999999} {
		if j := Jitter(4*time.Hour, r); j < 0 || j >= time.Hour {
			t.Errorf("Jitter(4h, %v) = %s", r, j)
		}
	}
}
