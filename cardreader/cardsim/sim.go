// Package cardsim is a byte-level ISO 7816-3 card simulator on the card side
// of a hal/haltest virtual slot. It answers resets with a configurable ATR
// (direct or inverse convention), accepts or refuses PPS, speaks T=0 or T=1
// (IFSC, chaining, WTX, RESYNCH, slow answers) and injects faults (bad EDC,
// dropped or parity-marked bytes, silence, removal mid-block). The APDU
// layer is a pluggable Personality.
package cardsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/t1"
	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// PPSMode says how the card answers a PPS request.
type PPSMode uint8

// PPS behaviours.
const (
	PPSAccept   PPSMode = iota // echo the request and switch
	PPSRefuse                  // stay silent
	PPSBadPCK                  // answer with a corrupted PCK
	PPSOmitPPS1                // confirm the protocol only; keep Fd/Dd
)

// AckMode says which T=0 procedure bytes the card uses for data transfer.
type AckMode uint8

// T=0 acknowledgement styles.
const (
	AckAll  AckMode = iota // INS: all bytes at once
	AckEach                // INS XOR FF before every single byte
	// AckOld and AckOldEach are old cards that get bit 1 of the procedure
	// byte wrong: INS XOR 01 for all bytes, INS XOR FE for each byte.
	AckOld
	AckOldEach
)

// ack returns the procedure byte and the bytes it covers (0: all) for
// the card's ACK style after INS ins.
func (m AckMode) ack(ins byte) (proc byte, step int) {
	switch m {
	case AckEach:
		return ^ins, 1
	case AckOld:
		return ins ^ 0x01, 0
	case AckOldEach:
		return ins ^ 0xFE, 1
	}
	return ins, 0
}

// IFSMode says how a T=1 card answers the host's S(IFS request).
type IFSMode uint8

// S(IFS) behaviours.
const (
	IFSConfirm IFSMode = iota // echo the request and use the size
	IFSIgnore                 // stay silent (an old card that does not know S-blocks)
	IFSRefuse                 // answer R(other error), keep IFSD 32
)

// Fault is a one-shot error injected into the card's next transmission.
type Fault uint8

// Faults, consumed one per transmitted block (T=1) or response (T=0).
const (
	FaultNone    Fault = iota
	FaultBadEDC        // corrupt the last byte of the block
	FaultDrop          // leave out one byte in the middle
	FaultParity        // send one byte with a parity error (repeated when the host signals it in T=0)
	FaultSilence       // do not send the block at all
	FaultRemove        // send half of the block, then pull the card out
)

// Config describes the simulated card.
type Config struct {
	// ATR is the logical ATR (TS 3B for direct, 3F for inverse convention).
	ATR []byte
	// ATRDelay is waited after RST before the ATR.
	ATRDelay time.Duration
	PPS      PPSMode
	// CRC selects the CRC variant when the ATR asks for a CRC.
	CRC t1.EDC
	// T0Ack, T0Nulls (NULL bytes sent before every procedure byte) and
	// T0Chunk (largest 61xx GET RESPONSE chunk, default 256) shape T=0.
	T0Ack   AckMode
	T0Nulls int
	T0Chunk int
	// T0NullGap is slept before every NULL byte and the procedure byte
	// that follows them (a card that keeps the host waiting).
	T0NullGap time.Duration
	// Delay is slept before each response (a slow card). With WTX set the
	// T=1 card first asks for that waiting time extension.
	Delay time.Duration
	WTX   byte
	// T1ZeroNS makes the T=1 card expect N(S) = 0 in every host I-block
	// (it refuses others with an R-block) and send its own I-blocks with
	// N(S) = 0, as DGCrypt cards do.
	T1ZeroNS bool
	// IFS says how the card answers S(IFS request).
	IFS IFSMode
	// Personality answers APDUs; nil means Echo{}.
	Personality Personality
	// ClockHz must equal the slot's card clock; default
	// haltest.DefaultClockHz.
	ClockHz int
}

// Counters record what the card saw, for tests.
type Counters struct {
	Resets, PPS, Commands, RBlocksIn, Resynchs, IFSReqs, WTXResps, Retransmits atomic.Int64
	// LastIFSD is the information field size the host announced.
	LastIFSD atomic.Int64
}

// Sim is a simulated card. Create it with New and run Run in a goroutine
// of the same synctest bubble as the slot.
type Sim struct {
	card *haltest.Card
	cfg  Config
	atr  *iso7816.ATR
	C    Counters

	mu     sync.Mutex
	faults []Fault
	mute   bool

	// link state, reset by every reset
	inverse  bool
	protocol int
	fidi     iso7816.FIDI
	ppsOK    bool // a PPS may still come
	edc      t1.EDC
	rx       [512]byte
	rxr, rxw int
	// T=1 state
	ns, nr     uint8
	lastNS     uint8
	ifsd       int
	last       []byte // last block sent, for retransmission
	chain      []byte // response still to send
	sending    bool   // in a response chain, waiting for R
	apdu       []byte // command being received
	resp       []byte
	tx         []byte
	hdr        [5]byte
	pending    []byte // T=0 data for GET RESPONSE
	pendingBuf []byte
	one        [1]byte
}

// New returns a simulator for card with cfg; the ATR must parse leniently.
func New(card *haltest.Card, cfg Config) (*Sim, error) {
	atr, err := iso7816.ParseATR(cfg.ATR, iso7816.Lenient)
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	if cfg.Personality == nil {
		cfg.Personality = Echo{}
	}
	if cfg.T0Chunk <= 0 || cfg.T0Chunk > 256 {
		cfg.T0Chunk = 256
	}
	if cfg.ClockHz <= 0 {
		cfg.ClockHz = haltest.DefaultClockHz
	}
	if cfg.CRC == t1.LRC {
		cfg.CRC = t1.CRCCCID
	}
	return &Sim{
		card: card, cfg: cfg, atr: atr,
		last: make([]byte, 0, t1.MaxBlockLen), apdu: make([]byte, 0, 4096), resp: make([]byte, 4096),
		tx: make([]byte, 0, 1024), pendingBuf: make([]byte, 0, 4096),
	}, nil
}

// Inject queues faults for the card's next transmissions, in order.
func (s *Sim) Inject(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// SetMute makes the card stop answering after its ATR (a dead card).
func (s *Sim) SetMute(m bool) {
	s.mu.Lock()
	s.mute = m
	s.mu.Unlock()
}

func (s *Sim) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return FaultNone
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

func (s *Sim) muted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mute
}

// errReset unwinds a handler when a reset or power change is pending.
var errReset = errors.New("cardsim: reset")

// Run serves the card until ctx ends or the slot is closed.
func (s *Sim) Run(ctx context.Context) error {
	active := false
	for ctx.Err() == nil {
		if !active {
			if err := s.waitSignal(ctx); err != nil {
				return err
			}
			active = true
			continue
		}
		err := s.serveOne()
		switch {
		case err == nil:
		case errors.Is(err, errReset), errors.Is(err, haltest.ErrSignal):
			active = false
		case errors.Is(err, os.ErrClosed):
			return nil
		case errors.Is(err, hal.ErrNoCard), errors.Is(err, hal.ErrFault), errors.Is(err, haltest.ErrInactive):
			active = false
		}
	}
	return ctx.Err()
}

// waitSignal blocks until a reset, answers it with the ATR, or returns on
// ctx/close. While the card is absent it polls.
func (s *Sim) waitSignal(ctx context.Context) error {
	for ctx.Err() == nil {
		if sig, ok := s.card.NextSignal(); ok {
			if sig.Kind == haltest.SignalDeactivate {
				continue
			}
			err := s.answerReset()
			if errors.Is(err, haltest.ErrInactive) || errors.Is(err, hal.ErrNoCard) || errors.Is(err, hal.ErrFault) {
				continue // deactivated again before the ATR went out: wait for the next reset
			}
			return err
		}
		var b [1]byte
		_, err := s.card.Read(b[:])
		switch {
		case errors.Is(err, haltest.ErrSignal):
		case errors.Is(err, os.ErrClosed):
			return err
		case err != nil:
			time.Sleep(time.Millisecond) // absent or faulted: wait for a signal
		}
	}
	return ctx.Err()
}

// answerReset resets the link state and sends the ATR.
func (s *Sim) answerReset() error {
	s.C.Resets.Add(1)
	s.inverse = s.atr.Convention == iso7816.Inverse
	s.fidi, s.ppsOK = iso7816.DefaultFIDI, !s.atr.Specific
	s.protocol = s.atr.FirstProtocol
	s.edc = t1.LRC
	if s.atr.EDC == iso7816.EDCCRC {
		s.edc = s.cfg.CRC
	}
	s.rxr, s.rxw = 0, 0
	s.ns, s.nr, s.lastNS, s.ifsd = 0, 0, 1, iso7816.DefaultIFSD
	s.last, s.chain, s.sending, s.apdu, s.pending = s.last[:0], nil, false, s.apdu[:0], nil
	if r, ok := s.cfg.Personality.(Resetter); ok {
		r.Reset()
	}
	if s.cfg.ATRDelay > 0 {
		time.Sleep(s.cfg.ATRDelay)
	}
	// TS goes first; the rest follows one character later, after the host
	// had the chance to switch parity for the inverse convention.
	if err := s.send(s.cfg.ATR[:1]); err != nil {
		return err
	}
	time.Sleep(12 * s.etu())
	if err := s.send(s.cfg.ATR[1:]); err != nil {
		return err
	}
	if s.atr.Specific { // specific mode applies right after the ATR
		s.protocol = s.atr.SpecificProtocol
		if !s.atr.ImplicitFD {
			s.fidi = s.atr.TA1
		}
	}
	return nil
}

// etu returns the card's current elementary time unit.
func (s *Sim) etu() time.Duration {
	return iso7816.Timing{ClockHz: s.clockHz(), F: s.fidi.F(), D: s.fidi.D()}.ETUs(1)
}

func (s *Sim) clockHz() int { return s.cfg.ClockHz }

// serveOne handles the next command from the host.
func (s *Sim) serveOne() error {
	b, err := s.read(0)
	if err != nil {
		return err
	}
	if s.muted() {
		return nil
	}
	if s.ppsOK && b == iso7816.PPSS {
		return s.servePPS()
	}
	s.ppsOK = false
	if s.protocol == 1 {
		return s.serveT1(b)
	}
	return s.serveT0(b)
}

// servePPS answers a PPS request according to cfg.PPS.
func (s *Sim) servePPS() error {
	s.C.PPS.Add(1)
	var req [6]byte
	req[0] = iso7816.PPSS
	if err := s.readFull(req[1:2]); err != nil {
		return err
	}
	n := iso7816.PPSLen(req[1])
	if err := s.readFull(req[2:n]); err != nil {
		return err
	}
	s.ppsOK = false
	p, err := iso7816.ParsePPS(req[:n])
	if err != nil || s.cfg.PPS == PPSRefuse {
		return nil // silence: the host must time out and reset
	}
	var out [6]byte
	switch s.cfg.PPS {
	case PPSOmitPPS1:
		p.HasPPS1 = false
	case PPSBadPCK:
		resp := p.Append(out[:0])
		resp[len(resp)-1] ^= 0x55
		return s.send(resp)
	}
	if err := s.send(p.Append(out[:0])); err != nil {
		return err
	}
	s.protocol = p.Protocol
	if p.HasPPS1 {
		s.fidi = p.PPS1
	}
	return nil
}

// read returns the next logical byte from the host; timeout 0 waits
// forever.
func (s *Sim) read(timeout time.Duration) (byte, error) {
	if s.rxr == s.rxw {
		dl := time.Time{}
		if timeout > 0 {
			dl = time.Now().Add(timeout)
		}
		s.card.SetReadDeadline(dl)
		n, err := s.card.Read(s.rx[:])
		if err != nil {
			return 0, err
		}
		s.rxr, s.rxw = 0, n
	}
	b := s.rx[s.rxr]
	s.rxr++
	if s.inverse {
		b = iso7816.InverseByte(b)
	}
	return b, nil
}

// hostByteTimeout bounds the gap between bytes of one host message.
const hostByteTimeout = 2 * time.Second

func (s *Sim) readFull(p []byte) error {
	for i := range p {
		b, err := s.read(hostByteTimeout)
		if err != nil {
			return err
		}
		p[i] = b
	}
	return nil
}

// send writes logical bytes to the host as the line would deliver them:
// inverse-convention bytes are transformed, and bytes arrive marked with a
// parity error when the host's parity does not match the convention, or a
// framing error when the host's baud differs from the card's by over 5 %.
func (s *Sim) send(p []byte) error {
	cfg := s.card.LineConfig()
	mark := error(nil)
	if cfg.Parity != hal.ParityNone && (cfg.Parity == hal.ParityOdd) != s.inverse {
		mark = hal.ErrParity
	}
	want := iso7816.Timing{ClockHz: s.cfg.ClockHz, F: s.fidi.F(), D: s.fidi.D()}.Baud()
	if d := cfg.Baud - want; d*20 > want || -d*20 > want {
		mark = hal.ErrFraming
	}
	if mark == nil && !s.inverse {
		_, err := s.card.Write(p)
		return err
	}
	for _, b := range p {
		if s.inverse {
			b = iso7816.InverseByte(b)
		}
		var err error
		if mark != nil {
			err = s.card.WriteMarked(b, mark)
		} else {
			s.one[0] = b
			_, err = s.card.Write(s.one[:])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendFaulty sends p after applying the next injected fault.
func (s *Sim) sendFaulty(p []byte) error {
	switch s.nextFault() {
	case FaultBadEDC:
		s.tx = append(s.tx[:0], p...)
		s.tx[len(s.tx)-1] ^= 0xA5
		return s.send(s.tx)
	case FaultDrop:
		s.tx = append(append(s.tx[:0], p[:len(p)/2]...), p[len(p)/2+1:]...)
		return s.send(s.tx)
	case FaultParity:
		i := len(p) / 2
		if err := s.send(p[:i]); err != nil {
			return err
		}
		b := p[i]
		if s.inverse {
			b = iso7816.InverseByte(b)
		}
		// A host that sends the T=0 error signal gets the byte repeated.
		refused, err := s.card.WriteChar(b^0x01, true)
		if err != nil {
			return err
		}
		if refused {
			if _, err := s.card.WriteChar(b, false); err != nil {
				return err
			}
		}
		return s.send(p[i+1:])
	case FaultSilence:
		return nil
	case FaultRemove:
		if err := s.send(p[:len(p)/2]); err != nil {
			return err
		}
		s.card.Remove()
		return hal.ErrNoCard
	}
	return s.send(p)
}

// slow waits the configured answer delay.
func (s *Sim) slow() {
	if s.cfg.Delay > 0 {
		time.Sleep(s.cfg.Delay)
	}
}
