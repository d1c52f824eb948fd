package dvbapi

import (
	"context"
	"log/slog"
	"time"
	"weak"
)

// MaxProgrammes is the number of programme slots per connection (OSCam's
// demux slots are 0..31).
const MaxProgrammes = 32

type progState uint8

const (
	stIdle         progState = iota // free-to-air or not started
	stTrying                        // filter armed on an ECM PID, no CW yet
	stDescrambling                  // CWs flowing
	stBackoff                       // every ECM PID failed; waiting to retry
)

// progID is what makes a programme "the same" across CA PMTs (spec §1.4).
type progID struct {
	program, pmtPID uint16
	adapter, demux  uint8
	caMask          uint32
	namespace       uint32
	tsid, onid      uint16
}

type ecmPID struct {
	ECMStream
	chid     uint16
	chidSet  bool
	failed   bool
	timeouts uint8
	// noECM: asked from the CA PMT at once instead of filtering ECMs
	// (BISS, or a reader that answers without ECMs and no ECM PID).
	noECM bool
}

// programme is one CA PMT programme = one server demux slot. All fields
// are guarded by the connection's mutex.
type programme struct {
	c      *conn
	slot   uint8
	active bool
	marked bool // list management: stop unless it re-appears
	state  progState
	msgid  uint32
	id     progID

	streams  [MaxStreams]Stream
	nStreams int
	vpid     uint16             // first video stream, for constant.cw rules
	version  uint8              // CA PMT version: a change re-asks a no-ECM PID
	due      bool               // a no-ECM request waits for conn.submitDue
	mapped   [MaxStreams]uint16 // PIDs enabled with CA_SET_PID
	nMapped  int
	index    int32 // descrambler slot, -1 = none

	pids  [MaxECMPIDs]ecmPID
	nPIDs int
	cur   int // index into pids, -1 = none

	filter    Filter
	armed     bool
	lastTable byte
	pending   bool
	gen       uint32
	sentAt    time.Time

	cw     [16]byte
	haveCW [2]bool

	timer   *time.Timer
	backoff time.Duration

	ecm  [MaxECMLen]byte
	req  ECMRequest
	ans  ECMAnswer // the answer being applied (kept here: no escape)
	info ECMInfo

	dmx DemuxHandle // local-device mode
	ca  CAHandle

	stats serviceStats // for Server.Services
}

func newProgramme(c *conn, slot uint8) *programme {
	p := &programme{c: c, slot: slot, index: -1, cur: -1}
	// A stopped timer may linger in the runtime's timer heap until it is
	// cleaned up; it holds the programme only weakly, so a closed
	// connection is collectable at once.
	wp := weak.Make(p)
	p.timer = time.AfterFunc(time.Hour, func() {
		if q := wp.Value(); q != nil {
			q.onTimer()
		}
	})
	p.timer.Stop()
	p.req.Done = c
	return p
}

// start begins descrambling the programme described by m.
func (p *programme) start(m *CAPMT, msgid uint32) {
	p.active, p.marked, p.msgid = true, false, msgid
	p.id = idOf(m)
	p.index = p.c.allocIndex()
	p.backoff = 0
	p.cw, p.haveCW = [16]byte{}, [2]bool{}
	p.nMapped = 0
	p.stats = serviceStats{since: time.Now()}
	p.setStreams(m)
	p.version = m.Version
	p.loadPIDs(m)
	p.c.lim.log(slog.LevelInfo, "programme started", "slot", p.slot, "sid", p.id.program, "adapter", p.id.adapter,
		"demux", p.id.demux, "pmt_pid", p.id.pmtPID, "ecm_pids", p.nPIDs, "streams", p.nStreams)
	p.nextPID()
}

func idOf(m *CAPMT) progID {
	return progID{program: m.Program, pmtPID: m.PMTPID, adapter: m.Adapter, demux: m.Demux,
		caMask: m.CAMask, namespace: m.Namespace, tsid: m.TSID, onid: m.ONID}
}

func (p *programme) setStreams(m *CAPMT) {
	p.nStreams = copy(p.streams[:], m.Streams)
	p.vpid = 0
	for _, s := range m.Streams {
		if isVideo(s.Type) {
			p.vpid = s.PID
			break
		}
	}
}

// isVideo reports whether stream_type is video (MPEG-1/2, MPEG-4, H.264,
// H.265, VC-1, AVS).
func isVideo(t uint8) bool {
	switch t {
	case 0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xEA:
		return true
	}
	return false
}

// usable lists the ECM PIDs the programme tries, in CA PMT order: the
// real ECM PIDs (BISS ones asked at once) and the descriptors without an
// ECM PID that BISS or a reader answering without ECMs can serve.
func (p *programme) usable(m *CAPMT, yield func(e ECMStream, noECM bool)) {
	ns, _ := p.c.srv.opt.Solver.(NoECMServer)
	for _, e := range m.ECM {
		yield(e, IsBISS(e.CAID))
	}
	for _, e := range m.NoECM {
		if IsBISS(e.CAID) || ns != nil && ns.AnswersWithoutECM(e.CAID, e.PRID) {
			yield(e, true)
		}
	}
}

// loadPIDs copies the ECM PIDs in try order: the channel cache's last good
// CAID/PID first, then those a ready reader serves, then the rest.
func (p *programme) loadPIDs(m *CAPMT) {
	p.nPIDs = 0
	p.cur = -1
	cached, hit := p.c.srv.cache.get(p.id)
	cs, _ := p.c.srv.opt.Solver.(CAIDServer)
	rank := func(e ECMStream) int {
		switch {
		case hit && e.CAID == cached.caid && e.PID == cached.pid:
			return 0
		case cs != nil && cs.CanServe(e.CAID, e.PRID):
			return 1
		}
		return 2
	}
	for pass := 0; pass < 3; pass++ {
		p.usable(m, func(e ECMStream, noECM bool) {
			if rank(e) != pass || p.nPIDs == MaxECMPIDs {
				return
			}
			ep := ecmPID{ECMStream: e, noECM: noECM}
			if pass == 0 {
				ep.chid, ep.chidSet = cached.chid, cached.chidSet
			}
			p.pids[p.nPIDs] = ep
			p.nPIDs++
		})
	}
}

// samePIDs reports whether m lists the same ECM PIDs as the programme.
func (p *programme) samePIDs(m *CAPMT) bool {
	n, same := 0, true
	p.usable(m, func(e ECMStream, _ bool) {
		n++
		found := false
		for i := 0; i < p.nPIDs; i++ {
			found = found || p.pids[i].ECMStream == e
		}
		same = same && found
	})
	return same && n == p.nPIDs
}

// update applies a CA PMT update for a running programme: vanished stream
// PIDs are disabled, new ones enabled, and a changed ECM PID list restarts
// the search.
func (p *programme) update(m *CAPMT, msgid uint32) {
	p.msgid, p.marked = msgid, false
	p.id = idOf(m)
	old := p.mapped
	oldN := p.nMapped
	p.setStreams(m)
	if p.nMapped > 0 {
		p.nMapped = 0
		for i := 0; i < oldN; i++ {
			if !p.hasStream(old[i]) {
				p.c.sink.setPID(p, old[i], -1)
			}
		}
		p.mapPIDs(old[:oldN])
	}
	changed := m.Version != p.version
	p.version = m.Version
	if p.samePIDs(m) && p.state != stIdle {
		if changed && p.cur >= 0 && p.pids[p.cur].noECM && !p.pending {
			p.armECM() // a BISS key may change with the PMT: ask again
		}
		return
	}
	p.stopFilter()
	p.timer.Stop()
	p.pending = false
	p.gen++
	p.loadPIDs(m)
	p.c.lim.log(slog.LevelInfo, "programme updated", "slot", p.slot, "sid", p.id.program, "ecm_pids", p.nPIDs, "streams", p.nStreams)
	p.nextPID()
}

func (p *programme) hasStream(pid uint16) bool {
	for i := 0; i < p.nStreams; i++ {
		if p.streams[i].PID == pid {
			return true
		}
	}
	return false
}

// mapPIDs enables every stream PID with the programme's descrambler index,
// writing CA_SET_PID only for PIDs not in already.
func (p *programme) mapPIDs(already []uint16) {
	for i := 0; i < p.nStreams; i++ {
		pid := p.streams[i].PID
		known := false
		for _, a := range already {
			known = known || a == pid
		}
		if !known {
			p.c.sink.setPID(p, pid, p.index)
		}
		p.mapped[p.nMapped] = pid
		p.nMapped++
	}
}

// nextPID arms the filter on the next ECM PID not marked failed, or enters
// the retry backoff when every PID failed.
func (p *programme) nextPID() {
	p.stopFilter()
	if p.nPIDs == 0 {
		p.state = stIdle // free-to-air
		p.timer.Stop()
		return
	}
	for k := p.cur + 1; k < p.nPIDs; k++ {
		if !p.pids[k].failed {
			p.cur = k
			p.armECM()
			return
		}
	}
	p.cur = -1
	p.state = stBackoff
	p.backoff = min(max(2*p.backoff, p.c.srv.opt.RetryMin), p.c.srv.opt.RetryMax)
	p.c.lim.log(slog.LevelWarn, "no ECM PID answered; retrying", "slot", p.slot, "sid", p.id.program, "after", p.backoff)
	p.timer.Reset(p.backoff)
}

// armECM arms the first filter on the current ECM PID: table 0x80-0x8F;
// a PID without ECMs is asked at once instead (askNoECM).
func (p *programme) armECM() {
	e := &p.pids[p.cur]
	if e.noECM {
		p.askNoECM()
		return
	}
	p.filter = Filter{Adapter: p.id.adapter, Demux: p.slot, PID: e.PID, Timeout: 3000, Flags: FlagImmediateStart}
	p.filter.Filter[0], p.filter.Mask[0] = 0x80, 0xF0
	p.lastTable = 0
	p.armed = true
	p.stats.inUse = e.ECMStream
	if p.state != stDescrambling {
		p.state = stTrying
	}
	p.c.sink.setFilter(p, &p.filter)
	p.timer.Reset(p.c.srv.opt.FilterTimeout)
	if p.c.log.Enabled(context.Background(), slog.LevelDebug) {
		p.c.log.Debug("ECM filter armed", "slot", p.slot, "sid", p.id.program, "caid", hex4(e.CAID), "pid", hex4(e.PID))
	}
}

// askNoECM asks for the current no-ECM PID's CW: the request is built
// and handed to the solver by conn.submitDue, outside the lock.
func (p *programme) askNoECM() {
	e := &p.pids[p.cur]
	p.stats.inUse = e.ECMStream
	if p.state != stDescrambling {
		p.state = stTrying
	}
	p.gen++
	p.pending, p.due = true, true
	p.sentAt = time.Now()
	p.c.due = true
	p.timer.Reset(p.c.srv.opt.AnswerTimeout)
}

// fillNoECM builds the request of a due no-ECM ask: the ECM is a stand-in
// made from the CA PMT (OSCam builds one too), unique per service and
// PIDs. It reports false when the programme moved on meanwhile.
func (p *programme) fillNoECM() bool {
	if !p.active || !p.due || !p.pending || p.cur < 0 || !p.pids[p.cur].noECM {
		p.due = false
		return false
	}
	p.due = false
	e := &p.pids[p.cur]
	n := len(FakeECM(p.ecm[:0], e.CAID, p.id.program, p.id.pmtPID, e.PID, p.vpid, p.id.tsid, p.id.onid))
	p.req = ECMRequest{CAID: e.CAID, PRID: e.PRID, SID: p.id.program, PID: e.PID, PMTPID: p.id.pmtPID, VPID: p.vpid,
		Data: p.ecm[:n], Tag: uint64(p.slot)<<56 | uint64(p.cur)<<48 | uint64(p.gen), Done: p.c}
	return true
}

// FakeECM appends the stand-in ECM section for a service without ECMs:
// table 0x80, then CAID, SID, PMT PID, ECM PID, video PID, TSID and ONID.
func FakeECM(b []byte, caid, sid, pmtPID, ecmPID, vpid, tsid, onid uint16) []byte {
	b = append(b, 0x80, 0x70, 14)
	for _, v := range [...]uint16{caid, sid, pmtPID, ecmPID, vpid, tsid, onid} {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

// rearm narrows the filter to the other parity and, once known, the chid.
func (p *programme) rearm() {
	e := &p.pids[p.cur]
	f := &p.filter
	f.Filter[0], f.Mask[0] = p.lastTable^1, 0xFF
	f.Timeout = 0
	if e.chidSet {
		pinCHID(f, e.CAID, e.chid)
	}
	p.c.sink.setFilter(p, f)
}

// pinCHID pins the chid bytes in the filter (spec §1.5).
func pinCHID(f *Filter, caid, chid uint16) {
	var i int
	var m0 byte = 0xFF
	switch caid >> 8 {
	case 0x01:
		i, m0 = 5, 0xF0
	case 0x05:
		i = 6
	case 0x09:
		i = 9
	case 0x4A:
		i = 4
	default:
		return
	}
	f.Filter[i], f.Mask[i] = byte(chid>>8), m0
	f.Filter[i+1], f.Mask[i+1] = byte(chid), 0xFF
}

// chidOf reads the chid from the ECM per system (spec §2), 0 for others.
func chidOf(caid uint16, ecm []byte) (uint16, bool) {
	off := 0
	switch caid >> 8 {
	case 0x01:
		off = 7
	case 0x05:
		off = 8
	case 0x09:
		off = 11
	case 0x4A:
		off = 6
	default:
		return 0, false
	}
	if len(ecm) < off+2 {
		return 0, false
	}
	return uint16(ecm[off])<<8 | uint16(ecm[off+1]), true
}

func (p *programme) stopFilter() {
	if p.armed {
		p.c.sink.stopFilter(p, &p.filter)
		p.armed = false
	}
}

// section handles an ECM section delivered on the programme's filter. It
// returns true when the programme's request was filled and must be given
// to the solver (outside the connection lock).
func (p *programme) section(filter uint8, s []byte) bool {
	if !p.armed || filter != p.filter.Num || !p.filter.Matches(s) || p.cur < 0 {
		return false
	}
	t := s[0]
	if t != 0x80 && t != 0x81 || t == p.lastTable || len(s) > MaxECMLen {
		return false
	}
	e := &p.pids[p.cur]
	if e.chidSet {
		if chid, ok := chidOf(e.CAID, s); ok && chid != e.chid {
			return false
		}
	}
	p.lastTable = t
	n := copy(p.ecm[:], s)
	p.gen++
	p.pending = true
	p.sentAt = time.Now()
	p.req = ECMRequest{CAID: e.CAID, PRID: e.PRID, SID: p.id.program, PID: e.PID, PMTPID: p.id.pmtPID, VPID: p.vpid,
		Data: p.ecm[:n], Tag: uint64(p.slot)<<56 | uint64(p.cur)<<48 | uint64(p.gen), Done: p.c}
	if e.chidSet {
		p.req.CHID = e.chid
	}
	if p.state != stDescrambling {
		p.timer.Reset(p.c.srv.opt.AnswerTimeout)
	}
	return true
}

// answered applies a solver answer that matches the pending request.
func (p *programme) answered(a *ECMAnswer) {
	p.pending = false
	e := &p.pids[p.cur]
	if a.Result == Found && a.CW == [16]byte{} {
		a.Result = NotFound // OSCam's sanity check
	}
	p.stats.count(a)
	switch a.Result {
	case Found:
		e.timeouts = 0
		if chid, ok := chidOf(e.CAID, p.ecm[:]); ok && !e.chidSet {
			e.chid, e.chidSet = chid, true
		}
		p.timer.Stop()
		p.backoff = 0
		first := p.state != stDescrambling
		p.state = stDescrambling
		p.writeCW(a)
		p.c.srv.cache.put(p.id, e)
		if first {
			p.c.lim.log(slog.LevelInfo, "descrambling", "slot", p.slot, "sid", p.id.program, "caid", hex4(e.CAID), "pid", hex4(e.PID),
				"reader", a.Reader, "ms", a.After.Milliseconds())
		}
	case Timeout:
		if e.timeouts == 0 {
			e.timeouts++
			p.lastTable = 0 // retry the same PID once with a fresh ECM
			p.armECM()
			return
		}
		fallthrough
	default:
		p.c.lim.log(slog.LevelInfo, "ECM PID failed", "slot", p.slot, "sid", p.id.program, "caid", hex4(e.CAID), "pid", hex4(e.PID), "result", a.Result.String())
		e.failed = true
		p.nextPID()
	}
}

// writeCW programs the descrambler: PIDs when not yet mapped, then only the
// changed, non-zero halves, then ECM_INFO.
func (p *programme) writeCW(a *ECMAnswer) {
	if p.nMapped == 0 {
		p.mapPIDs(nil)
	}
	// A constant CW is re-sent on each new ECM (tvheadend drops keys
	// when ECMs change and no key follows); otherwise unchanged halves
	// and a swapped pair are skipped, as OSCam does.
	resend := a.NoECM && !p.c.srv.opt.ConstantCWOnce
	swapped := p.haveCW[0] && p.haveCW[1] && [8]byte(a.CW[:8]) == [8]byte(p.cw[8:]) && [8]byte(a.CW[8:]) == [8]byte(p.cw[:8])
	if !swapped || resend {
		for par := 0; par < 2; par++ {
			half := a.CW[8*par : 8*par+8]
			if [8]byte(half) == [8]byte{} && !IsBISS(p.pids[p.cur].CAID) ||
				!resend && p.haveCW[par] && [8]byte(half) == [8]byte(p.cw[8*par:8*par+8]) {
				continue
			}
			copy(p.cw[8*par:], half)
			p.haveCW[par] = true
			p.c.sink.setDescr(p, uint32(p.index), uint32(par), half)
		}
	}
	e := &p.pids[p.cur]
	p.info = ECMInfo{Adapter: p.id.adapter, SID: p.id.program, CAID: e.CAID, PID: e.PID, PRID: e.PRID,
		TimeMs: uint32(a.After.Milliseconds()), System: a.System, Reader: a.Reader, Source: "local", Protocol: a.Protocol}
	p.c.sink.ecmInfo(p, &p.info)
	p.c.srv.ecmFile.set(p, &p.info, e.chid)
}

// onTimer fires for a filter that delivered nothing, an answer that did
// not come, or the end of the retry backoff.
func (p *programme) onTimer() {
	c := p.c
	c.mu.Lock()
	defer c.unlock()
	if !p.active {
		return
	}
	switch p.state {
	case stTrying:
		if p.pending {
			p.gen++ // a late answer is dropped
			p.ans = ECMAnswer{Result: Timeout}
			p.answered(&p.ans)
			return
		}
		e := &p.pids[p.cur]
		c.lim.log(slog.LevelInfo, "no ECM on PID", "slot", p.slot, "sid", p.id.program, "pid", hex4(e.PID))
		e.failed = true
		p.nextPID()
	case stBackoff:
		for i := 0; i < p.nPIDs; i++ {
			p.pids[i].failed, p.pids[i].timeouts = false, 0
		}
		p.cur = -1
		p.nextPID()
	}
}

// stop ends the programme: DMX_STOP, CA_SET_PID -1 for its PIDs, forget
// the CWs, free the slot.
func (p *programme) stop(reason string) {
	if !p.active {
		return
	}
	p.c.lim.log(slog.LevelInfo, "programme stopped", "slot", p.slot, "sid", p.id.program, "reason", reason)
	p.stopFilter()
	for i := 0; i < p.nMapped; i++ {
		p.c.sink.setPID(p, p.mapped[i], -1)
	}
	p.c.sink.release(p)
	p.nMapped = 0
	p.timer.Stop()
	p.active, p.pending, p.due, p.state = false, false, false, stIdle
	p.gen++
	p.cw, p.haveCW = [16]byte{}, [2]bool{}
	p.c.freeIndex(p.index)
	p.index = -1
	p.c.srv.ecmFile.clear(p)
}

func hex4(v uint16) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'0', 'x', digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}
