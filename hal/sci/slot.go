package sci

import (
	"context"
	"fmt"
	"sync"
	"time"

	"satd.dev/satd/hal"
)

// Clock says what the fs parameter means on a board.
type Clock uint8

// Clock behaviours: fs is the card clock in MHz on most boxes; on boxes
// whose card clock is divided from the 27 MHz system clock it is the
// divider index, the clock being 27 MHz / (fs + 1).
const (
	ClockMHz Clock = iota
	ClockPLL
)

// pllRefHz is the system clock PLL boards divide.
const pllRefHz = 27_000_000

// ParseClock reads a board's sci_clock setting: "mhz" (or empty) or "pll".
func ParseClock(s string) (Clock, error) {
	switch s {
	case "", "mhz":
		return ClockMHz, nil
	case "pll":
		return ClockPLL, nil
	}
	return 0, fmt.Errorf("sci clock %q: want mhz or pll", s)
}

// Config describes one sci slot.
type Config struct {
	Name    string
	Variant Variant
	Clock   Clock
	// ClockHz is the card clock; on PLL boards the nearest clock the
	// divider gives is used.
	ClockHz int
	// Poll is the card-detect polling period; 0 means the caller calls
	// Poll itself (tests with transcripts).
	Poll time.Duration
	// ATRTimeout bounds the wait for the first ATR byte after reset.
	ATRTimeout time.Duration
	// Layout is the C ABI of the parameter struct; zero means HostLayout.
	Layout Layout
}

// Timing of the activation sequence (the drivers' reference behaviour).
const (
	settleParams = 150 * time.Millisecond // after setting parameters, before reset
	settleReset  = 50 * time.Millisecond  // after reset, before reading the ATR
	maxATRRead   = 40                     // bytes read as ATR at most (33 + slack)
	initialETU   = 372
	initialWWT   = 9600 // initial waiting time in ETU (ISO 7816-3 §7.2)
	defaultATRTO = time.Second
)

// Slot is a card slot of the kernel smartcard driver: hal.Slot and its
// hal.Link in one, since the driver moves the card's bytes itself.
type Slot struct {
	cfg    Config
	dev    Device
	layout Layout
	fs     uint32
	clock  int // card clock in Hz
	events chan hal.Event
	stop   chan struct{}
	// closeOnce makes concurrent Close calls close stop once.
	closeOnce sync.Once
	done      chan struct{}

	mu      sync.Mutex // guards present and the ioctl buffers
	present bool
	params  Params
	arg     [128]byte // ioctl argument buffer
	word    [4]byte

	lc       hal.LineConfig
	deadline time.Time
	atr      []byte // ATR bytes read during Reset, served first by Read
	atrBuf   [maxATRRead]byte
}

// Compile-time interface checks.
var (
	_ hal.Slot             = (*Slot)(nil)
	_ hal.Link             = (*Slot)(nil)
	_ hal.WorkParamsSetter = (*Slot)(nil)
)

// New returns a slot on dev and reads whether a card is present. With
// cfg.Poll set, a goroutine polls card presence until Close.
func New(cfg Config, dev Device) (*Slot, error) {
	if cfg.Layout == (Layout{}) {
		cfg.Layout = HostLayout
	}
	if cfg.ATRTimeout <= 0 {
		cfg.ATRTimeout = defaultATRTO
	}
	if cfg.ClockHz < 1_000_000 {
		return nil, fmt.Errorf("sci slot %s: card clock %d Hz is below 1 MHz", cfg.Name, cfg.ClockHz)
	}
	s := &Slot{cfg: cfg, dev: dev, layout: cfg.Layout, events: make(chan hal.Event, 4),
		stop: make(chan struct{}), done: make(chan struct{})}
	s.fs, s.clock = clockParams(cfg)
	s.lc = s.initialConfig()
	// The first reading is the initial state, not an insertion.
	v, err := s.wordIoctl(reqCardPresent, 0)
	if err != nil {
		return nil, fmt.Errorf("sci slot %s: %w", cfg.Name, err)
	}
	s.present = v != 0
	if cfg.Poll > 0 {
		go s.pollLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// clockParams returns fs and the card clock in Hz.
func clockParams(c Config) (uint32, int) {
	if c.Clock == ClockPLL {
		div := max((pllRefHz+c.ClockHz/2)/c.ClockHz, 1) // reference / clock, rounded
		return uint32(div - 1), pllRefHz / div
	}
	return uint32(c.ClockHz / 1_000_000), c.ClockHz
}

func (s *Slot) initialConfig() hal.LineConfig {
	return hal.LineConfig{Baud: s.clock / initialETU, Parity: hal.ParityEven, StopBits: 2}
}

// Name returns the slot's configured name.
func (s *Slot) Name() string { return s.cfg.Name }

// ClockHz returns the card clock.
func (s *Slot) ClockHz() int { return s.clock }

// Link returns the slot itself: the driver's read/write is the card line.
func (s *Slot) Link() hal.Link { return s }

// Events delivers card insertions and removals; closed by Close.
func (s *Slot) Events() <-chan hal.Event { return s.events }

// Present returns the card-detect state of the last Poll.
func (s *Slot) Present() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.present, nil
}

// Poll asks the driver whether a card is present and reports a change as
// an event.
func (s *Slot) Poll() (bool, error) {
	s.mu.Lock()
	v, err := s.wordIoctl(reqCardPresent, 0)
	if err != nil {
		s.mu.Unlock()
		return false, err
	}
	now, was := v != 0, s.present
	s.present = now
	s.mu.Unlock()
	if now != was {
		kind := hal.CardRemoved
		if now {
			kind = hal.CardInserted
		}
		select {
		case s.events <- hal.Event{Kind: kind, At: time.Now()}:
		default: // the reader re-reads Present when it wakes
		}
	}
	return now, nil
}

func (s *Slot) pollLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Poll() // a failing ioctl keeps the last state; Reset reports it
		}
	}
}

// wordIoctl runs a request whose argument is a uint32 and returns the
// value the driver left in it. Callers hold s.mu.
func (s *Slot) wordIoctl(r request, v uint32) (uint32, error) {
	o := s.layout.order()
	o.PutUint32(s.word[:], v)
	if err := s.dev.Ioctl(r.name, r.number(s.cfg.Variant, sizeWord, s.layout), s.word[:]); err != nil {
		return 0, err
	}
	return o.Uint32(s.word[:]), nil
}

// setParams sends p with SET_PARAMETERS. Callers hold s.mu.
func (s *Slot) setParams(p Params) error {
	n := s.layout.ParamsSize()
	s.layout.Encode(p, s.arg[:n])
	if err := s.dev.Ioctl(reqSetParams.name, reqSetParams.number(s.cfg.Variant, n, s.layout), s.arg[:n]); err != nil {
		return err
	}
	s.params = p
	return nil
}

// Params returns the parameters last set.
func (s *Slot) Params() Params {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params
}

// Reset activates the card: initial parameters (T=0, ETU 372, EGT 0, fs
// from the clock), 150 ms, RESET, 50 ms, the ATR bytes read with a timeout,
// then ATR_READY. The ATR bytes are served by the following Reads. Cold
// and warm resets run the same sequence: the driver's RESET is its only
// reset.
func (s *Slot) Reset(ctx context.Context, _ hal.ResetKind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.present {
		return fmt.Errorf("sci slot %s: %w", s.cfg.Name, hal.ErrNoCard)
	}
	s.atr, s.lc, s.deadline = nil, s.initialConfig(), time.Time{}
	p := Params{T: 0, FS: s.fs, ETU: initialETU, WWT: initialWWT, EGT: 0}
	if err := s.setParams(p); err != nil {
		return s.fail(err)
	}
	if err := sleep(ctx, settleParams); err != nil {
		return err
	}
	if _, err := s.wordIoctl(reqReset, 1); err != nil {
		return s.fail(err)
	}
	if err := sleep(ctx, settleReset); err != nil {
		return err
	}
	if err := s.readATR(); err != nil {
		return s.fail(err)
	}
	if _, err := s.wordIoctl(reqATRReady, 1); err != nil {
		return s.fail(err)
	}
	return nil
}

// readATR reads what the card sends after reset until the line has been
// quiet for the initial waiting time (9600 initial ETU): hal does not know
// an ATR's structure, so silence ends it. No byte at all is no error here;
// the caller's read of the first ATR byte times out and says so.
func (s *Slot) readATR() error {
	n := 0
	wait := s.cfg.ATRTimeout
	gap := time.Duration(initialWWT*initialETU) * time.Second / time.Duration(s.clock)
	for n < len(s.atrBuf) {
		m, err := s.dev.Read(s.atrBuf[n:], time.Now().Add(wait))
		if err == hal.ErrTimeout {
			break
		}
		if err != nil {
			return err
		}
		n += m
		wait = gap
	}
	s.atr = s.atrBuf[:n]
	return nil
}

// fail maps a driver error while the card is gone to hal.ErrNoCard.
func (s *Slot) fail(err error) error {
	if v, perr := s.wordIoctl(reqCardPresent, 0); perr == nil && v == 0 {
		s.present = false
		return fmt.Errorf("sci slot %s: %w (%v)", s.cfg.Name, hal.ErrNoCard, err)
	}
	return fmt.Errorf("sci slot %s: %w", s.cfg.Name, err)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Deactivate asks the driver to power the card down.
func (s *Slot) Deactivate(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.atr = nil
	if _, err := s.wordIoctl(reqDeactivate, 0); err != nil {
		return fmt.Errorf("sci slot %s: %w", s.cfg.Name, err)
	}
	return nil
}

// Close stops polling and closes the device.
func (s *Slot) Close() error {
	closing := false
	s.closeOnce.Do(func() { closing = true; close(s.stop) })
	if !closing {
		return nil // closed before, or by a concurrent Close
	}
	<-s.done
	close(s.events)
	return s.dev.Close()
}

// Write sends p to the card.
func (s *Slot) Write(p []byte) (int, error) {
	n, err := s.dev.Write(p)
	if err != nil {
		return n, s.ioErr(err)
	}
	return n, nil
}

// Read returns buffered ATR bytes first, then what the driver delivers
// before the read deadline.
func (s *Slot) Read(p []byte) (int, error) {
	s.mu.Lock()
	if len(s.atr) > 0 {
		n := copy(p, s.atr)
		s.atr = s.atr[n:]
		s.mu.Unlock()
		return n, nil
	}
	dl := s.deadline
	s.mu.Unlock()
	n, err := s.dev.Read(p, dl)
	if err != nil && err != hal.ErrTimeout {
		return n, s.ioErr(err)
	}
	return n, err
}

// ioErr marks a read or write error of a removed card with hal.ErrNoCard.
func (s *Slot) ioErr(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail(err)
}

// SetReadDeadline sets the deadline of the following Reads.
func (s *Slot) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

// Configure takes the speed and guard time: the driver gets ETU = f/baud
// clock cycles and EGT = the guard time. Parity and stop bits are the
// driver's business (it runs the character frame).
func (s *Slot) Configure(c hal.LineConfig) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("sci slot %s: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params
	p.ETU = uint32((s.clock + c.Baud/2) / c.Baud)
	p.EGT = uint32(c.GuardETU)
	if p != s.params {
		if err := s.setParams(p); err != nil {
			return s.fail(err)
		}
	}
	s.lc = c
	return nil
}

// Config returns the configuration in force.
func (s *Slot) Config() hal.LineConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lc
}

// Flush drops buffered ATR bytes; the driver has no receive queue to drop
// that a timed read would not also drain.
func (s *Slot) Flush() error {
	s.mu.Lock()
	s.atr = nil
	s.mu.Unlock()
	return nil
}

// SetWorkParams sets the parameters negotiated after the ATR: T, ETU =
// F/D, the waiting times in ETU and EGT = N.
func (s *Slot) SetWorkParams(w hal.WorkParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params
	p.T = uint8(w.Protocol)
	p.FS = s.fs
	p.ETU = uint32(w.F / max(w.D, 1))
	p.WWT, p.CWT, p.BWT, p.EGT = uint32(w.WWT), uint32(w.CWT), uint32(w.BWT), uint32(w.EGT)
	p.Check = 1
	if w.CRC {
		p.Check = 2
	}
	if err := s.setParams(p); err != nil {
		return s.fail(err)
	}
	return nil
}
