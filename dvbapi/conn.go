package dvbapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"
	"time"
	"weak"
)

// maxOutBuffered bounds the bytes queued for a client that does not read;
// beyond it the connection is closed. Every message to the client,
// SERVER_INFO included, counts.
const maxOutBuffered = 256 << 10

// Errors that close a connection.
var (
	// ErrSlowClient closes a connection whose client does not read.
	ErrSlowClient = errors.New("dvbapi: client does not read")
	// ErrSilentClient closes a connection that sent no complete message
	// within Options.HandshakeTimeout.
	ErrSilentClient = errors.New("dvbapi: client sent nothing")
	// ErrServerClosing closes every connection when the server stops.
	ErrServerClosing = errors.New("dvbapi: server shutting down")
)

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

// connState is the lifetime of a connection. Every transition happens in
// setStateLocked under c.mu; output is appended only in connProto0 and
// connReady, and connClosed is terminal, so nothing can be queued, woken
// or written after the close. The writer's wake channel is never closed:
// closing is the done channel, which only the transition to connClosed
// closes, once.
type connState uint8

const (
	// connNew: no CLIENT_INFO yet. Programmes run, their output is held
	// back and replayed at the handshake (OpenATV sends CA PMTs first).
	connNew connState = iota
	// connProto0: a CA PMT came and no CLIENT_INFO within
	// Options.Protocol0Grace: the client speaks protocol 0.
	connProto0
	// connReady: CLIENT_INFO seen; output in the client's version.
	connReady
	// connClosed: terminal. Programmes stopped, buffers released.
	connClosed
)

func (s connState) String() string {
	return [...]string{"new", "protocol-0", "ready", "closed"}[s]
}

// conn is one client connection (or one client-mode connection to enigma2).
type conn struct {
	srv  *Server
	log  *slog.Logger
	lim  *logLimiter
	rw   io.ReadWriteCloser
	sink sink
	opt  ParseOptions

	submitMu sync.Mutex // serialises request filling + Solve

	// id, peer and dialled are set before the connection is shared.
	id      int
	peer    string
	dialled bool // client mode: satd connected to enigma2's listen socket

	wake chan struct{} // never closed
	done chan struct{} // closed by the transition to connClosed

	mu         sync.Mutex
	state      connState
	version    int    // client's protocol version; 0 before CLIENT_INFO
	client     string // CLIENT_INFO name, for the Status page
	out        []byte
	spare      []byte
	failed     error // why the connection closed
	closeLater bool  // rw.Close and the close log are due in unlock
	due        bool  // a programme has a no-ECM request for submitDue
	proto0     *time.Timer
	progs      [MaxProgrammes]*programme
	indexUsed  uint64
	capmt      CAPMT
}

func newConn(s *Server, rw io.ReadWriteCloser, log *slog.Logger, devices Devices) *conn {
	c := &conn{srv: s, rw: rw, log: log, lim: newLogLimiter(log, s.opt.LogInterval, 1),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		out: make([]byte, 0, 4096), spare: make([]byte, 0, 4096)}
	c.capmt.Streams = make([]Stream, 0, MaxStreams)
	c.capmt.ECM = make([]ECMStream, 0, MaxECMPIDs)
	c.capmt.NoECM = make([]ECMStream, 0, MaxECMPIDs)
	if devices != nil {
		c.sink = &deviceSink{c: c, devs: devices}
		c.opt.BoxEnigma = true
	} else {
		c.sink = (*netSink)(c)
	}
	return c
}

// deadliner is implemented by net.Conn.
type deadliner interface{ SetReadDeadline(time.Time) error }

// serve reads and handles messages until the connection fails or closes,
// and returns once its writer has stopped too: nothing of the connection
// runs after serve.
func (c *conn) serve() error {
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeLoop()
	}()
	dl, _ := c.rw.(deadliner)
	if dl != nil && c.srv.opt.HandshakeTimeout > 0 && !c.dialled {
		dl.SetReadDeadline(time.Now().Add(c.srv.opt.HandshakeTimeout))
	}
	f := NewFramer()
	var m ClientMessage
	var err error
	heard := false
	for err == nil && !c.isClosed() {
		if err = f.Fill(c.rw); err != nil {
			if !heard && isTimeout(err) {
				err = ErrSilentClient
			}
			break
		}
		for err == nil && !c.isClosed() {
			ok, ferr := f.Next(c.allowFrame(), &m)
			if ferr != nil || !ok {
				err = ferr
				break
			}
			if !heard && dl != nil {
				heard = true
				dl.SetReadDeadline(time.Time{})
			}
			err = c.handle(&m)
		}
	}
	c.close(err)
	<-written // the close unblocks a write in progress (rw.Close)
	c.mu.Lock()
	err = c.failed
	c.mu.Unlock()
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == connClosed
}

func (c *conn) allowFrame() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version == 0 || c.version >= 3
}

// setStateLocked moves the connection to state to. Leaving connClosed is
// impossible; entering it stops every programme (their commands are
// dropped), releases the buffers and schedules rw.Close for unlock.
func (c *conn) setStateLocked(to connState, reason error) {
	from := c.state
	if from == connClosed || from == to {
		return
	}
	if to == connClosed {
		c.failed = reason
		c.state = connClosed // before the stops: sinks see it and drop output
		for _, p := range c.progs {
			if p != nil {
				p.stop("connection closed")
				p.timer.Stop()
			}
		}
		if c.proto0 != nil {
			c.proto0.Stop()
		}
		c.out, c.spare = nil, nil
		c.closeLater = true
		close(c.done)
		return
	}
	c.state = to
	if to == connReady {
		c.serverInfoLocked()
	}
	if to == connProto0 || to == connReady {
		c.replayLocked()
	}
}

// serverInfoLocked answers a CLIENT_INFO. SERVER_INFO counts against the
// output bound like everything else: a client repeating CLIENT_INFO
// without reading is closed.
func (c *conn) serverInfoLocked() {
	if c.room() {
		c.out = AppendServerInfo(c.out, c.version, ServerVersion, c.srv.opt.ServerName)
	}
}

// closeLocked closes the connection for reason (nil or io.EOF: the peer
// closed it).
func (c *conn) closeLocked(reason error) { c.setStateLocked(connClosed, reason) }

// close closes the connection once; later calls do nothing.
func (c *conn) close(reason error) {
	c.mu.Lock()
	c.closeLocked(reason)
	c.unlock()
}

// unlock releases c.mu and then does what the locked section made due:
// wake the writer when output is queued, or close the transport and log
// why once the connection entered connClosed. Sends on wake never block
// and wake is never closed.
func (c *conn) unlock() {
	n := len(c.out)
	closeNow := c.closeLater
	c.closeLater = false
	reason := c.failed
	due := c.due && c.state != connClosed
	c.due = false
	c.mu.Unlock()
	if due {
		go c.submitDue()
	}
	if closeNow {
		c.rw.Close()
		if cs, ok := c.srv.opt.Solver.(ECMCanceler); ok {
			cs.Cancel(c)
		}
		c.logClose(reason)
		c.lim.flush()
		return
	}
	if n > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// logClose logs why the connection closed, through the server's limiter:
// a flood of short connections costs a few lines per interval.
func (c *conn) logClose(reason error) {
	var pe *ProtocolError
	l := c.srv.connLog
	switch {
	case errors.As(reason, &pe):
		l.logTo(c.log, slog.LevelWarn, "connection closed: malformed input", "offset", pe.Offset, "field", pe.Field, "reason", pe.Msg)
	case reason == nil || errors.Is(reason, io.EOF):
		l.logTo(c.log, slog.LevelInfo, "connection closed by peer")
	default:
		l.logTo(c.log, slog.LevelInfo, "connection closed", "reason", reason.Error())
	}
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
		c.unlock()
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
		return &ProtocolError{Offset: m.Offset, Field: "CLIENT_INFO version", Msg: "protocol 0 has no CLIENT_INFO (a protocol-0 client starts with a CA PMT)"}
	}
	c.mu.Lock()
	defer c.unlock()
	if c.state == connClosed {
		return nil
	}
	c.version = int(min(m.Version, MaxVersion))
	c.client = clientName(m.Name)
	c.lim.log(slog.LevelInfo, "client handshake", "client", string(m.Name), "announced", m.Version, "protocol", c.version)
	if c.proto0 != nil {
		c.proto0.Stop()
	}
	if c.state != connReady {
		c.setStateLocked(connReady, nil) // answers, then replays what programmes produced so far
		return nil
	}
	c.serverInfoLocked()
	return nil
}

// room reports whether output may be appended: the connection is open
// for output and below maxOutBuffered. Above the bound the client does
// not read, and the connection is closed.
func (c *conn) room() bool {
	switch c.state {
	case connProto0, connReady:
	default:
		return false
	}
	if len(c.out) > maxOutBuffered {
		c.closeLocked(fmt.Errorf("%w: %d bytes queued", ErrSlowClient, len(c.out)))
		return false
	}
	return true
}

// replayLocked sends what programmes started before the handshake have
// produced.
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

// armProtocol0Locked starts the wait for a CLIENT_INFO after a CA PMT
// that came first; when none comes, the connection speaks protocol 0.
func (c *conn) armProtocol0Locked() {
	if c.state != connNew || c.proto0 != nil {
		return
	}
	if _, ok := c.sink.(*netSink); !ok {
		return
	}
	wc := weak.Make(c) // a stopped timer must not keep a closed connection
	c.proto0 = time.AfterFunc(c.srv.opt.Protocol0Grace, func() {
		c := wc.Value()
		if c == nil {
			return
		}
		c.mu.Lock()
		defer c.unlock()
		if c.state == connNew {
			c.lim.log(slog.LevelInfo, "no CLIENT_INFO after a CA PMT; speaking protocol 0", "after", c.srv.opt.Protocol0Grace)
			c.setStateLocked(connProto0, nil)
		}
	})
}

func (c *conn) caPMT(m *ClientMessage) error {
	c.mu.Lock()
	defer c.unlock()
	if c.state == connClosed {
		return nil
	}
	cm := &c.capmt
	if err := ParseCAPMT(m.Body, c.opt, cm); err != nil {
		return offsetBy(err, m.Offset+int64(m.BodyOff))
	}
	c.armProtocol0Locked()
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
		c.lim.log(slog.LevelInfo, "ca_pmt_cmd_id query is not supported; programme dropped", "sid", cm.Program)
		if p != nil {
			p.stop("query")
		}
	default:
		switch {
		case p != nil:
			p.update(cm, m.MsgID)
		case lm == ListUpdate:
			c.lim.log(slog.LevelWarn, "CA PMT update for an unknown programme ignored", "sid", cm.Program, "offset", m.Offset)
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
	c.lim.log(slog.LevelWarn, "no free programme slot; CA PMT ignored", "sid", cm.Program, "slots", MaxProgrammes)
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
	c.mu.Unlock()
	c.solve(p)
}

// solve hands the programme's filled request to the solver (outside the
// connection lock: the answer may come back before Solve returns) and
// re-arms the filter to the other parity unless the answer moved the
// programme on. The caller holds submitMu.
func (c *conn) solve(p *programme) {
	c.mu.Lock()
	cur, pid := p.cur, p.filter.PID
	c.mu.Unlock()
	c.srv.opt.Solver.Solve(&p.req)
	c.mu.Lock()
	if p.active && p.armed && p.cur == cur && p.filter.PID == pid {
		p.rearm()
	}
	c.unlock()
}

// submitDue hands the due no-ECM requests to the solver, one programme at
// a time, serialised with the FILTER_DATA path by submitMu (the request
// is the programme's own and is read during Solve).
func (c *conn) submitDue() {
	c.submitMu.Lock()
	defer c.submitMu.Unlock()
	for i := 0; i < MaxProgrammes; i++ {
		c.mu.Lock()
		p := c.progs[i]
		if c.state == connClosed || p == nil || !p.fillNoECM() {
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		c.srv.opt.Solver.Solve(&p.req)
		c.mu.Lock()
		c.unlock()
	}
}

// ECMAnswered receives the solver's answers for this connection.
func (c *conn) ECMAnswered(a ECMAnswer) {
	slot, cur, gen := uint8(a.Tag>>56), int(a.Tag>>48&0xFF), uint32(a.Tag)
	if int(slot) >= MaxProgrammes {
		return
	}
	c.mu.Lock()
	defer c.unlock()
	p := c.progs[slot]
	if c.state == connClosed || p == nil || !p.active || !p.pending || p.gen != gen || p.cur != cur {
		return // late answer for a closed connection, a stopped or moved-on programme
	}
	p.ans = a
	p.answered(&p.ans)
}

// writeLoop writes queued output until the connection closes.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		if c.state == connClosed {
			c.mu.Unlock()
			return
		}
		buf := c.out
		c.out, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.rw.Write(buf)
		c.mu.Lock()
		if err != nil {
			c.closeLocked(fmt.Errorf("write: %w", err))
		} else if c.state != connClosed {
			c.spare = buf[:0]
		}
		c.unlock()
		if err != nil {
			return
		}
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

// netSink writes filter and descrambler commands back on the socket. Its
// methods run under c.mu and append only when c.room allows.
type netSink conn

func (s *netSink) conn() *conn { return (*conn)(s) }

func (s *netSink) setFilter(p *programme, f *Filter) {
	if s.conn().room() {
		s.out = AppendSetFilter(s.out, s.version, p.msgid, f)
	}
}

func (s *netSink) stopFilter(p *programme, f *Filter) {
	if s.conn().room() {
		s.out = AppendDmxStop(s.out, s.version, p.msgid, f.Adapter, f.Demux, f.Num, f.PID)
	}
}

func (s *netSink) setPID(p *programme, pid uint16, index int32) {
	if s.conn().room() {
		s.out = AppendSetPID(s.out, s.version, p.msgid, p.id.adapter, pid, index)
	}
}

func (s *netSink) setDescr(p *programme, index, parity uint32, cw []byte) {
	if s.conn().room() {
		s.out = AppendSetDescr(s.out, s.version, p.msgid, p.id.adapter, index, parity, cw)
	}
}

func (s *netSink) ecmInfo(p *programme, e *ECMInfo) {
	if s.version >= 2 && s.conn().room() {
		s.out = AppendECMInfo(s.out, s.version, p.msgid, e)
	}
}

func (s *netSink) release(*programme) {}

var _ sink = (*netSink)(nil)
var _ ECMDone = (*conn)(nil)
