package netstream

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// newTestMount builds a mount wired to a server that is not listening.
func newTestMount(t testing.TB) (*Server, *mount) {
	t.Helper()
	s, err := New(testConfig(MountConfig{Name: "/m"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.fan.batch = 0 // every service step writes what was published
	m := newMount(s, s.conf().Mounts[0])
	m.adm.Store(newAdmission(s, "/m", s.conf().Mounts[0].Auth))
	return s, m
}

// fedMount is a test mount with an MP3 upstream attached, and the demo
// frames to ingest from it.
func fedMount(t testing.TB) (*Server, *mount, *sourceRef, [][]byte) {
	t.Helper()
	s, m := newTestMount(t)
	src := &sourceRef{kind: kindUpstream}
	m.attach(src, codecMP3)
	return s, m, src, demoFrames(t)
}

// TestPublishAllocatesNothing checks the writer side: ingesting frames,
// filling and publishing ring slots allocates nothing in steady state.
func TestPublishAllocatesNothing(t *testing.T) {
	_, m, src, frames := fedMount(t)
	i := 0
	feed := func() {
		m.ingest(src, frames[i%len(frames)])
		i++
	}
	for range 2000 {
		feed()
	}
	if a := testing.AllocsPerRun(2000, feed); a != 0 {
		t.Fatalf("ingest+publish: %v allocs per frame", a)
	}
	now := time.Now()
	tick := func() { now = now.Add(2 * time.Second); m.tick(now) }
	tick()
	if a := testing.AllocsPerRun(200, tick); a != 0 {
		t.Fatalf("silence fill: %v allocs per tick", a)
	}
}

// TestSendStepAllocatesNothing checks the listener side on a real loopback
// socket: one service step (build iovecs, non-blocking writev, advance,
// with ICY metadata insertion) allocates nothing.
func TestSendStepAllocatesNothing(t *testing.T) {
	s, m, src, frames := fedMount(t)
	addr := discardServer(t)
	// The step produces faster than the loopback reader may drain: a skip
	// to the live edge is fine here (and allocation-free), a drop is not.
	s.cfg.MaxSkips = 1 << 30
	fd := dialDetached(t, addr)
	l := &listener{m: m, fd: int32(fd), metaint: 16000, until: 16000, lastProgress: time.Now().UnixNano()}
	sh := s.fan.shards[0]
	i := 0
	step := func() {
		for range 10 {
			m.ingest(src, frames[i%len(frames)])
			i++
		}
		if why := sh.service(l, time.Now().UnixNano()); why != "" {
			t.Fatalf("listener dropped: %s", why)
		}
	}
	for range 500 {
		step()
	}
	m.setTitle("new title") // one allocation at the change, none per chunk
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Fatalf("send step: %v allocs", a)
	}
	if l.bytes == 0 {
		t.Fatal("nothing was sent")
	}
}

// discardServer accepts connections on 127.0.0.1 and reads them to the end
// until the test ends; it returns its address.
func discardServer(t testing.TB) string {
	t.Helper()
	return loopbackServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// loopbackServer accepts connections on 127.0.0.1 until the test ends and
// runs serve on each in its own goroutine; it returns its address.
func loopbackServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// dialDetached connects to addr and returns the raw socket a shard would
// own; it is closed when the test ends.
func dialDetached(t testing.TB, addr string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := detachSocket(conn, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	return fd
}

// BenchmarkFanout measures one publish serviced to 100 listeners over
// loopback sockets.
func BenchmarkFanout(b *testing.B) {
	s, m, src, frames := fedMount(b)
	addr := discardServer(b)
	sh := s.fan.shards[0]
	var ls []*listener
	for range 100 {
		fd := dialDetached(b, addr)
		ls = append(ls, &listener{m: m, fd: int32(fd), lastProgress: time.Now().UnixNano()})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for range 10 {
			m.ingest(src, frames[i%len(frames)])
		}
		now := time.Now().UnixNano()
		for _, l := range ls {
			sh.service(l, now)
		}
	}
}
