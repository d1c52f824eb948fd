package dvbapi

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"
)

// heldSolver keeps every request and answers them when released, so a
// test controls whether an answer is in flight when a connection closes.
type heldSolver struct {
	mu   sync.Mutex
	held []heldReq
}

type heldReq struct {
	done ECMDone
	tag  uint64
}

func (s *heldSolver) Solve(r *ECMRequest) {
	s.mu.Lock()
	s.held = append(s.held, heldReq{r.Done, r.Tag})
	s.mu.Unlock()
}

// release answers every held request with a CW.
func (s *heldSolver) release() {
	s.mu.Lock()
	h := s.held
	s.held = nil
	s.mu.Unlock()
	for _, r := range h {
		r.done.ECMAnswered(ECMAnswer{Tag: r.tag, Result: Found, CW: examplePair(cwEven, cwOdd)})
	}
}

// failConn is a net.Conn whose writes fail from the failAt-th on.
type failConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	failAt int
}

var errInjected = errors.New("injected write failure")

func (f *failConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	fail := f.writes > f.failAt
	f.mu.Unlock()
	if fail {
		return 0, errInjected
	}
	return f.Conn.Write(p)
}

// burst is what the crashing clients sent: a run of CLIENT_INFO, a CA PMT
// and both ECM parities, all at once, never reading.
func burst(clientInfos int) []byte {
	var b []byte
	for range clientInfos {
		b = append(b, h("FF FF 00 01 00 02 00")...)
	}
	b = append(b, h(exampleCAPMT)...)
	b = AppendFilterData(b, 2, 0, 0, 0, exampleECM(0x80))
	return AppendFilterData(b, 2, 0, 0, 0, exampleECM(0x81))
}

// transports returns a listener and a dialer for TCP and the Unix socket.
func transports(t *testing.T) map[string]func() (net.Listener, func() (net.Conn, error)) {
	return map[string]func() (net.Listener, func() (net.Conn, error)){
		"tcp": func() (net.Listener, func() (net.Conn, error)) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return l, func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) }
		},
		"unix": func() (net.Listener, func() (net.Conn, error)) {
			p := filepath.Join(t.TempDir(), "camd.socket")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			return l, func() (net.Conn, error) { return net.Dial("unix", p) }
		},
	}
}

// reset closes c abruptly: an RST on TCP.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// TestConnectionLifetimeNoSendAfterClose reproduces the "send on closed
// channel" crash: a writer that fails while the reader still handles
// buffered messages, and a client that goes away with an answer in
// flight, over TCP and the Unix socket. The old code panicked within a
// few rounds; 1,000 rounds per transport must pass under -race.
func TestConnectionLifetimeNoSendAfterClose(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	for name, mk := range transports(t) {
		t.Run(name, func(t *testing.T) {
			l, dial := mk()
			defer l.Close()
			sol := &heldSolver{}
			srv := NewServer(Options{Solver: sol})
			rng := rand.New(rand.NewPCG(1, uint64(len(name))))
			for i := range rounds {
				cli, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				nc, err := l.Accept()
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				fc := &failConn{Conn: nc, failAt: rng.IntN(4)}
				go func() {
					defer close(done)
					srv.ServeConn(fc, false)
				}()
				cli.Write(burst(1 + rng.IntN(64)))
				if rng.IntN(2) == 0 {
					go sol.release() // answers race the close
				}
				reset(cli)
				sol.release() // what is still in flight arrives after the close
				select {
				case <-done:
				case <-time.After(time.Minute): // a hang guard, not a bound
					t.Fatalf("hung: round %d: connection not closed", i)
				}
				sol.release()
			}
			if n := srv.Conns(); n != 0 {
				t.Errorf("%d connections left", n)
			}
		})
	}
}

// TestAnswerAfterCloseIsDropped is the crash in its smallest form: an
// answer for a programme of a closed connection, and a second close.
func TestAnswerAfterCloseIsDropped(t *testing.T) {
	sol := &heldSolver{}
	c := testConn(t, sol)
	c.feed(t, h("FF FF 00 01 00 02 00"))
	c.feed(t, h(exampleCAPMT))
	c.feed(t, AppendFilterData(nil, 2, 0, 0, 0, exampleECM(0x80)))
	c.close(errInjected)
	sol.release()
	c.close(io.EOF)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != connClosed || c.out != nil || !errors.Is(c.failed, errInjected) {
		t.Errorf("state %v out %d failed %v", c.state, len(c.out), c.failed)
	}
}

// fuzzRW reads the fuzz input in chunks and fails writes after failAt bytes.
type fuzzRW struct {
	r      *bytes.Reader
	chunk  int
	mu     sync.Mutex
	wrote  int
	failAt int
}

func (f *fuzzRW) Read(p []byte) (int, error) {
	return f.r.Read(p[:min(len(p), f.chunk)])
}

func (f *fuzzRW) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wrote+len(p) > f.failAt {
		return 0, errInjected
	}
	f.wrote += len(p)
	return len(p), nil
}

func (f *fuzzRW) Close() error { return nil }

// FuzzConnection drives one connection with arbitrary client bytes, a
// writer that fails at a random point and answers that arrive before,
// during or after the close. It must never panic and must end closed.
func FuzzConnection(f *testing.F) {
	f.Add(uint16(0), uint8(7), true, burst(3))
	f.Add(uint16(30), uint8(200), false, burst(1))
	f.Add(uint16(500), uint8(1), true, append(h(exampleCAPMT), h("FF FF 00 01 00 03 00")...))
	f.Add(uint16(9), uint8(64), false, []byte("garbage"))
	f.Fuzz(func(t *testing.T, failAt uint16, chunk uint8, async bool, data []byte) {
		sol := &heldSolver{}
		srv := NewServer(Options{Solver: sol, Protocol0Grace: time.Millisecond})
		rw := &fuzzRW{r: bytes.NewReader(data), chunk: int(chunk) + 1, failAt: int(failAt)}
		c := newConn(srv, rw, srv.opt.Log, nil)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if async {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						sol.release()
						runtime.Gosched()
					}
				}
			})
		}
		c.serve()
		close(stop)
		wg.Wait()
		sol.release()
		select {
		case <-c.done:
		default:
			t.Fatal("serve returned with the connection open")
		}
	})
}

// TestSilentFloodReleased: a client that floods CLIENT_INFO and CA PMTs
// and never reads is closed at the output bound, the heap stays small
// while it floods, and the connection, its programmes and timers are
// released: the conn is collected and the heap returns to its baseline.
func TestSilentFloodReleased(t *testing.T) {
	for name, mk := range transports(t) {
		t.Run(name, func(t *testing.T) {
			l, dial := mk()
			defer l.Close()
			srv := NewServer(Options{Solver: &heldSolver{}})
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc

			cli, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			nc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			switch x := nc.(type) {
			case *net.TCPConn:
				x.SetWriteBuffer(4096)
			case *net.UnixConn:
				x.SetWriteBuffer(4096)
			}
			done := make(chan error, 1)
			go func() { done <- srv.ServeConn(nc, false) }()
			var wc weak.Pointer[conn]
			for wc.Value() == nil {
				srv.mu.Lock()
				for c := range srv.conns {
					wc = weak.Make(c)
				}
				srv.mu.Unlock()
				runtime.Gosched()
			}
			chunk := floodChunk()
			var peak uint64
			sent := 0
			for i := 0; sent < 64<<20; i++ {
				n, err := cli.Write(chunk)
				sent += n
				if err != nil {
					break
				}
				if i%64 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}
			err = <-done
			if !errors.Is(err, ErrSlowClient) {
				t.Errorf("closed with %v after %d bytes; want ErrSlowClient", err, sent)
			}
			if peak > 64<<20 {
				t.Errorf("heap peaked at %d MB while flooding", peak>>20)
			}
			reset(cli)
			for range 4 {
				runtime.GC()
			}
			if wc.Value() != nil {
				t.Error("closed connection still reachable")
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base+4<<20 {
				t.Errorf("heap %d KB after close, baseline %d KB", ms.HeapAlloc>>10, base>>10)
			}
			t.Logf("%s: %d bytes sent before the close; heap peak %d KB, after %d KB (baseline %d KB)",
				name, sent, peak>>10, ms.HeapAlloc>>10, base>>10)
		})
	}
}

// floodChunk is 64 KiB of CLIENT_INFOs and CA PMTs for changing services
// (each starts a programme and stops the previous one).
func floodChunk() []byte {
	var b []byte
	var m CAPMT
	sid := uint16(1)
	for len(b) < 64<<10 {
		b = append(b, h("FF FF 00 01 00 02 00")...)
		m = CAPMT{ListManagement: ListOnly, Program: sid, CmdID: CmdOKDescrambling, PMTPID: 0x100,
			ECM:     []ECMStream{{CAID: 0x0B00, PID: 0x200}},
			Streams: []Stream{{Type: 2, PID: 0x101}}}
		b = AppendCAPMT(b, 2, 0, &m)
		sid++
	}
	return b
}

// countWriter counts the bytes logged.
type countWriter struct {
	mu sync.Mutex
	n  int
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += len(p)
	w.mu.Unlock()
	return len(p), nil
}

// TestLogFloodBounded: a garbage flood (messages that each used to log a
// line, then bytes that are no message at all, over many connections)
// logs less than 0.1 byte per input byte.
func TestLogFloodBounded(t *testing.T) {
	var logged countWriter
	srv := NewServer(Options{Solver: &heldSolver{}, Log: slog.New(slog.NewTextHandler(&logged, nil))})
	noisy := floodChunk()
	var m CAPMT
	for sid := range uint16(200) {
		m = CAPMT{ListManagement: ListUpdate, Program: 0x4000 + sid, CmdID: CmdOKDescrambling}
		noisy = AppendCAPMT(noisy, 2, 0, &m) // update for an unknown programme
		m.ListManagement, m.CmdID = ListOnly, CmdQuery
		noisy = AppendCAPMT(noisy, 2, 0, &m) // query: not supported
	}
	garbage := append(append([]byte(nil), noisy...), bytes.Repeat([]byte{0xEE}, 4096)...)
	input := 0
	for range 200 {
		rw := &fuzzRW{r: bytes.NewReader(garbage), chunk: 4096, failAt: 1 << 30}
		c := newConn(srv, rw, srv.opt.Log.With("conn", 1, "peer", "127.0.0.1:1"), nil)
		srv.connLog.logTo(c.log, slog.LevelInfo, "client connected")
		if err := c.serve(); err == nil {
			t.Fatal("garbage accepted")
		}
		input += len(garbage)
	}
	ratio := float64(logged.n) / float64(input)
	t.Logf("%d input bytes, %d log bytes: %.4f log bytes per input byte", input, logged.n, ratio)
	if ratio >= 0.1 {
		t.Errorf("%.3f log bytes per input byte, want < 0.1", ratio)
	}
}

// TestConnectionCapAndHandshakeTimeout: 1,000 clients that connect and
// say nothing: at most MaxConns are served at once, the rest are refused,
// and the served ones are closed after the handshake timeout.
func TestConnectionCapAndHandshakeTimeout(t *testing.T) {
	srv := NewServer(Options{Solver: &heldSolver{}, HandshakeTimeout: 300 * time.Millisecond})
	addr, err := srv.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(t.Context())
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	most := 0
	for range 1000 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		most = max(most, srv.Conns())
	}
	// Every client is refused or timed out: it reads EOF or a reset.
	// Clients still in the listen backlog are reached as the accept loop
	// works through it, so each read may wait (bounded).
	refused := 0
	for _, c := range clients {
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard: the close comes after 300 ms
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			refused++
		}
		most = max(most, srv.Conns())
	}
	if most > DefaultMaxConns {
		t.Errorf("%d connections served at once, cap %d", most, DefaultMaxConns)
	}
	for hung := time.Now().Add(time.Minute); srv.Conns() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(hung) { // a hang guard: every client has already read its close
			t.Fatalf("hung: %d silent connections still open", srv.Conns())
		}
	}
	if refused != len(clients) {
		t.Errorf("%d of %d clients closed by the server", refused, len(clients))
	}
}
