package dvbapi

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recSolver records requests and answers each with cw, flagged NoECM as a
// constant-CW reader's answers are.
type recSolver struct {
	mu    sync.Mutex
	reqs  []ECMRequest
	cw    [16]byte
	noECM bool
	serve map[uint16]bool // AnswersWithoutECM by CAID
}

func (s *recSolver) Solve(r *ECMRequest) {
	s.mu.Lock()
	q := *r
	q.Data = append([]byte(nil), r.Data...)
	s.reqs = append(s.reqs, q)
	cw, noECM := s.cw, s.noECM
	s.mu.Unlock()
	r.Done.ECMAnswered(ECMAnswer{Tag: r.Tag, Result: Found, CW: cw, NoECM: noECM, Reader: "fixed"})
}

func (s *recSolver) AnswersWithoutECM(caid uint16, _ uint32) bool { return s.serve[caid] }

func (s *recSolver) requests() []ECMRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ECMRequest(nil), s.reqs...)
}

var _ NoECMServer = (*recSolver)(nil)

// decodeAll decodes every server message of b for a client of version.
func decodeAll(t *testing.T, b []byte, version int) []ServerMessage {
	t.Helper()
	var out []ServerMessage
	for len(b) > 0 {
		var m ServerMessage
		n, err := DecodeServerMessage(b, version, &m)
		if err != nil || n == 0 {
			t.Fatalf("decode v%d: n=%d err=%v in % X", version, n, err, b)
		}
		out = append(out, m)
		b = b[n:]
	}
	return out
}

func ops(ms []ServerMessage) (n map[uint32]int) {
	n = map[uint32]int{}
	for _, m := range ms {
		n[m.Op]++
	}
	return n
}

func capmt(version uint8, caid, ecmPID uint16) []byte {
	m := CAPMT{ListManagement: ListOnly, Program: 0x1234, Version: version, CmdID: CmdOKDescrambling, PMTPID: 0x100,
		ECM:     []ECMStream{{CAID: caid, PID: ecmPID}},
		Streams: []Stream{{Type: 0x02, PID: 0x101}, {Type: 0x04, PID: 0x102}}}
	return AppendCAPMT(nil, 2, 0, &m)
}

// TestProtocol0Client: a CA PMT with no CLIENT_INFO after the grace gets
// its filter, PIDs and CWs in the protocol-0 layout; another connection
// of the same server speaks its own version meanwhile (no global version).
func TestProtocol0Client(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sol := &fixedSolver{cws: [][16]byte{examplePair(cwEven, cwOdd)}}
		legacy := testConn(t, sol)
		modern := newConn(legacy.srv, nopRWC{}, legacy.srv.opt.Log, nil)
		legacy.feed(t, h(exampleCAPMT))
		modern.feed(t, h("FF FF 00 01 00 03 07 456E69676D6132"))
		if b := legacy.take(); len(b) != 0 {
			t.Fatalf("output before the grace: % X", b)
		}
		time.Sleep(legacy.srv.opt.Protocol0Grace + time.Millisecond)
		synctest.Wait()
		ms := decodeAll(t, legacy.take(), 0)
		if len(ms) != 1 || ms[0].Op != OpDmxSetFilter || ms[0].Filter.PID != 0x200 || ms[0].Filter.Timeout != 3000 {
			t.Fatalf("protocol-0 filter: %+v", ms)
		}
		legacy.feed(t, append(h("FF FF 00 00 00 00"), exampleECM(0x80)...))
		got := ops(decodeAll(t, legacy.take(), 0))
		if got[OpCASetPID] != 2 || got[OpCASetDescr] != 2 || got[OpECMInfo] != 0 || got[OpDmxSetFilter] != 1 {
			t.Errorf("protocol-0 answer: %v", got)
		}
		if ms := decodeAll(t, modern.take(), 3); len(ms) != 1 || ms[0].Op != OpServerInfo || !ms[0].Framed {
			t.Errorf("protocol-3 connection: %+v", ms)
		}
		legacy.close(nil)
	})
}

// TestBISSSolvedFromCAPMT: BISS with ECM PID 1FFF, with an empty ECM PID
// and with a PID that never carries an ECM is asked at once from the CA
// PMT (no filter), and again when the PMT version changes.
func TestBISSSolvedFromCAPMT(t *testing.T) {
	for _, tc := range []struct {
		name string
		caid uint16
		pid  uint16
	}{{"1FFF", 0x2600, 0x1FFF}, {"empty", 0x2602, 0}, {"pid-without-ecm", 0x2600, 0x0500}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sol := &recSolver{cw: examplePair(cwEven, cwOdd), noECM: true}
				c := testConn(t, sol)
				c.feed(t, h("FF FF 00 01 00 02 00"))
				c.take()
				c.feed(t, capmt(0, tc.caid, tc.pid))
				synctest.Wait()
				reqs := sol.requests()
				wantPID := tc.pid
				if wantPID == 0 {
					wantPID = NoECMPID
				}
				if len(reqs) != 1 || reqs[0].CAID != tc.caid || reqs[0].PID != wantPID || reqs[0].SID != 0x1234 ||
					reqs[0].PMTPID != 0x100 || reqs[0].VPID != 0x101 || reqs[0].Data[0] != 0x80 {
					t.Fatalf("requests %+v", reqs)
				}
				got := ops(decodeAll(t, c.take(), 2))
				if got[OpDmxSetFilter] != 0 || got[OpCASetPID] != 2 || got[OpCASetDescr] != 2 {
					t.Errorf("first answer: %v", got)
				}
				c.feed(t, capmt(0, tc.caid, tc.pid)) // same PMT: nothing to do
				synctest.Wait()
				if n := len(sol.requests()); n != 1 {
					t.Errorf("unchanged PMT asked again (%d requests)", n)
				}
				c.feed(t, capmt(1, tc.caid, tc.pid)) // PMT version changed
				synctest.Wait()
				if n := len(sol.requests()); n != 2 {
					t.Errorf("changed PMT: %d requests, want 2", n)
				}
				if got := ops(decodeAll(t, c.take(), 2)); got[OpCASetDescr] != 2 {
					t.Errorf("changed PMT: %v, want both halves again", got)
				}
				c.close(nil)
			})
		})
	}
}

// TestNoECMDescriptorNeedsAReader: a non-BISS CA descriptor without an
// ECM PID (enigma2's stand-in) is free-to-air unless a reader answers
// that CAID without ECMs.
func TestNoECMDescriptorNeedsAReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sol := &recSolver{cw: examplePair(cwEven, cwOdd), noECM: true, serve: map[uint16]bool{0x0B01: true}}
		c := testConn(t, sol)
		c.feed(t, h("FF FF 00 01 00 02 00"))
		c.feed(t, capmt(0, 0x0B00, NoECMPID))
		synctest.Wait()
		if n := len(sol.requests()); n != 0 {
			t.Errorf("0B00 without ECM PID asked (%d); no reader answers it without ECMs", n)
		}
		c.feed(t, capmt(0, 0x0B01, NoECMPID))
		synctest.Wait()
		if r := sol.requests(); len(r) != 1 || r[0].CAID != 0x0B01 {
			t.Errorf("0B01 requests %+v", r)
		}
		c.close(nil)
	})
}

// TestConstantCWResent: answers of a reader that ignores ECMs are
// re-sent in full on every new ECM (tvheadend's key expiry), unless
// ConstantCWOnce asks for OSCam's changed-halves-only behaviour.
func TestConstantCWResent(t *testing.T) {
	for _, once := range []bool{false, true} {
		sol := &recSolver{cw: examplePair(cwEven, cwOdd), noECM: true}
		srv := NewServer(Options{Solver: sol, ConstantCWOnce: once})
		c := newConn(srv, nopRWC{}, srv.opt.Log, nil)
		c.feed(t, h("FF FF 00 01 00 02 00"))
		c.feed(t, capmt(0, 0x0B00, 0x200))
		c.feed(t, append(h("FF FF 00 00 00 00"), exampleECM(0x80)...))
		c.take()
		c.feed(t, append(h("FF FF 00 00 00 00"), exampleECM(0x81)...))
		want := 2
		if once {
			want = 0
		}
		if got := ops(decodeAll(t, c.take(), 2)); got[OpCASetDescr] != want {
			t.Errorf("once=%v: %d CA_SET_DESCR for the same CW, want %d", once, got[OpCASetDescr], want)
		}
		c.close(nil)
	}
}

// TestProtocol0RoundTrip: the protocol-0 encoders and decoder agree.
func TestProtocol0RoundTrip(t *testing.T) {
	f := Filter{Adapter: 1, Demux: 2, Num: 3, PID: 0x1234, Timeout: 3000, Flags: 4}
	f.Filter[0], f.Mask[0] = 0x80, 0xF0
	var b []byte
	b = AppendSetFilter(b, 0, 9, &f)
	b = AppendDmxStop(b, 0, 9, 1, 2, 3, 0x1234)
	b = AppendSetPID(b, 0, 9, 1, 0x101, -1)
	b = AppendSetDescr(b, 0, 9, 1, 4, 1, cwOdd)
	if len(b) != dmxSetFilterLen0+dmxStopLen0+caSetPIDLen0+caSetDescrLen0 || b[0] != 1 {
		t.Fatalf("% X", b)
	}
	ms := decodeAll(t, b, 0)
	if len(ms) != 4 || ms[0].Filter != f || ms[1].Filter.PID != 0x1234 || b[dmxSetFilterLen0+7] != 0x12 ||
		ms[2].PID != 0x101 || ms[2].Index != -1 || ms[3].Parity != 1 || ms[3].CW != [8]byte(cwOdd) {
		t.Errorf("%+v", ms)
	}
}
