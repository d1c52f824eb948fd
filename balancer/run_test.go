package balancer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunRealClock drives the timers with Run on the (bubbled) real
// clock: a silent primary gives the fallback request at 2.5 s and the
// client TIMEOUT at 5 s; Close saves the stats.
func TestRunRealClock(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		c := baseline()
		c.LBSave = 100
		c.LBSavePath = filepath.Join(dir, "stat")
		fa := &fakeReader{name: "A", status: Status{Enabled: true, Present: true}, reqs: make([]Request, 0, 8)}
		fb := &fakeReader{name: "B", status: Status{Enabled: true, Present: true}, reqs: make([]Request, 0, 8)}
		o := DefaultReaderConfig()
		d, err := New(c, []ReaderSpec{{fa, o}, {fb, o}}, NewRealClock(), nil)
		if err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		for _, n := range []int{0, 1} {
			e := &d.readers[n].stats.entries[d.readers[n].stats.create(keyK, 0)]
			e.count, e.avg = 10, int32(100*(n+1))
		}
		d.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- d.Run(ctx) }()
		cl := &recClient{}
		if err := d.Submit(&ECM{CAID: 0x0963, SrvID: 0x1234, Len: 140, Client: cl}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2499 * time.Millisecond)
		synctest.Wait()
		if fbAsked(d, fb) != 0 {
			t.Fatal("fallback asked before 2500 ms")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if fbAsked(d, fb) != 1 {
			t.Fatal("fallback not asked at 2500 ms")
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		d.mu.Lock()
		defer d.mu.Unlock()
		if cl.n != 1 || cl.last.Result != Timeout || cl.last.After != 5000*time.Millisecond {
			t.Fatalf("client %+v", cl.last)
		}
		d.mu.Unlock()
		cancel()
		<-done
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
	})
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil || len(b) == 0 {
		t.Fatalf("no shutdown save: %v", err)
	}
}

func fbAsked(d *Dispatcher, fr *fakeReader) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(fr.reqs)
}
