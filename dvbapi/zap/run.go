package zap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"time"

	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/constcw"
	"satd.dev/satd/dvbapi"
	"satd.dev/satd/dvbapi/testecm"
)

// Connector opens the connection to the server: a dial for TCP or
// /tmp/camd.socket, an accept for an enigma2-style listen socket.
type Connector func(ctx context.Context) (net.Conn, error)

// Result is one service's outcome.
type Result struct {
	Name        string
	Expect      bool
	Zaps        int           // times the service was started
	ECMs        int           // new-period ECMs delivered
	CWs         int           // ECMs whose CWs arrived
	Late        int           // CWs later than cw_deadline
	Wrong       int           // CWs that differ from the derived ones
	FirstCW     time.Duration // worst zap → first CW
	MaxLatency  time.Duration // worst ECM → CW
	CAID, PID   uint16        // from the last ECM_INFO
	Reader      string
	ECMTime     time.Duration // from the last ECM_INFO
	Unstable    int           // CW changes while the ECM repeated
	CleanupFail int           // stops without DMX_STOP / CA_SET_PID -1 in time
}

// Event is the first ECM_INFO of a service after it was started: which
// reader answered, how fast, and how long the zap took to its first CW.
type Event struct {
	Service string
	CAID    uint16
	PID     uint16
	Reader  string
	System  string
	ECMTime time.Duration // the server's ECM time
	Zap     time.Duration // zap to ECM_INFO, as zap measured it
}

// OK reports whether the service met the scenario's expectations.
func (r *Result) OK() bool {
	if !r.Expect {
		return r.CWs == 0 && r.CleanupFail == 0
	}
	return r.Zaps > 0 && r.CWs > 0 && r.Late == 0 && r.Wrong == 0 && r.Unstable == 0 && r.CleanupFail == 0
}

// Report is the outcome of a run.
type Report struct {
	Server     string
	Version    uint16
	Services   []*Result
	Violations []string
}

// OK reports a run without protocol violations and with every service OK.
func (r *Report) OK() bool {
	if len(r.Violations) > 0 {
		return false
	}
	for _, s := range r.Services {
		if !s.OK() {
			return false
		}
	}
	return true
}

// Print writes the human-readable report.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "server: %q (protocol %d)\n", r.Server, r.Version)
	for _, s := range r.Services {
		status := "ok"
		if !s.OK() {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%-4s %-14s zaps=%d ecms=%d cws=%d late=%d wrong=%d unstable=%d first_cw=%s max_latency=%s caid=%04X pid=%04X reader=%q ecm_time=%s cleanup_fail=%d expect_cw=%v\n",
			status, s.Name, s.Zaps, s.ECMs, s.CWs, s.Late, s.Wrong, s.Unstable, s.FirstCW.Round(time.Millisecond), s.MaxLatency.Round(time.Millisecond),
			s.CAID, s.PID, s.Reader, s.ECMTime, s.CleanupFail, s.Expect)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "VIOLATION %s\n", v)
	}
}

type filterKey struct{ demux, num uint8 }

type filterState struct {
	f   dvbapi.Filter
	svc *svcState
	// sent has bit p set once a section of parity p (table 0x80|p) was
	// delivered on the filter: what the server can have seen before it
	// sets the filter again.
	sent uint8
}

type pending struct {
	at      time.Time
	cw      [16]byte // the expected pair when exact
	exact   bool
	prev    [16]byte // "any": the pair confirmed for the previous ECM
	hasPrev bool
	infos   int // "any": ECM_INFOs of the service when the ECM was sent
	writes  int // "any", protocol 1: CA_SET_DESCRs when the ECM was sent
	first   bool
	late    bool
	period  uint32
	zap     bool // set at the zap, before any ECM: needs a CA_SET_DESCR after it
}

type svcState struct {
	def      *Service
	res      *Result
	active   bool
	msgid    uint32 // msgid its CA PMT carried
	version  uint8  // CA PMT version; an update with new PIDs bumps it
	pids     []uint16
	startAt  time.Time
	lastSent uint32 // last period delivered
	sentAny  bool
	wait     *pending
	stopAt   time.Time // cleanup deadline running when non-zero

	confirmed    [16]byte // pair accepted for the current ECM
	hasConfirmed bool
	infos        int  // ECM_INFOs received since the start
	announced    bool // Event delivered for this start
}

type runner struct {
	sc       *Scenario
	connect  Connector
	conn     net.Conn
	version  int
	msgs     chan msgOrErr
	report   Report
	svcs     map[string]*svcState
	order    []*svcState
	filters  map[filterKey]*filterState
	pidIndex map[uint16]int32
	descr    map[int32]*[2][8]byte
	t0       time.Time
	gotInfo  bool
	rules    *constcw.File
	writes   int // CA_SET_DESCRs received
	sec      []byte
	// tick paces ECM deliveries across steps: steps shorter than the
	// ECM interval must not starve them.
	tick *time.Ticker
}

// ErrNoRelease is returned by Run for a step that holds until release in
// a scenario without a Release channel (it would hold forever).
var ErrNoRelease = errors.New("hold_until_release needs the scenario's Release channel")

type msgOrErr struct {
	m   dvbapi.ServerMessage
	err error
}

// Run plays the scenario and returns the report. The error is for
// failures to run at all (connection refused); protocol problems are
// violations in the report.
func Run(ctx context.Context, sc *Scenario, connect Connector) (*Report, error) {
	r := &runner{sc: sc, connect: connect, version: sc.Protocol, svcs: map[string]*svcState{}}
	if sc.ConstCW != "" {
		r.rules = constcw.Open(sc.ConstCW)
		if _, err := r.rules.Rules(); err != nil {
			return nil, fmt.Errorf("zap: %w", err)
		}
	}
	for i := range sc.Services {
		s := &svcState{def: &sc.Services[i], res: &Result{Name: sc.Services[i].Name, Expect: *sc.Services[i].ExpectCW}}
		r.svcs[s.def.Name] = s
		r.order = append(r.order, s)
		r.report.Services = append(r.report.Services, s.res)
	}
	r.t0 = time.Now()
	r.tick = time.NewTicker(time.Duration(sc.ECMInterval))
	defer r.tick.Stop()
	if err := r.open(ctx, sc.Steps); err != nil {
		return nil, err
	}
	defer func() { r.conn.Close() }()
	for i, st := range sc.Steps {
		if i == 0 && sc.Handshake == "capmt_first" {
			// already sent unframed before CLIENT_INFO
		} else if err := r.do(ctx, st); err != nil {
			return &r.report, err
		}
		if err := r.pump(ctx, time.Duration(st.Hold)); err != nil {
			return &r.report, err
		}
		if !st.HoldUntilRelease {
			continue
		}
		if sc.Release == nil {
			return &r.report, fmt.Errorf("zap: step[%d] %s: %w", i, st.Do, ErrNoRelease)
		}
		if err := r.pumpUntil(ctx, nil, sc.Release); err != nil {
			return &r.report, err
		}
	}
	r.stopAll()
	r.settle(ctx)
	r.finish()
	return &r.report, nil
}

// deadline is how long the run waits for something the scenario gives d:
// d itself, or Patience when that is longer.
func (r *runner) deadline(d time.Duration) time.Duration {
	return max(d, r.sc.Patience)
}

// settle runs the client after the final stop: for cw_deadline, or with
// Patience until every stopped service has cleaned up (at most Patience).
func (r *runner) settle(ctx context.Context) {
	if r.sc.Patience == 0 {
		r.pump(ctx, time.Duration(r.sc.CWDeadline))
		return
	}
	end := time.Now().Add(r.deadline(time.Duration(r.sc.CWDeadline)))
	for time.Now().Before(end) && !r.allCleanedUp() {
		if r.pump(ctx, r.sc.ECMInterval.Std()) != nil {
			return
		}
	}
}

// allCleanedUp reports whether every stopped service has cleaned up.
func (r *runner) allCleanedUp() bool {
	for _, s := range r.order {
		if !s.stopAt.IsZero() && !r.cleanedUp(s) {
			return false
		}
	}
	return true
}

func (r *runner) violation(format string, args ...any) {
	if len(r.report.Violations) < 100 {
		r.report.Violations = append(r.report.Violations, fmt.Sprintf(format, args...))
	}
}

// open connects and performs the handshake in the scenario's order.
func (r *runner) open(ctx context.Context, steps []Step) error {
	c, err := r.connect(ctx)
	if err != nil {
		return fmt.Errorf("zap: connect: %w", err)
	}
	r.conn = c
	r.filters = map[filterKey]*filterState{}
	r.pidIndex = map[uint16]int32{}
	r.descr = map[int32]*[2][8]byte{}
	r.gotInfo = false
	r.msgs = make(chan msgOrErr, 256)
	go readLoop(c, r.version, r.msgs)
	if r.sc.Handshake == "none" {
		return nil // protocol 0: no CLIENT_INFO, no SERVER_INFO
	}
	if r.sc.Handshake == "capmt_first" && len(steps) > 0 {
		saved := r.version
		r.version = 0 // legacy, unframed CA PMT list
		err := r.do(ctx, steps[0])
		r.version = saved
		if err != nil {
			return err
		}
	}
	if _, err := c.Write(dvbapi.AppendClientInfo(nil, uint16(r.sc.Protocol), r.sc.ClientName)); err != nil {
		return fmt.Errorf("zap: write CLIENT_INFO: %w", err)
	}
	wait := r.deadline(3 * time.Second)
	deadline := time.Now().Add(wait)
	for !r.gotInfo && time.Now().Before(deadline) {
		if err := r.pump(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if !r.gotInfo {
		r.violation("no SERVER_INFO within %s of CLIENT_INFO", wait)
	}
	return nil
}

func readLoop(c net.Conn, version int, out chan<- msgOrErr) {
	defer close(out)
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 16<<10)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for len(buf) > 0 {
			var m dvbapi.ServerMessage
			k, derr := dvbapi.DecodeServerMessage(buf, version, &m)
			if derr != nil {
				out <- msgOrErr{err: derr}
				return
			}
			if k == 0 {
				break
			}
			out <- msgOrErr{m: m}
			buf = buf[k:]
		}
		if len(buf) > 64<<10 {
			out <- msgOrErr{err: errors.New("server message larger than 64 KiB")}
			return
		}
		if err != nil {
			out <- msgOrErr{err: err}
			return
		}
	}
}

// do executes one scenario action.
func (r *runner) do(ctx context.Context, st Step) error {
	switch st.Do {
	case "wait":
		return nil
	case "set_constcw":
		b, err := os.ReadFile(st.File)
		if err != nil {
			return fmt.Errorf("zap: %w", err)
		}
		if err := os.WriteFile(r.sc.ConstCW, b, 0o644); err != nil {
			return fmt.Errorf("zap: %w", err)
		}
		return nil
	case "disconnect":
		r.conn.Close()
		for range r.msgs {
		}
		for _, s := range r.order {
			s.active, s.wait, s.stopAt = false, nil, time.Time{}
		}
		return r.open(ctx, nil)
	case "stop":
		demux := uint8(0xFF)
		if st.Service != "" {
			demux = r.svcs[st.Service].def.Demux
		}
		for _, s := range r.order {
			if s.active && (demux == 0xFF || s.def.Demux == demux) {
				r.stopping(s)
			}
		}
		return r.write(dvbapi.AppendCAStop(nil, r.version, 0, demux))
	}
	s := r.svcs[st.Service]
	switch st.Do {
	case "zap":
		for _, o := range r.order {
			if o != s && o.active {
				r.stopping(o)
			}
		}
		return r.sendPMT(s, dvbapi.ListOnly, dvbapi.CmdOKDescrambling)
	case "add":
		return r.sendPMT(s, dvbapi.ListAdd, dvbapi.CmdOKDescrambling)
	case "update":
		if st.PIDs != nil {
			s.pids = append([]uint16(nil), st.PIDs...)
		}
		s.version = (s.version + 1) & 0x1F
		if s.active && r.noECM(s) {
			// No ECM drives the CW: the server must answer the PMT change.
			s.wait = r.zapPending(s, false)
		}
		return r.sendPMT(s, dvbapi.ListUpdate, dvbapi.CmdOKDescrambling)
	case "not_selected":
		r.stopping(s)
		return r.sendPMT(s, dvbapi.ListUpdate, dvbapi.CmdNotSelected)
	}
	return nil
}

func (r *runner) stopping(s *svcState) {
	s.active, s.wait = false, nil
	s.stopAt = time.Now().Add(r.deadline(time.Duration(r.sc.CWDeadline)))
}

func (r *runner) sendPMT(s *svcState, lm, cmd uint8) error {
	d := s.def
	if cmd == dvbapi.CmdOKDescrambling && !s.active {
		s.active, s.startAt, s.sentAny, s.stopAt = true, time.Now(), false, time.Time{}
		s.hasConfirmed, s.announced = false, false
		s.res.Zaps++
		if s.pids == nil {
			s.pids = append([]uint16(nil), d.PIDs...)
		}
		// The zap itself must lead to a CW, even before (or without)
		// any ECM: a re-zap that gets no filter and no CW fails.
		s.wait = r.zapPending(s, true)
	}
	p := dvbapi.CAPMT{ListManagement: lm, Program: d.SID, CmdID: cmd, Adapter: d.Adapter, Demux: d.Demux,
		PMTPID: d.PMTPID, TSID: d.TSID, ONID: d.ONID, Version: s.version}
	for _, e := range d.ECM {
		p.ECM = append(p.ECM, dvbapi.ECMStream{CAID: e.CAID, PID: e.PID})
	}
	for _, pid := range s.pids {
		p.Streams = append(p.Streams, dvbapi.Stream{Type: 0x02, PID: pid})
	}
	s.msgid = 0
	if r.version >= 3 {
		s.msgid = d.MsgID
	}
	return r.write(dvbapi.AppendCAPMT(nil, r.version, s.msgid, &p))
}

// zapPending is the wait for a CW after a zap (first) or a PMT change of a
// service without ECMs: exact when the service has no ECM stream and its
// CW comes from the scenario's constcw rules.
func (r *runner) zapPending(s *svcState, first bool) *pending {
	w := &pending{at: time.Now(), first: first, zap: true, writes: r.writes, infos: s.infos}
	if r.noECM(s) && s.def.Verify == "constcw" && len(s.def.ECM) > 0 {
		e := s.def.ECM[0]
		pid := e.PID
		if pid == 0 {
			pid = dvbapi.NoECMPID
		}
		if cw, ok, err := r.expected(s, e.CAID, pid, nil); err == nil && ok {
			w.cw, w.exact = cw, true
		}
	}
	return w
}

// noECM reports whether no ECM stream drives the service's CW: BISS, or
// CA descriptors without an ECM PID.
func (r *runner) noECM(s *svcState) bool {
	for _, e := range s.def.ECM {
		if !dvbapi.IsBISS(e.CAID) && e.PID != 0 && e.PID != dvbapi.NoECMPID {
			return false
		}
	}
	return len(s.def.ECM) > 0
}

func (r *runner) write(b []byte) error {
	if _, err := r.conn.Write(b); err != nil {
		r.violation("write failed (server closed the connection?): %v", err)
		return fmt.Errorf("zap: %w", err)
	}
	return nil
}

// pump handles server messages and delivers ECMs for d.
func (r *runner) pump(ctx context.Context, d time.Duration) error {
	end := time.NewTimer(d)
	defer end.Stop()
	return r.pumpUntil(ctx, end.C, nil)
}

// pumpUntil runs the client (ECM deliveries, server messages) until end
// fires or release is closed; a nil channel never ends it.
func (r *runner) pumpUntil(ctx context.Context, end <-chan time.Time, release <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			return nil
		case <-release:
			return nil
		case <-r.tick.C:
			if err := r.deliver(); err != nil {
				return err
			}
			r.checkDeadlines()
		case me, ok := <-r.msgs:
			if !ok {
				r.violation("server closed the connection")
				return errors.New("zap: server closed the connection")
			}
			if me.err != nil {
				if !errors.Is(me.err, net.ErrClosed) {
					r.violation("read: %v", me.err)
				}
				return fmt.Errorf("zap: %w", me.err)
			}
			r.handle(&me.m)
		}
	}
}

func (r *runner) period() uint32 {
	return uint32(time.Since(r.t0) / time.Duration(r.sc.CryptoPeriod))
}

// rearmedToSeen reports whether f narrows to a parity that was the only
// one delivered on the filter it replaces (sent, see filterState): the
// server saw that parity and asks for it again instead of the other. When
// both parities went out before the new filter came (a slow server, or
// the open 0x80/0xF0 filter across a parity flip), re-arming to either
// answers a section the server did see, so it is no violation.
func rearmedToSeen(f dvbapi.Filter, sent uint8) bool {
	if f.Mask[0] != 0xFF || f.Filter[0]&0xFE != 0x80 {
		return false
	}
	p := f.Filter[0] & 1
	return sent&(1<<p) != 0 && sent&(1<<(p^1)) == 0
}

// deliver sends the current ECM on every armed ECM filter that accepts it.
func (r *runner) deliver() error {
	n := r.period()
	keys := make([]filterKey, 0, len(r.filters))
	for k := range r.filters {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].demux < keys[j].demux || keys[i].demux == keys[j].demux && keys[i].num < keys[j].num
	})
	for _, k := range keys {
		fs := r.filters[k]
		s := fs.svc
		if s == nil || !s.active {
			continue
		}
		caid, ok := s.caidFor(fs.f.PID)
		if !ok {
			continue
		}
		sec, err := testecm.AppendFor(r.sec[:0], s.def.System, caid, s.def.SID, fs.f.PID, s.def.Provider, n)
		if err != nil {
			return fmt.Errorf("zap: service %s: %w", s.def.Name, err)
		}
		r.sec = sec
		if !fs.f.Matches(sec) {
			continue
		}
		fs.sent |= 1 << (sec[0] & 1)
		if !s.sentAny || s.lastSent != n {
			first := !s.sentAny
			s.sentAny, s.lastSent = true, n
			s.res.ECMs++
			w := &pending{at: time.Now(), first: first, period: n, prev: s.confirmed, hasPrev: s.hasConfirmed,
				infos: s.infos, writes: r.writes}
			if w.cw, w.exact, err = r.expected(s, caid, fs.f.PID, sec); err != nil {
				return err
			}
			if first {
				w.at = s.startAt
			}
			s.wait = w
		}
		if err := r.write(dvbapi.AppendFilterData(nil, r.version, s.msgid, k.demux, k.num, sec)); err != nil {
			return err
		}
	}
	return nil
}

// expected returns the pair the service must get for sec, and whether the
// verify mode knows it exactly.
func (r *runner) expected(s *svcState, caid, pid uint16, sec []byte) ([16]byte, bool, error) {
	switch s.def.Verify {
	case "derived":
		cw, ok := testecm.Expected(sec)
		return cw, ok, nil
	case "sha256":
		return personality.ExpectedCW(s.def.System, sec), true, nil
	case "constcw":
		q := constcw.Query{CAID: caid, SID: s.def.SID, PMTPID: s.def.PMTPID, ECMPID: pid}
		if len(s.pids) > 0 {
			q.VPID = s.pids[0]
		}
		cw, ok, err := r.rules.Lookup(q)
		if err != nil {
			return cw, false, fmt.Errorf("zap: %w", err)
		}
		if !ok {
			return cw, false, fmt.Errorf("zap: service %s: no rule in %s for CAID %04X SID %04X", s.def.Name, r.sc.ConstCW, caid, s.def.SID)
		}
		return cw, true, nil
	}
	return [16]byte{}, false, nil
}

func (s *svcState) caidFor(pid uint16) (uint16, bool) {
	for _, e := range s.def.ECM {
		if e.PID == pid {
			return e.CAID, true
		}
	}
	return 0, false
}

func (r *runner) handle(m *dvbapi.ServerMessage) {
	if r.version >= 3 && !m.Framed {
		r.violation("protocol 3 message 0x%08X without A5 frame", m.Op)
	}
	switch m.Op {
	case dvbapi.OpServerInfo:
		r.gotInfo = true
		r.report.Server, r.report.Version = m.Name, m.Version
		return
	}
	if !r.gotInfo && r.version > 0 {
		r.violation("message 0x%08X before SERVER_INFO", m.Op)
	}
	switch m.Op {
	case dvbapi.OpDmxSetFilter:
		k := filterKey{m.Filter.Demux, m.Filter.Num}
		s := r.serviceFor(m.MsgID, m.Filter.PID)
		old := r.filters[k]
		r.filters[k] = &filterState{f: m.Filter, svc: s}
		if s != nil && old != nil && old.svc == s && rearmedToSeen(m.Filter, old.sent) {
			r.violation("service %s: filter re-armed to the parity already delivered (0x%02X)", s.def.Name, m.Filter.Filter[0])
		}
	case dvbapi.OpDmxStop:
		delete(r.filters, filterKey{m.Filter.Demux, m.Filter.Num})
	case dvbapi.OpCASetPID:
		if m.PID > 0x1FFF {
			r.violation("CA_SET_PID pid 0x%X out of range", m.PID)
		}
		r.pidIndex[uint16(m.PID)] = m.Index
	case dvbapi.OpCASetDescr:
		if m.Parity > 1 {
			r.violation("CA_SET_DESCR parity %d", m.Parity)
		}
		if m.CW == [8]byte{} {
			r.violation("CA_SET_DESCR with an all-zero CW (index %d parity %d)", m.Index, m.Parity)
		}
		d := r.descr[m.Index]
		if d == nil {
			d = new([2][8]byte)
			r.descr[m.Index] = d
		}
		d[m.Parity&1] = m.CW
		r.writes++
		if s := r.serviceForIndex(m.Index); s != nil && r.version >= 3 && m.MsgID != s.msgid {
			r.violation("service %s: CA_SET_DESCR msgid %d, want %d", s.def.Name, m.MsgID, s.msgid)
		}
	case dvbapi.OpECMInfo:
		if r.version < 2 {
			r.violation("ECM_INFO sent to a protocol %d client", r.version)
		}
		for _, s := range r.order {
			if s.active && s.def.SID == m.Info.SID {
				s.res.CAID, s.res.PID, s.res.Reader = m.Info.CAID, m.Info.PID, m.Info.Reader
				s.res.ECMTime = time.Duration(m.Info.TimeMs) * time.Millisecond
				s.infos++
				if !s.announced && r.sc.Observe != nil {
					s.announced = true
					r.sc.Observe(Event{Service: s.def.Name, CAID: m.Info.CAID, PID: m.Info.PID, Reader: m.Info.Reader,
						System: m.Info.System, ECMTime: s.res.ECMTime, Zap: time.Since(s.startAt)})
				}
				// OSCam tags ECM_INFO with the FILTER_DATA's msgid or 0
				// (spec §1.2); clients map both back.
				if r.version >= 3 && m.MsgID != s.msgid && m.MsgID != 0 {
					r.violation("service %s: ECM_INFO msgid %d, want %d or 0", s.def.Name, m.MsgID, s.msgid)
				}
			}
		}
	case dvbapi.OpCASetDescrMode, dvbapi.OpCASetDescrData:
		r.violation("extended CW API message 0x%08X the client did not ask for", m.Op)
	}
	r.checkCWs()
}

func (r *runner) serviceFor(msgid uint32, pid uint16) *svcState {
	var byPID *svcState
	for _, s := range r.order {
		if !s.active {
			continue
		}
		if _, ok := s.caidFor(pid); ok {
			if r.version >= 3 && msgid == s.msgid {
				return s
			}
			if byPID == nil {
				byPID = s
			}
		}
	}
	return byPID
}

func (r *runner) serviceForIndex(idx int32) *svcState {
	for _, s := range r.order {
		if s.active && len(s.pids) > 0 {
			if i, ok := r.pidIndex[s.pids[0]]; ok && i == idx {
				return s
			}
		}
	}
	return nil
}

// keys returns the descrambler halves programmed for every PID of s.
func (r *runner) keys(s *svcState) (*[2][8]byte, bool) {
	var idx int32 = -1
	for i, pid := range s.pids {
		x, ok := r.pidIndex[pid]
		if !ok || x < 0 || i > 0 && x != idx {
			return nil, false
		}
		idx = x
	}
	d := r.descr[idx]
	return d, d != nil
}

// checkCWs completes pending ECMs whose CWs are now in place.
func (r *runner) checkCWs() {
	for _, s := range r.order {
		w := s.wait
		if !s.active {
			continue
		}
		d, ok := r.keys(s)
		if !ok {
			continue
		}
		var have [16]byte
		copy(have[:8], d[0][:])
		copy(have[8:], d[1][:])
		if w == nil {
			r.checkStable(s, have)
			continue
		}
		if !r.accept(s, w, d, have) {
			continue
		}
		s.confirmed, s.hasConfirmed = have, true
		lat := time.Since(w.at)
		s.res.CWs++
		if w.first {
			s.res.FirstCW = max(s.res.FirstCW, lat)
		} else {
			s.res.MaxLatency = max(s.res.MaxLatency, lat)
		}
		s.wait = nil
	}
}

// accept reports whether the pair in place answers the pending ECM.
func (r *runner) accept(s *svcState, w *pending, d *[2][8]byte, have [16]byte) bool {
	if d[0] == [8]byte{} || d[1] == [8]byte{} {
		return false
	}
	if w.zap && r.writes <= w.writes {
		return false // what is in place predates the zap
	}
	switch {
	case w.exact:
		// The changed half may still be on its way; the deadline check
		// decides. A CW that matches neither is counted there.
		return have == w.cw
	case s.def.Verify == "any":
		if w.hasPrev && have == w.prev {
			return false // the ECM changed, the CW must too
		}
		// Wait for the whole answer: its ECM_INFO (protocol 2+), or a
		// CA_SET_DESCR written after the ECM went out (protocol 1).
		if r.version >= 2 {
			return s.infos > w.infos
		}
		return r.writes > w.writes
	}
	return true
}

// checkStable counts a CW change while the service's ECM repeated
// unchanged (no exact expectation involved).
func (r *runner) checkStable(s *svcState, have [16]byte) {
	if s.def.Verify == "nonzero" || !s.hasConfirmed || have == s.confirmed {
		return
	}
	s.res.Unstable++
	s.confirmed = have
}

func (r *runner) checkDeadlines() {
	now := time.Now()
	dl := r.deadline(time.Duration(r.sc.CWDeadline))
	for _, s := range r.order {
		if w := s.wait; s.active && w != nil && !w.late && now.Sub(w.at) > dl+firstGrace(w) {
			w.late = true
			if *s.def.ExpectCW {
				if d, ok := r.keys(s); ok && w.exact && (d[0] != [8]byte{} || d[1] != [8]byte{}) {
					s.res.Wrong++
				} else {
					s.res.Late++
				}
			}
		}
		if !s.stopAt.IsZero() && now.After(s.stopAt) {
			s.stopAt = time.Time{}
			if !r.cleanedUp(s) {
				s.res.CleanupFail++
			}
		}
	}
}

// firstGrace allows the zap itself (ECM PID search) on top of the deadline.
func firstGrace(w *pending) time.Duration {
	if w.first {
		return 3 * time.Second
	}
	return 0
}

// cleanedUp reports whether the server removed the filters and PIDs of s.
func (r *runner) cleanedUp(s *svcState) bool {
	for _, fs := range r.filters {
		if fs.svc == s {
			return false
		}
	}
	for _, o := range r.order {
		if o.active && o != s {
			for _, pid := range o.pids {
				for _, q := range s.pids {
					if pid == q {
						return true // shared PID still in use by another service
					}
				}
			}
		}
	}
	for _, pid := range s.pids {
		if i, ok := r.pidIndex[pid]; ok && i >= 0 {
			return false
		}
	}
	return true
}

func (r *runner) stopAll() {
	for _, s := range r.order {
		if s.active {
			r.stopping(s)
		}
	}
	r.write(dvbapi.AppendCAStop(nil, r.version, 0, 0xFF))
}

func (r *runner) finish() {
	r.checkDeadlines()
	for _, s := range r.order {
		if !s.stopAt.IsZero() && !r.cleanedUp(s) {
			s.res.CleanupFail++
		}
	}
}
