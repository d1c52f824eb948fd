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
	m := newMount(s, s.conf().Mounts[0])
	m.adm.Store(newAdmission(s, "/m", s.conf().Mounts[0].Auth))
	return s, m
}

// TestPublishAllocatesNothing checks the writer side: ingesting frames,
// filling and publishing ring slots allocates nothing in steady state.
func TestPublishAllocatesNothing(t *testing.T) {
	_, m := newTestMount(t)
	frames := demoFrames(t)
	src := &sourceRef{kind: kindUpstream}
	m.attach(src, codecMP3)
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
	s, m := newTestMount(t)
	frames := demoFrames(t)
	src := &sourceRef{kind: kindUpstream}
	m.attach(src, codecMP3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, _ := conn.(syscall.Conn).SyscallConn()
	l := &listener{m: m, conn: conn, rc: rc, metaint: 16000, until: 16000, lastProgress: time.Now().UnixNano()}
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

// BenchmarkFanout measures one publish serviced to 100 listeners over
// loopback sockets.
func BenchmarkFanout(b *testing.B) {
	s, m := newTestMount(b)
	frames := demoFrames(b)
	src := &sourceRef{kind: kindUpstream}
	m.attach(src, codecMP3)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	sh := s.fan.shards[0]
	var ls []*listener
	for range 100 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		rc, _ := conn.(syscall.Conn).SyscallConn()
		ls = append(ls, &listener{m: m, conn: conn, rc: rc, lastProgress: time.Now().UnixNano()})
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
