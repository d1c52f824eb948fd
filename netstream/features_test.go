package netstream

import (
	"testing"
	"time"
)

// TestFallbackOverride: listeners of a mount whose source leaves move to
// its fallback-mount (not silence), a new listener of the sourceless mount
// is served from the fallback, and with fallback-override they all move
// back when the source returns, without reconnecting.
func TestFallbackOverride(t *testing.T) {
	fb := fileMount()
	fb.Name = "/fallback"
	main := DefaultMount()
	main.Name = "/main"
	main.FallbackMount = "/fallback"
	main.FallbackOverride = true
	s := startServer(t, testConfig(main, fb))
	mm, fm := s.mount("/main"), s.mount("/fallback")
	push := pushSource(t, s.Addr(), "/main", "source", "hackme")
	waitFor(t, 5*time.Second, "pushed audio", func() bool { return mm.fresh(time.Now(), time.Second) })
	waitBurst(t, fm)
	cl := dialListener(t, s.Addr(), "/main")
	cl.readFor(200 * time.Millisecond)
	counts := func(m, f int64) func() bool {
		return func() bool { return mm.listeners.Load() == m && fm.listeners.Load() == f }
	}

	push.Close()
	waitFor(t, 5*time.Second, "the listener moved to the fallback", counts(0, 1))
	if f, sil := countFrames(t, cl.readFor(time.Second+writeBatch)); f-sil < 20 {
		t.Fatalf("on the fallback: %d frames, %d silent", f, sil)
	}
	late := dialListener(t, s.Addr(), "/main")
	if late.code() != 200 {
		t.Fatalf("a listener of the sourceless mount got %s", late.status)
	}
	waitFor(t, 5*time.Second, "the new listener served by the fallback", counts(0, 2))

	pushSource(t, s.Addr(), "/main", "source", "hackme")
	waitFor(t, 5*time.Second, "fallback-override moving everyone back", counts(2, 0))
	if f, _ := countFrames(t, cl.readFor(time.Second+writeBatch)); f < 20 {
		t.Fatalf("back on /main: %d frames", f)
	}
}
