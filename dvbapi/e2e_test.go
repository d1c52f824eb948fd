package dvbapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/dvbapi"
	"satd.dev/satd/dvbapi/testecm"
	"satd.dev/satd/dvbapi/zap"
)

func testServer(t *testing.T, log io.Writer) *dvbapi.Server {
	t.Helper()
	if log == nil {
		log = io.Discard
	}
	s := dvbapi.NewServer(dvbapi.Options{
		Solver:        &testecm.Solver{Fail: map[uint16]bool{0x0500: true}},
		Log:           slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo})),
		ServerName:    "satd test",
		FilterTimeout: time.Second, AnswerTimeout: time.Second, RetryMin: 200 * time.Millisecond,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// tcpServer is testServer listening on a loopback port; it returns the
// address.
func tcpServer(t *testing.T, log io.Writer) (*dvbapi.Server, string) {
	t.Helper()
	s := testServer(t, log)
	addr, err := s.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return s, addr.String()
}

func loadScenario(t *testing.T, name string) *zap.Scenario {
	t.Helper()
	sc, err := zap.Load(filepath.Join("..", "testdata", "zap", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// zapPatience turns the scenarios' deadlines (SERVER_INFO, cw_deadline,
// cleanup) into hang guards: on a loaded machine an answer may take
// seconds, which the report gives as a figure (first_cw, max_latency).
const zapPatience = time.Minute

func runZap(t *testing.T, sc *zap.Scenario, c zap.Connector) *zap.Report {
	t.Helper()
	sc.Patience = zapPatience
	// A hang guard: the longest scenario holds for 9 s, plus the patience.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := zap.Run(ctx, sc, c)
	if err != nil {
		t.Fatalf("zap: %v", err)
	}
	var b bytes.Buffer
	rep.Print(&b)
	t.Logf("zap report:\n%s", b.String())
	return rep
}

func checkReport(t *testing.T, rep *zap.Report) {
	t.Helper()
	if !rep.OK() {
		t.Errorf("zap run failed (see report)")
	}
	for _, s := range rep.Services {
		if s.ECMs < 2 {
			t.Errorf("%s: only %d new ECMs delivered; no parity change exercised", s.Name, s.ECMs)
		}
	}
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run takes seconds")
	}
}

// TestZapProtocol2TCP plays a tvheadend-style client over TCP: zapping,
// parity changes, a CA PMT update, a second programme, not_selected, stop,
// and the move to the next ECM PID when a CAID is not served.
func TestZapProtocol2TCP(t *testing.T) {
	skipShort(t)
	_, addr := tcpServer(t, nil)
	rep := runZap(t, loadScenario(t, "tvheadend.toml"), zap.Dial("tcp", addr))
	checkReport(t, rep)
	for _, r := range rep.Services {
		if r.Name == "fallback" && r.CAID != 0x0B00 {
			t.Errorf("fallback service descrambled with CAID %04X, want the second ECM PID's 0B00", r.CAID)
		}
	}
}

// TestZapProtocol3ListenSocket plays enigma2's listen socket that satd
// connects to, in both handshake orders (OpenPLi: CLIENT_INFO first;
// OpenATV: unframed CA PMT first), including a disconnect and reconnect.
func TestZapProtocol3ListenSocket(t *testing.T) {
	skipShort(t)
	for _, order := range []string{"client_info_first", "capmt_first"} {
		t.Run(order, func(t *testing.T) {
			s := testServer(t, nil)
			path := filepath.Join(t.TempDir(), ".listen.camd.socket")
			conn, closeFn, err := zap.ListenUnix(path)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			s.Connect(path, 100*time.Millisecond)
			sc := loadScenario(t, "enigma2.toml")
			sc.Handshake = order
			checkReport(t, runZap(t, sc, conn))
		})
	}
}

// TestZapTwoClientsAndGarbage runs two clients at once on the TCP port
// while a third connection sends random bytes: the garbage connection is
// closed and the others keep getting their CWs.
func TestZapTwoClientsAndGarbage(t *testing.T) {
	skipShort(t)
	var logs syncBuffer
	_, addr := tcpServer(t, &logs)
	sc := loadScenario(t, "tvheadend.toml")
	sc.Patience = zapPatience
	var wg sync.WaitGroup
	reps := make([]*zap.Report, 2)
	for i := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
			defer cancel()
			rep, err := zap.Run(ctx, sc, zap.Dial("tcp", addr))
			if err != nil {
				t.Errorf("zap %d: %v", i, err)
				return
			}
			reps[i] = rep
		}()
	}
	garbageClosed := make(chan struct{})
	go func() {
		defer close(garbageClosed)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 512)
		for i := 0; i < 200; i++ {
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
			if _, err := c.Write(buf); err != nil {
				return // closed by the server: expected
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard: the server closes it
		io.Copy(io.Discard, c)
	}()
	wg.Wait()
	<-garbageClosed
	for i, rep := range reps {
		if rep == nil {
			continue
		}
		var b bytes.Buffer
		rep.Print(&b)
		t.Logf("client %d:\n%s", i, b.String())
		checkReport(t, rep)
	}
	if !bytes.Contains(logs.Bytes(), []byte("malformed input")) || !bytes.Contains(logs.Bytes(), []byte("offset=")) {
		t.Errorf("no malformed-input log naming the offset; log:\n%s", logs.Bytes())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
