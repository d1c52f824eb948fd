package cardreader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/t1"
	"satd.dev/satd/hal"
)

// BaudRounder is implemented by links that know which baud their UART
// really produces for a requested rate (divisor rounding). Speed selection
// uses it to keep the error within 2 %; links without it are taken as exact.
type BaudRounder interface {
	NearestBaud(baud int) int
}

// Counters are a reader's live counters, updated atomically.
type Counters struct {
	Exchanges, Errors                atomic.Uint64
	ColdResets, WarmResets, Removals atomic.Uint64
	Retransmits, Resynchs, WTX       atomic.Uint64
	PPSFailures, Faults              atomic.Uint64
	// IFSRefusals counts S(IFS) requests the card refused or left
	// unanswered (the link then stays at IFSD 32).
	IFSRefusals atomic.Uint64
	// CardResets counts the warm resets card systems asked for.
	CardResets atomic.Uint64
}

// session is one activated card: its ATR, the parameters in force and the
// protocol engine.
type session struct {
	port     port
	atr      *iso7816.ATR
	protocol int
	fidi     iso7816.FIDI
	timing   iso7816.Timing
	t0       t0
	t1       t1Proto
	// atrNote says what was wrong with an ATR the lenient parse accepted.
	atrNote string
}

// transmit runs one APDU through the negotiated protocol.
func (s *session) transmit(cmd, resp []byte) (int, error) {
	if s.protocol == 1 {
		return s.t1.transmit(cmd, resp)
	}
	return s.t0.transmit(cmd, resp)
}

// errPPS marks a failed PPS: the caller cold-resets and stays at defaults.
var errPPS = errors.New("PPS failed")

// errLeaveSpecific asks for a warm reset to leave specific mode.
var errLeaveSpecific = errors.New("specific mode not usable, warm reset to negotiable mode")

// activator brings a card from reset to a ready session.
type activator struct {
	slot     hal.Slot
	opts     Options
	removed  *atomic.Bool
	counters *Counters
	// stage reports progress to the lifecycle (StateATR, StatePPS).
	stage func(State)
	// edc remembers which T=1 CRC variant the card answered with.
	edc *edcMemo
}

// edcMemo remembers the T=1 CRC variant that worked for a card (by ATR),
// so the next activation of the same card starts with it.
type edcMemo struct {
	mu  sync.Mutex
	atr string
	edc t1.EDC
}

func (m *edcMemo) get(atr []byte) (t1.EDC, bool) {
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.edc, m.atr == string(atr)
}

func (m *edcMemo) set(atr []byte, e t1.EDC) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.atr, m.edc = string(atr), e
	m.mu.Unlock()
}

// activate resets the card (kind) and reads the ATR, selects and negotiates
// parameters and configures the link. A failed PPS is retried once from a
// cold reset without PPS; a specific mode the host cannot run is left with
// one warm reset.
func (a *activator) activate(ctx context.Context, kind hal.ResetKind, noPPS bool) (*session, error) {
	s, err := a.attempt(ctx, kind, noPPS)
	switch {
	case errors.Is(err, errLeaveSpecific):
		s, err = a.attempt(ctx, hal.WarmReset, noPPS)
	case errors.Is(err, errPPS):
		a.counters.PPSFailures.Add(1)
		s, err = a.attempt(ctx, hal.ColdReset, true)
	}
	return s, err
}

func (a *activator) attempt(ctx context.Context, kind hal.ResetKind, noPPS bool) (*session, error) {
	if kind == hal.WarmReset {
		a.counters.WarmResets.Add(1)
	} else {
		a.counters.ColdResets.Add(1)
	}
	if err := a.slot.Reset(ctx, kind); err != nil {
		if errors.Is(err, hal.ErrNoCard) {
			return nil, ErrCardRemoved
		}
		return nil, fmt.Errorf("%s reset: %w", kind, err)
	}
	link := a.slot.Link()
	s := &session{}
	s.port = port{link: link, slack: a.slack(link), removed: a.removed}
	s.port.reset(link.Config())
	a.stage(StateATR)
	atr, err := a.readATR(s)
	if err != nil {
		return nil, err
	}
	s.atr = atr
	o := iso7816.SelectOptions{ClockHz: a.slot.ClockHz(), MaxBaud: a.opts.MaxBaud, NoPPS: noPPS || a.opts.Deprecated}
	if r, ok := link.(BaudRounder); ok {
		o.NearestBaud = r.NearestBaud
	}
	sel, err := iso7816.SelectParameters(atr, o)
	if err != nil {
		return nil, err
	}
	if sel.WarmReset {
		if kind == hal.WarmReset {
			return nil, fmt.Errorf("%w: card stays in specific mode after warm reset", iso7816.ErrNoUsableMode)
		}
		return nil, errLeaveSpecific
	}
	if sel.PPS != nil {
		a.stage(StatePPS)
		if sel.FIDI, err = a.pps(s, *sel.PPS); err != nil {
			if errors.Is(err, ErrCardRemoved) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errPPS, err)
		}
	}
	if err := a.configure(s, sel); err != nil {
		return nil, err
	}
	return s, nil
}

// slack is the latency allowance added to waiting times: more for USB
// serial adapters, whose latency timer holds received bytes.
func (a *activator) slack(link hal.Link) time.Duration {
	if ad, ok := link.(hal.Adapter); ok && ad.USB() {
		return time.Duration(a.opts.TimeoutSlackUSB)
	}
	return time.Duration(a.opts.TimeoutSlack)
}

// readATR reads TS, decides the convention, and reads the rest of the ATR
// as long as the incremental tracker expects bytes.
func (a *activator) readATR(s *session) (*iso7816.ATR, error) {
	p := &s.port
	init := iso7816.InitialTiming(a.slot.ClockHz())
	first := max(time.Duration(a.opts.ATRTimeout), init.Clocks(40000))
	raw, err := p.readByte(first)
	switch {
	case errors.Is(err, ErrMute):
		return nil, ErrNoATR
	case err != nil && !errors.Is(err, hal.ErrParity):
		return nil, fmt.Errorf("ATR: TS: %w", err)
	}
	ts := raw
	switch {
	case raw == iso7816.TSDirect && err == nil:
	case raw == iso7816.TSInverseRaw:
		cfg := p.link.Config()
		cfg.Parity = hal.ParityOdd
		if err := p.link.Configure(cfg); err != nil {
			return nil, fmt.Errorf("ATR: switch to odd parity for inverse convention: %w", err)
		}
		p.inverse, ts = true, iso7816.TSInverse
	default:
		return nil, fmt.Errorf("%w: TS %02X (line error: %v)", iso7816.ErrATR, raw, err)
	}
	buf := make([]byte, 0, iso7816.MaxATRLen+8)
	buf = append(buf, ts)
	var tr iso7816.ATRTracker
	tr.Feed(ts)
	gap := init.ETUs(9600) // §8.1: the most between two ATR characters
	cut := false
	for {
		b, err := p.readByte(gap)
		if errors.Is(err, ErrMute) && len(buf) >= 2 {
			cut = true // the gap ends the ATR; the parse judges what arrived
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ATR byte %d: %w", len(buf), err)
		}
		buf = append(buf, b)
		if tr.Feed(b) {
			break
		}
	}
	if cut && a.opts.ATRStrict {
		return nil, fmt.Errorf("%w: ATR % X cut short by a gap over 9600 etu", iso7816.ErrATR, buf)
	}
	atr, err := iso7816.ParseATR(buf, iso7816.Strict)
	if err != nil && !a.opts.ATRStrict {
		atr, err = iso7816.ParseATR(buf, iso7816.Lenient)
	}
	if err != nil {
		return nil, fmt.Errorf("ATR % X: %w", buf, err)
	}
	if cut || len(atr.Deviations) > 0 {
		s.atrNote = atrNote(atr, cut)
		slog.Default().Warn("ATR accepted leniently", "reader", a.slot.Name(), "atr", fmt.Sprintf("% X", buf), "problem", s.atrNote)
	}
	if cut {
		// Characters still coming after the gap must not pass for the
		// answer to the first command.
		if err := p.drain(gap); err != nil {
			return nil, fmt.Errorf("ATR: %w", err)
		}
	}
	return atr, nil
}

// atrNote describes what the lenient parse accepted.
func atrNote(atr *iso7816.ATR, cut bool) string {
	var b strings.Builder
	if cut {
		fmt.Fprintf(&b, "cut short after %d bytes by a gap over 9600 etu", len(atr.Raw))
	}
	for _, d := range atr.Deviations {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// pps sends the request and validates the card's answer at the initial
// speed, within the initial waiting time.
func (a *activator) pps(s *session, req iso7816.PPS) (iso7816.FIDI, error) {
	p := &s.port
	// TC1's extra guard time applies from the first character after the
	// ATR, the PPS request included.
	cfg := p.link.Config()
	if g := iso7816.GuardETU(s.atr.N); g != cfg.GuardETU {
		cfg.GuardETU = g
		if err := p.link.Configure(cfg); err != nil {
			return 0, fmt.Errorf("PPS: guard time %d etu: %w", g, err)
		}
	}
	var out, in [6]byte
	p.waitTurn()
	if err := p.flush(); err != nil {
		return 0, err
	}
	if err := p.write(req.Append(out[:0])); err != nil {
		return 0, err
	}
	wt := iso7816.InitialTiming(a.slot.ClockHz()).InitialWaitingTime()
	if err := p.readFull(in[:2], wt, wt); err != nil {
		return 0, fmt.Errorf("PPS response: %w", err)
	}
	n := iso7816.PPSLen(in[1])
	if err := p.readFull(in[2:n], wt, wt); err != nil {
		return 0, fmt.Errorf("PPS response % X: %w", in[:2], err)
	}
	return iso7816.CheckPPSResponse(req, in[:n])
}

// configure sets the link to the selected speed, parity and guard time and
// sets up the protocol engine.
func (a *activator) configure(s *session, sel iso7816.Selection) error {
	atr := s.atr
	s.protocol, s.fidi = sel.Protocol, sel.FIDI
	s.timing = iso7816.Timing{ClockHz: a.slot.ClockHz(), F: sel.FIDI.F(), D: sel.FIDI.D()}
	link := s.port.link
	cfg := link.Config()
	cfg.Baud = s.timing.Baud()
	cfg.StopBits = 2
	cfg.GuardETU = iso7816.GuardETU(atr.N)
	cfg.Repeat = 0
	s.port.turn = t1Turnaround
	if s.protocol == 0 {
		cfg.Repeat = a.opts.T0Repeat
		s.port.turn = t0Turnaround
	}
	if err := link.Configure(cfg); err != nil {
		return fmt.Errorf("configure link for F=%d D=%d: %w", s.timing.F, s.timing.D, err)
	}
	s.port.reset(link.Config())
	switch s.protocol {
	case 0:
		s.t0 = t0{p: &s.port, wt: s.timing.WT(atr.WI), maxNulls: a.opts.T0MaxNulls}
		return nil
	case 1:
		return a.setupT1(s)
	}
	return fmt.Errorf("%w: protocol T=%d is not supported", ErrProtocol, s.protocol)
}

// setupT1 prepares the block protocol and announces IFSD.
func (a *activator) setupT1(s *session) error {
	atr := s.atr
	ifsc := atr.IFSC
	if !atr.ValidIFSC() {
		ifsc = iso7816.DefaultIFSC
	}
	edc := t1.LRC
	if atr.EDC == iso7816.EDCCRC {
		edc = t1.CRCCCID
		if a.opts.T1CRC == "x25" {
			edc = t1.CRCX25
		}
		if known, ok := a.edc.get(atr.Raw); ok {
			edc = known
		}
	}
	s.t1 = t1Proto{
		p: &s.port, edc: edc,
		bwt: s.timing.BWT(atr.BWI), cwt: s.timing.CWT(atr.CWI),
		ifsc: ifsc, atrIFSC: ifsc, ifsd: iso7816.DefaultIFSD,
		retries: a.opts.T1Retries, resynchs: a.opts.T1Resynchs,
		counters: a.counters, wtxFactor: 1,
	}
	if edc != t1.LRC {
		memo := a.edc
		s.t1.probeEDC = true
		s.t1.onEDC = func(e t1.EDC) { memo.set(atr.Raw, e) }
	}
	s.t1.log = slog.Default().With("reader", a.slot.Name())
	want := a.opts.IFSD
	if want == 0 { // OSCam: offer the card's own IFSC
		want = ifsc
	}
	if want == iso7816.DefaultIFSD {
		return nil
	}
	return s.t1.announceIFSD(byte(want))
}
