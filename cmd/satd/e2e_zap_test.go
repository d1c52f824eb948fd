package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/dvbapi"
	"satd.dev/satd/dvbapi/zap"
	"satd.dev/satd/hal/haltest"
)

// e2eDaemon is satd's readers, balancer and dvbapi components running
// in-process on a temporary configuration, as `satd` runs them.
type e2eDaemon struct {
	d       *daemon
	tcp     string // dvbapi TCP address
	socket  string // dvbapi Unix socket
	connect string // enigma2 listen socket satd connects to
	cards   map[string]*haltest.Card
}

// e2eConfig is the daemon configuration of the end-to-end tests: the
// given readers, dvbapi on loopback TCP (port 0: startE2E reads the port
// bound), a Unix socket and the enigma2 listen socket, all under dir.
func e2eConfig(t *testing.T, dir string, readers ...config.Reader) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Global.StateDir = dir
	cfg.Readers = readers
	cfg.DVBAPI.Listen = "127.0.0.1:0"
	cfg.DVBAPI.Socket = filepath.Join(dir, "camd.socket")
	cfg.DVBAPI.Connect = filepath.Join(dir, "listen.camd.socket")
	cfg.DVBAPI.ECMInfo = filepath.Join(dir, "ecm.info")
	cfg.DVBAPI.FilterTimeout = config.Duration(time.Second)
	cfg.DVBAPI.AnswerTimeout = config.Duration(2 * time.Second)
	cfg.DVBAPI.RetryMax = config.Duration(2 * time.Second)
	return cfg
}

func simReader(label, sys string) config.Reader {
	r := readerCfg(label, "sim")
	r.System = sys
	return r
}

// constcwReader reads the rules of testdata/zap/satd.cw.
func constcwReader(t *testing.T, label string) config.Reader {
	r := readerCfg(label, "constcw")
	abs, err := filepath.Abs(filepath.Join("..", "..", "testdata", "zap", "satd.cw"))
	if err != nil {
		t.Fatal(err)
	}
	r.Device = abs
	return r
}

// startE2E starts readers, balancer and dvbapi on cfg and waits for every
// reader to be ready. Sim readers named in removable get a card whose
// removal the test controls.
func startE2E(t *testing.T, cfg *config.Config, removable ...string) *e2eDaemon {
	t.Helper()
	logs, err := newLogging(cfg.Log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2eDaemon{d: &daemon{log: logs, cfg: cfg}, socket: cfg.DVBAPI.Socket,
		connect: cfg.DVBAPI.Connect, cards: map[string]*haltest.Card{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if code := e.d.stop(logs.component("main")); code != 0 {
			t.Errorf("stop exit code %d", code)
		}
	})
	for _, s := range []componentSpec{{"readers", 10, buildReaders}, {"balancer", 20, buildBalancer}, {"dvbapi", 40, buildDVBAPI}} {
		c, err := s.build(env{cfg: cfg, log: logs.component(s.name), daemon: e.d})
		if err != nil {
			t.Fatalf("build %s: %v", s.name, err)
		}
		if rc, ok := c.(*readersComponent); ok {
			e.makeRemovable(t, rc, removable)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", s.name, err)
		}
		e.d.addPart(s.name, c)
	}
	if e.tcp = e.d.dvbapiPart().TCPAddr(); e.tcp == "" {
		t.Fatal("dvbapi bound no TCP address")
	}
	// Components built after this point (the demo receiver) dial the
	// configured address: give them the one bound.
	cfg.DVBAPI.Listen = e.tcp
	for _, r := range cfg.Readers {
		waitReady(t, e.d, r.Label)
	}
	return e
}

// makeRemovable gives the test the card side of the named sim readers'
// virtual slots, so it can pull their cards.
func (e *e2eDaemon) makeRemovable(t *testing.T, rc *readersComponent, labels []string) {
	t.Helper()
	for _, label := range labels {
		for _, u := range rc.units {
			if src, ok := u.source().(*cardSource); ok && u.cfg.Label == label && src.simCard() != nil {
				e.cards[label] = src.simCard()
			}
		}
		if e.cards[label] == nil {
			t.Fatalf("no sim reader %s", label)
		}
	}
}

func loadSatdScenario(t *testing.T, name string) *zap.Scenario {
	t.Helper()
	sc, err := zap.Load(filepath.Join("..", "..", "testdata", "zap", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// playZap runs sc and fails the test on a violation or failed service.
// zapPatience turns the scenarios' deadlines (SERVER_INFO, cw_deadline,
// cleanup) into hang guards: on a loaded machine an answer may take
// seconds, which the report gives as a figure (first_cw, max_latency).
const zapPatience = time.Minute

func playZap(t *testing.T, label string, sc *zap.Scenario, c zap.Connector) *zap.Report {
	t.Helper()
	sc.Patience = zapPatience
	// A hang guard: the longest scenario holds for 14 s, plus the patience.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := zap.Run(ctx, sc, c)
	var b bytes.Buffer
	if rep != nil {
		rep.Print(&b)
	}
	t.Logf("%s zap report:\n%s", label, b.String())
	if err != nil {
		t.Errorf("%s: zap: %v", label, err)
		return rep
	}
	if !rep.OK() {
		t.Errorf("%s: zap run failed (see report)", label)
	}
	return rep
}

// checkServed checks that every service saw parity changes (but BISS
// services, which have no ECMs) and was answered by the expected reader.
func checkServed(t *testing.T, label string, sc *zap.Scenario, rep *zap.Report, readers map[string]string) {
	t.Helper()
	biss := map[string]bool{}
	for _, d := range sc.Services {
		biss[d.Name] = len(d.ECM) > 0 && dvbapi.IsBISS(d.ECM[0].CAID)
	}
	for _, s := range rep.Services {
		if biss[s.Name] {
			if s.ECMs != 0 || s.CWs == 0 {
				t.Errorf("%s: %s (BISS): %d ECMs asked for, %d CWs; want none and a CW from the CA PMT", label, s.Name, s.ECMs, s.CWs)
			}
		} else if s.ECMs < 2 {
			t.Errorf("%s: %s: only %d new ECMs delivered; no parity change exercised", label, s.Name, s.ECMs)
		}
		if want, ok := readers[s.Name]; ok && s.Reader != want {
			t.Errorf("%s: %s answered by reader %q, want %q", label, s.Name, s.Reader, want)
		}
	}
}

func skipE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end zap runs take seconds")
	}
}

// TestZapAgainstSatd plays tvheadend (protocol 2 over TCP) and enigma2
// (protocol 3 on the listen socket satd connects to, both handshake
// orders) against satd with simulated Conax and Seca cards and the
// constant-CW reader. The tvheadend run and a second client on the Unix
// socket run at once; the enigma2 runs follow on the same daemon.
func TestZapAgainstSatd(t *testing.T) {
	skipE2E(t)
	dir := t.TempDir()
	e := startE2E(t, e2eConfig(t, dir, simReader("conax-sim", "conax"), simReader("seca-sim", "seca"), constcwReader(t, "fixed")))
	served := map[string]string{"conax-news": "conax-sim", "seca-movies": "seca-sim", "seca-pip": "seca-sim",
		"fallback": "conax-sim", "constcw-one": "fixed", "constcw-two": "fixed"}

	t.Run("tvheadend-tcp-and-unix-at-once", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, tc := range []struct{ name, network, addr string }{{"tcp", "tcp", e.tcp}, {"unix", "unix", e.socket}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := loadSatdScenario(t, "satd-tvheadend.toml")
				rep := playZap(t, tc.name, sc, zap.Dial(tc.network, tc.addr))
				if rep != nil {
					checkServed(t, tc.name, sc, rep, served)
				}
			}()
		}
		wg.Wait()
	})
	for _, order := range []string{"client_info_first", "capmt_first"} {
		t.Run("enigma2-"+order, func(t *testing.T) {
			sc := loadSatdScenario(t, "satd-enigma2.toml")
			sc.Handshake = order
			conn, closeFn, err := zap.ListenUnix(e.connect)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			rep := playZap(t, order, sc, conn)
			if rep != nil {
				checkServed(t, order, sc, rep, served)
				if rep.Version != 3 {
					t.Errorf("SERVER_INFO announced protocol %d, want 3", rep.Version)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ecm.info")); err == nil {
		t.Errorf("ecm.info left behind after every client stopped")
	}
}

// TestZapCardRemovedMidService pulls the card that answers a running
// service; the service must keep getting its CWs from the other Conax
// card.
func TestZapCardRemovedMidService(t *testing.T) {
	skipE2E(t)
	e := startE2E(t, e2eConfig(t, t.TempDir(), simReader("conax-a", "conax"), simReader("conax-b", "conax")), "conax-a", "conax-b")
	sc := loadSatdScenario(t, "satd-failover.toml")
	var (
		mu      sync.Mutex
		removed string
	)
	first := make(chan string, 1)
	sc.Observe = func(ev zap.Event) { first <- ev.Reader }
	go func() {
		r := <-first
		time.Sleep(2 * time.Second) // let a few crypto periods pass on it
		mu.Lock()
		defer mu.Unlock()
		if c := e.cards[r]; c != nil {
			c.Remove()
			removed = r
		}
	}()
	rep := playZap(t, "failover", sc, zap.Dial("tcp", e.tcp))
	mu.Lock()
	defer mu.Unlock()
	if removed == "" {
		t.Fatalf("no card was removed (first reader unknown)")
	}
	other := map[string]string{"conax-a": "conax-b", "conax-b": "conax-a"}[removed]
	s := rep.Services[0]
	if s.Reader != other {
		t.Errorf("after removing %s the last CW came from %q, want %s", removed, s.Reader, other)
	}
	if s.CWs < 8 {
		t.Errorf("only %d CWs over the run: the service did not keep descrambling", s.CWs)
	}
	for _, st := range e.d.readers() {
		if st.Label == removed && st.State == "ready" {
			t.Errorf("reader %s still ready after its card was removed: %+v", removed, st)
		}
	}
	t.Log(fmt.Sprintf("removed %s, service continued on %s", removed, s.Reader))
}

// startIssue15 runs satd with one constant-CW reader on a private copy of
// testdata/zap/issue15.cw (scenarios may replace its rules) and returns
// the daemon and the copy's path.
func startIssue15(t *testing.T) (*e2eDaemon, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "zap", "issue15.cw"))
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "issue15.cw")
	if err := os.WriteFile(rules, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := readerCfg("fixed", "constcw")
	r.Device = rules
	return startE2E(t, e2eConfig(t, dir, r)), rules
}

// issue15Scenario loads a scenario and points its constcw rules at the
// daemon's copy.
func issue15Scenario(t *testing.T, name, rules string) *zap.Scenario {
	t.Helper()
	sc := loadSatdScenario(t, name)
	sc.ConstCW = rules
	return sc
}

// TestZapConstCWAndBISS plays the issue-15 scenarios against satd with a
// constant-CW reader: BISS with ECM PID 1FFF and an empty ECM PID,
// constant.cw lines chosen by PMT PID and by ECM PID, identical ECMs on
// two services, a protocol-0 client, a reader whose CW changes under an
// unchanged ECM, and 256 programmes from eight clients at once with no
// ECM PID ever failed.
func TestZapConstCWAndBISS(t *testing.T) {
	skipE2E(t)
	e, rules := startIssue15(t)
	for _, tc := range []struct{ name, file string }{
		{"biss", "satd-biss.toml"},
		{"constcw-rules", "satd-constcw-rules.toml"},
		{"protocol0", "satd-protocol0.toml"},
		{"cache-expiry", "satd-cache-expiry.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := issue15Scenario(t, tc.file, rules)
			rep := playZap(t, tc.name, sc, zap.Dial("tcp", e.tcp))
			if rep != nil {
				checkServed(t, tc.name, sc, rep, nil)
			}
		})
	}
	t.Run("256-programmes", func(t *testing.T) {
		before := e.d.balancer().Counters()
		var wg sync.WaitGroup
		for i := range 8 {
			network, addr := "tcp", e.tcp
			if i%2 == 1 {
				network, addr = "unix", e.socket
			}
			wg.Go(func() {
				sc := issue15Scenario(t, "satd-256.toml", rules)
				for k := range sc.Services {
					sc.Services[k].Demux = uint8(k) // one demux per programme, as tvheadend numbers them
				}
				playZap(t, fmt.Sprintf("client%d", i), sc, zap.Dial(network, addr))
			})
		}
		wg.Wait()
		after := e.d.balancer().Counters()
		// Not found or timed out is what marks an ECM PID failed.
		if n, m := after.NotFound-before.NotFound, after.Timeouts-before.Timeouts; n+m != 0 {
			t.Errorf("%d ECMs answered not found, %d timed out (a busy reader must not fail an ECM PID)", n, m)
		}
		t.Logf("256 programmes: %d ECMs, %d queue-full retries, %d timeouts", after.ECMs-before.ECMs,
			after.QueueFull-before.QueueFull, after.Timeouts-before.Timeouts)
	})
}
