package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cmd/satd/config"
)

type answers chan balancer.Answer

func (a answers) ECMAnswered(x balancer.Answer) { a <- x }

// startReadersAndBalancer builds and starts the readers and balancer
// components on cfg, as daemon.start does.
func startReadersAndBalancer(t *testing.T, ctx context.Context, cfg *config.Config) *daemon {
	t.Helper()
	logs, err := newLogging(cfg.Log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: logs, cfg: cfg}
	for _, s := range []componentSpec{{"readers", 10, buildReaders}, {"balancer", 20, buildBalancer}} {
		c, err := s.build(env{cfg: cfg, log: logs.component(s.name), daemon: d})
		if err != nil {
			t.Fatalf("build %s: %v", s.name, err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", s.name, err)
		}
		d.addPart(s.name, c)
	}
	return d
}

func readerCfg(label, protocol string) config.Reader {
	r := config.DefaultReader()
	r.Label, r.Protocol = label, protocol
	return r
}

// waitReady waits until the labelled reader is ready and the balancer
// sees it so: a card turns ready before its watcher publishes the card
// system to the balancer, and an ECM in between is not sent to it.
func waitReady(t *testing.T, d *daemon, label string) ReaderStatus {
	t.Helper()
	for range 600 {
		for _, s := range d.readers() {
			if s.Label == label && s.State == "ready" && balancerSees(d, label) {
				return s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("reader %s not ready: %+v", label, d.readers())
	return ReaderStatus{}
}

// balancerSees reports whether the balancer sees the labelled reader
// present (or the daemon has no readers component to ask).
func balancerSees(d *daemon, label string) bool {
	rc, ok := part[*readersComponent](d)
	if !ok {
		return true
	}
	for _, u := range rc.units {
		if u.cfg.Label == label {
			return u.Status().Present
		}
	}
	return false
}

// TestReadersFeedBalancer starts the readers and balancer components with
// a constant-CW reader and a simulated Conax card and gets CWs for ECMs
// through the balancer.
func TestReadersFeedBalancer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cw := "2600:0:0001:0:0::01 02 03 06 05 06 07 12 09 0A 0B 1E 0D 0E 0F 2A\n"
		if err := os.WriteFile(filepath.Join(dir, "fixed.cw"), []byte(cw), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Global.StateDir = dir
		cfg.Readers = []config.Reader{readerCfg("fixed", "constcw"), readerCfg("conax-sim", "sim")}
		ctx, cancel := context.WithCancel(context.Background())
		d := startReadersAndBalancer(t, ctx, cfg)
		defer func() {
			cancel()
			if code := d.stop(d.log.component("main")); code != 0 {
				t.Errorf("stop exit code %d", code)
			}
		}()
		st := waitReady(t, d, "conax-sim")
		if st.System != "conax" || len(st.CAIDs) != 1 || st.CAIDs[0] != 0x0B00 || st.Serial == "" || len(st.Subscriptions) == 0 {
			t.Errorf("conax status %+v", st)
		}
		waitReady(t, d, "fixed")
		ecm := []byte{0x80, 0x70, 0x10}
		for i := range 16 {
			ecm = append(ecm, byte(i*13))
		}
		tests := []struct {
			name   string
			caid   uint16
			reader string
			want   [16]byte
		}{
			{"conax card", 0x0B00, "conax-sim", personality.ExpectedCW("conax", ecm)},
			{"constant cw", 0x2600, "fixed", [16]byte{1, 2, 3, 6, 5, 6, 7, 0x12, 9, 10, 11, 0x1E, 13, 14, 15, 0x2A}},
		}
		for _, tc := range tests {
			got := make(answers, 1)
			if err := d.balancer().Submit(&balancer.ECM{CAID: tc.caid, SrvID: 1, Len: uint16(len(ecm)), Data: ecm, Client: got}); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-got:
				if a.Result != balancer.Found || a.CW != tc.want || a.Reader != d.balancer().ReaderIndex(tc.reader) {
					t.Errorf("%s: answer %+v, want CW % X from %s", tc.name, a, tc.want, tc.reader)
				}
			case <-time.After(time.Minute): // a hang guard: the answer takes milliseconds
				t.Fatalf("hung: %s: no answer", tc.name)
			}
		}
		// A CAID no reader holds is not found.
		got := make(answers, 1)
		d.balancer().Submit(&balancer.ECM{CAID: 0x0100, SrvID: 1, Len: uint16(len(ecm)), Data: ecm, Client: got})
		if a := <-got; a.Result == balancer.Found {
			t.Errorf("CAID 0100 answered %+v", a)
		}
		var found uint64
		for _, s := range d.readers() {
			found += s.Found
		}
		if found != 2 {
			t.Errorf("readers counted %d found answers, want 2: %+v", found, d.readers())
		}
	})
}

// TestSimReaderNeedsSystemPrefix checks how a sim reader picks its card
// system: the system key, else the label prefix, else an error.
func TestSimReaderNeedsSystemPrefix(t *testing.T) {
	cfg := config.Default()
	cfg.Readers = []config.Reader{readerCfg("card1", "sim")}
	_, err := buildReaders(env{cfg: cfg})
	if err == nil || !strings.Contains(err.Error(), "set system = one of conax") {
		t.Errorf("got %v", err)
	}
	cfg.Readers[0].System = "seca"
	if _, err := buildReaders(env{cfg: cfg}); err != nil {
		t.Errorf("system = seca: %v", err)
	}
}
