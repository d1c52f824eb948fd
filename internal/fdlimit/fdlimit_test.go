package fdlimit

import (
	"net"
	"runtime"
	"syscall"
	"testing"
)

func TestRaiseReachesHardLimit(t *testing.T) {
	got, err := Raise()
	if err != nil {
		t.Fatalf("Raise: %v", err)
	}
	if h := hard(t); got != h {
		t.Fatalf("soft limit %d after Raise, hard limit %d", got, h)
	}
	if Limit() != got {
		t.Fatalf("Limit() = %d, want %d", Limit(), got)
	}
}

func TestShareHasFloorAndScales(t *testing.T) {
	old := limit.Load()
	defer limit.Store(old)
	for _, tc := range []struct {
		limit   uint64
		percent int
		want    int
	}{
		{1024, ShareWeb, 153},
		{1024, ShareStream, 512},
		{64, ShareDVBAPI, minShare},
		{1 << 40, 1, 1 << 24 / 100},
	} {
		limit.Store(tc.limit)
		if got := Share(tc.percent); got != tc.want {
			t.Errorf("Share(%d) at limit %d = %d, want %d", tc.percent, tc.limit, got, tc.want)
		}
	}
	if ShareStream+ShareWeb+ShareDVBAPI > 80 {
		t.Fatalf("shares add up to more than 80%%: nothing left for files")
	}
}

// TestWrapHoldsAtCap floods a listener capped at 3: the fourth connection
// waits in the backlog (no descriptor of ours) until one of the three closes.
func TestWrapHoldsAtCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, 3)
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	var held []net.Conn
	for range 3 {
		held = append(held, <-accepted)
	}
	for i := 0; ln.Full() == 0 && i < 1e6; i++ {
		runtime.Gosched()
	}
	if ln.Full() == 0 || ln.Open() != 3 || len(accepted) != 0 {
		t.Fatalf("at cap: full=%d open=%d queued=%d, want full>0 open=3 queued=0", ln.Full(), ln.Open(), len(accepted))
	}
	held[0].Close()
	held[0].Close() // a second Close must not give a second slot back
	c := <-accepted
	defer c.Close()
	for i := 0; ln.Full() < 2 && i < 1e6; i++ {
		runtime.Gosched()
	}
	if ln.Open() != 3 || len(accepted) != 0 {
		t.Fatalf("after one close: open=%d queued=%d, want 3 and 0", ln.Open(), len(accepted))
	}
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Fatal("Accept returned a connection after Close")
	}
}

func hard(t *testing.T) uint64 {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	return uint64(rl.Max)
}

// TestPerPeerSheds caps one peer at 2: its third connection is closed at
// once, while another peer address is still served.
func TestPerPeerSheds(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, 10).PerPeer(2)
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial("127.0.0.1")
	dial("127.0.0.1")
	a, b := <-accepted, <-accepted
	defer a.Close()
	defer b.Close()
	third := dial("127.0.0.1")
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection of one peer was not closed")
	}
	if ln.Shed() != 1 {
		t.Errorf("shed %d, want 1", ln.Shed())
	}
	dial("127.0.0.2")
	c := <-accepted
	defer c.Close()
	if ln.Open() != 3 {
		t.Errorf("open %d, want 3", ln.Open())
	}
	a.Close()
	dial("127.0.0.1")
	d := <-accepted
	d.Close()
}
