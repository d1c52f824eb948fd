package dvbapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"
)

// maxOutBuffered bounds the bytes queued for a client that does not read;
// beyond it the connection is closed.
const maxOutBuffered = 256 << 10

// sink is where a connection's filter and descrambler commands go: back on
// the socket (network mode) or to the local DVB devices.
type sink interface {
	setFilter(p *programme, f *Filter)
	stopFilter(p *programme, f *Filter)
	setPID(p *programme, pid uint16, index int32)
	setDescr(p *programme, index, parity uint32, cw []byte)
	ecmInfo(p *programme, e *ECMInfo)
	release(p *programme)
}

// conn is one client connection (or one client-mode connection to enigma2).
type conn struct {
	srv  *Server
	log  *slog.Logger
	rw   io.ReadWriteCloser
	sink sink
	opt  ParseOptions

	submitMu sync.Mutex // serialises request filling + Solve

	// id and peer are set before the connection is shared.
	id   int
	peer string

	mu        sync.Mutex
	version   int    // client's protocol version, 0 before CLIENT_INFO
	client    string // CLIENT_INFO name, for the Status page
	out       []byte
	spare     []byte
	wake      chan struct{}
	closed    bool
	failed    error
	progs     [MaxProgrammes]*programme
	indexUsed uint64
	capmt     CAPMT
}

func newConn(s *Server, rw io.ReadWriteCloser, log *slog.Logger, devices Devices) *conn {
	c := &conn{srv: s, rw: rw, log: log, wake: make(chan struct{}, 1),
		out: make([]byte, 0, 4096), spare: make([]byte, 0, 4096)}
	c.capmt.Streams = make([]Stream, 0, MaxStreams)
	c.capmt.ECM = make([]ECMStream, 0, MaxECMPIDs)
	if devices != nil {
		c.sink = &deviceSink{c: c, devs: devices}
		c.opt.BoxEnigma = true
	} else {
		c.sink = (*netSink)(c)
	}
	return c
}

// serve reads and handles messages until the connection fails or closes.
func (c *conn) serve() error {
	go c.writeLoop()
	f := NewFramer()
	var m ClientMessage
	var err error
	for err == nil {
		if err = f.Fill(c.rw); err != nil {
			break
		}
		for {
			ok, ferr := f.Next(c.allowFrame(), &m)
			if ferr != nil {
				err = ferr
				break
			}
			if !ok {
				break
			}
			if err = c.handle(&m); err != nil {
				break
			}
		}
	}
	c.close(err)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (c *conn) allowFrame() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version == 0 || c.version >= 3
}

// handle processes one client message. A returned error closes the
// connection.
func (c *conn) handle(m *ClientMessage) error {
	switch m.Op {
	case OpFilterData:
		c.filterData(m.Demux, m.Filter, m.Section)
		return nil
	case OpClientInfo:
		return c.clientInfo(m)
	case OpCAPMT:
		return c.caPMT(m)
	case OpCAStop:
		demux, err := ParseCAStop(m.Body)
		if err != nil {
			return offsetBy(err, m.Offset+int64(m.BodyOff))
		}
		c.mu.Lock()
		for _, p := range c.progs {
			if p != nil && p.active && (demux == 0xFF || p.id.demux == demux) {
				p.stop("stop message")
			}
		}
		c.flushLocked()
		return nil
	}
	return nil
}

func offsetBy(err error, base int64) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		pe.Offset += base
	}
	return err
}

func (c *conn) clientInfo(m *ClientMessage) error {
	if m.Version < 1 {
		return &ProtocolError{Offset: m.Offset, Field: "CLIENT_INFO version", Msg: "protocol 0 (host byte order) is not supported"}
	}
	c.mu.Lock()
	defer c.flushLocked()
	first := c.version == 0
	c.version = int(min(m.Version, MaxVersion))
	c.client = clientName(m.Name)
	c.log.Info("client handshake", "client", string(m.Name), "announced", m.Version, "protocol", c.version)
	c.out = AppendServerInfo(c.out, c.version, ServerVersion, c.srv.opt.ServerName)
	if first {
		c.replayLocked()
	}
	return nil
}

// replayLocked sends what programmes started before the handshake have
// produced (OpenATV sends its CA PMTs before CLIENT_INFO).
func (c *conn) replayLocked() {
	if _, ok := c.sink.(*netSink); !ok {
		return
	}
	for _, p := range c.progs {
		if p == nil || !p.active {
			continue
		}
		if p.armed {
			c.sink.setFilter(p, &p.filter)
		}
		for i := 0; i < p.nMapped; i++ {
			c.sink.setPID(p, p.mapped[i], p.index)
		}
		for par := 0; par < 2; par++ {
			if p.haveCW[par] {
				c.sink.setDescr(p, uint32(p.index), uint32(par), p.cw[8*par:8*par+8])
			}
		}
	}
}

func (c *conn) caPMT(m *ClientMessage) error {
	c.mu.Lock()
	defer c.flushLocked()
	cm := &c.capmt
	if err := ParseCAPMT(m.Body, c.opt, cm); err != nil {
		return offsetBy(err, m.Offset+int64(m.BodyOff))
	}
	lm := cm.ListManagement
	if lm == ListFirst || lm == ListOnly {
		for _, p := range c.progs {
			if p != nil && p.active {
				p.marked = true
			}
		}
	}
	p := c.find(idOf(cm))
	switch cm.CmdID {
	case CmdNotSelected:
		if p != nil {
			p.stop("not_selected")
		}
	case CmdQuery:
		c.log.Info("ca_pmt_cmd_id query is not supported; programme dropped", "sid", cm.Program)
		if p != nil {
			p.stop("query")
		}
	default:
		switch {
		case p != nil:
			p.update(cm, m.MsgID)
		case lm == ListUpdate:
			c.log.Warn("CA PMT update for an unknown programme ignored", "sid", cm.Program, "offset", m.Offset)
		default:
			c.startLocked(cm, m.MsgID)
		}
	}
	if lm == ListLast || lm == ListOnly || lm == ListAdd || lm == ListUpdate {
		for _, q := range c.progs {
			if q != nil && q.active && q.marked {
				q.stop("not in the CA PMT list")
			}
		}
	}
	return nil
}

func (c *conn) find(id progID) *programme {
	for _, p := range c.progs {
		if p != nil && p.active && p.id == id {
			return p
		}
	}
	return nil
}

func (c *conn) startLocked(cm *CAPMT, msgid uint32) {
	for i, p := range c.progs {
		if p == nil {
			p = newProgramme(c, uint8(i))
			c.progs[i] = p
		}
		if !p.active {
			p.start(cm, msgid)
			return
		}
	}
	c.log.Warn("no free programme slot; CA PMT ignored", "sid", cm.Program, "slots", MaxProgrammes)
}

// filterData handles a section for (slot, filter): the hot path.
func (c *conn) filterData(slot, filter uint8, s []byte) {
	if int(slot) >= MaxProgrammes {
		return
	}
	c.submitMu.Lock()
	defer c.submitMu.Unlock()
	c.mu.Lock()
	p := c.progs[slot]
	if p == nil || !p.active || !p.section(filter, s) {
		c.mu.Unlock()
		return
	}
	cur, pid := p.cur, p.filter.PID
	c.mu.Unlock()
	c.srv.opt.Solver.Solve(&p.req)
	c.mu.Lock()
	// Re-arm to the other parity unless the answer moved the programme on.
	if p.active && p.armed && p.cur == cur && p.filter.PID == pid {
		p.rearm()
	}
	c.flushLocked()
}

// ECMAnswered receives the solver's answers for this connection.
func (c *conn) ECMAnswered(a ECMAnswer) {
	slot, cur, gen := uint8(a.Tag>>56), int(a.Tag>>48&0xFF), uint32(a.Tag)
	if int(slot) >= MaxProgrammes {
		return
	}
	c.mu.Lock()
	defer c.flushLocked()
	p := c.progs[slot]
	if p == nil || !p.active || !p.pending || p.gen != gen || p.cur != cur {
		return // late answer for a stopped or moved-on programme
	}
	p.ans = a
	p.answered(&p.ans)
}

// flushLocked wakes the writer and releases the lock.
func (c *conn) flushLocked() {
	n := len(c.out)
	c.mu.Unlock()
	if n > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (c *conn) writeLoop() {
	for range c.wake {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		buf := c.out
		c.out = c.spare[:0]
		c.mu.Unlock()
		if len(buf) > 0 {
			if _, err := c.rw.Write(buf); err != nil {
				c.close(fmt.Errorf("write: %w", err))
				return
			}
		}
		c.mu.Lock()
		c.spare = buf[:0]
		c.mu.Unlock()
	}
}

// close stops every programme of the connection and closes it once.
func (c *conn) close(reason error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.failed = reason
	for _, p := range c.progs {
		if p != nil {
			p.stop("connection closed")
			p.timer.Stop()
		}
	}
	c.mu.Unlock()
	close(c.wake)
	c.rw.Close()
	var pe *ProtocolError
	switch {
	case errors.As(reason, &pe):
		c.log.Warn("connection closed: malformed input", "offset", pe.Offset, "field", pe.Field, "reason", pe.Msg)
	case reason == nil || errors.Is(reason, io.EOF):
		c.log.Info("connection closed by peer")
	default:
		c.log.Info("connection closed", "reason", reason.Error())
	}
}

func (c *conn) allocIndex() int32 {
	i := bits.TrailingZeros64(^c.indexUsed)
	if i >= 64 {
		return 63
	}
	c.indexUsed |= 1 << i
	return int32(i)
}

func (c *conn) freeIndex(i int32) {
	if i >= 0 && i < 64 {
		c.indexUsed &^= 1 << i
	}
}

// netSink writes filter and descrambler commands back on the socket.
type netSink conn

func (s *netSink) ready() bool {
	c := (*conn)(s)
	if c.closed || c.version == 0 {
		return false // before the handshake; replayed after it
	}
	if len(c.out) > maxOutBuffered {
		c.log.Warn("client does not read; closing", "queued", len(c.out))
		c.closed = true
		go c.rw.Close()
		return false
	}
	return true
}

func (s *netSink) setFilter(p *programme, f *Filter) {
	if s.ready() {
		s.out = AppendSetFilter(s.out, s.version, p.msgid, f)
	}
}

func (s *netSink) stopFilter(p *programme, f *Filter) {
	if s.ready() {
		s.out = AppendDmxStop(s.out, s.version, p.msgid, f.Adapter, f.Demux, f.Num, f.PID)
	}
}

func (s *netSink) setPID(p *programme, pid uint16, index int32) {
	if s.ready() {
		s.out = AppendSetPID(s.out, s.version, p.msgid, p.id.adapter, pid, index)
	}
}

func (s *netSink) setDescr(p *programme, index, parity uint32, cw []byte) {
	if s.ready() {
		s.out = AppendSetDescr(s.out, s.version, p.msgid, p.id.adapter, index, parity, cw)
	}
}

func (s *netSink) ecmInfo(p *programme, e *ECMInfo) {
	if s.version >= 2 && s.ready() {
		s.out = AppendECMInfo(s.out, s.version, p.msgid, e)
	}
}

func (s *netSink) release(*programme) {}

var _ sink = (*netSink)(nil)
var _ ECMDone = (*conn)(nil)

// debugEnabled guards per-ECM logging so the hot path does not box args.
func debugEnabled(l *slog.Logger) bool { return l.Enabled(context.Background(), slog.LevelDebug) }
