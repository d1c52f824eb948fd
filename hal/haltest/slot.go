package haltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"satd.dev/satd/hal"
)

// SignalKind is a change of the card's power or reset line, as seen by the
// card.
type SignalKind uint8

// Signal kinds.
const (
	// SignalColdReset: the card was powered (or power-cycled) and RST was
	// released. The card should answer with its ATR.
	SignalColdReset SignalKind = iota + 1
	// SignalWarmReset: RST was pulsed low with power and clock kept. The
	// card should answer with its ATR.
	SignalWarmReset
	// SignalDeactivate: RST low, then power off. The card loses all state.
	SignalDeactivate
)

func (k SignalKind) String() string {
	switch k {
	case SignalColdReset:
		return "cold reset"
	case SignalWarmReset:
		return "warm reset"
	case SignalDeactivate:
		return "deactivate"
	}
	return "signal?"
}

// Signal is one power or reset change delivered to the card side.
type Signal struct {
	Kind SignalKind
	// At is when the change took effect (time.Now of the host call).
	At time.Time
	// Config is the host's line configuration when the signal was sent.
	// After a reset it is the initial frame: ClockHz/372 baud, 8E2.
	Config hal.LineConfig
}

// ErrSignal is returned by Card.Read when a power or reset Signal is
// pending; fetch it with Card.NextSignal and act on it before reading on.
var ErrSignal = errors.New("haltest: power or reset signal pending")

// ErrInactive is returned by Card.Write when the card is not powered with
// RST released: a real card cannot talk then, so the bytes would be lost.
var ErrInactive = errors.New("haltest: card not active")

// DefaultClockHz is the card clock of a virtual slot when SlotOptions
// leaves it zero (3.5712 MHz, so the initial baud is 9600).
const DefaultClockHz = 3_571_200

// SlotOptions configures NewSlot.
type SlotOptions struct {
	// Name is the slot name returned by Slot.Name. Default "virtual".
	Name string
	// ClockHz is the card clock f. Default DefaultClockHz.
	ClockHz int
	// Echo says whether the virtual line is single-wire: every host byte
	// comes back. It becomes LineConfig.Echo after each reset.
	Echo bool
	// Empty starts the slot without a card; call Card.Insert later.
	Empty bool
	// ActivationDelay is slept by Reset between power-on and RST release
	// (and as the RST-low time of a warm reset). Zero means none.
	ActivationDelay time.Duration
	// Timed makes the line take time, character by character: a character
	// occupies the line for 10 etu (start, 8 data, parity) and reaches the
	// other side when it is complete; the next one in the same direction
	// starts no earlier than 12 etu (card) or 12 + GuardETU etu (host,
	// 11 with one stop bit) after it. Every character's start is recorded
	// (Card.Trace), with collisions of the two directions marked.
	Timed bool
	// ErrorSignal gives the host a smartcard-mode UART that sends the T=0
	// error signal itself: with LineConfig.Repeat set, a character the card
	// sends with a parity error (Card.WriteChar) is refused and the card
	// repeats it. Without it the host receives the character marked.
	ErrorSignal bool
}

// Char is one character on a timed line (SlotOptions.Timed).
type Char struct {
	// At is when its start bit began.
	At time.Time
	// ETU is the elementary time unit it was sent with.
	ETU time.Duration
	B   byte
	// FromCard tells the direction.
	FromCard bool
	// Refused says the receiver answered with the error signal (T=0).
	Refused bool
	// Bad says the receiver saw a parity error (refused or marked).
	Bad bool
	// Collision says the other side was sending when this one started.
	Collision bool
}

func (c Char) String() string {
	dir := "host"
	if c.FromCard {
		dir = "card"
	}
	flags := ""
	if c.Bad {
		flags += " bad"
	}
	if c.Refused {
		flags += " refused"
	}
	if c.Collision {
		flags += " COLLISION"
	}
	return fmt.Sprintf("%s %02X%s", dir, c.B, flags)
}

// Slot is the host side of an in-process virtual card slot. It implements
// hal.Slot and is its own hal.Link. Create it with NewSlot inside the
// testing/synctest bubble that uses it: its timers and channels then run on
// the bubble's fake clock.
//
// Behaviour of the Link side:
//   - Write delivers bytes to the Card. With GuardETU in 1..254 it delivers
//     them one at a time, sleeping (character time + GuardETU) etu between
//     bytes with time.Sleep, so pacing is visible on the card side; otherwise
//     all bytes arrive at once. With Echo set, each byte's echo is checked
//     (see Card.SetEchoFault) and a mismatch returns an error wrapping
//     hal.ErrEcho.
//   - Read returns bytes the Card wrote. A byte written with WriteMarked is
//     delivered alone with hal.ErrParity or hal.ErrFraming. Read fails with
//     hal.ErrNoCard when no card is inserted or the card is removed while it
//     waits, with hal.ErrFault on Card.Fault, and with hal.ErrTimeout at the
//     read deadline.
//
// One goroutine at a time may Read; Write, Read and Control calls may run
// concurrently. Read and Write do not allocate in steady state.
type Slot struct {
	w *wire
}

// Card is the card side of a virtual slot, for byte-level card simulators.
// One goroutine at a time may call Read.
type Card struct {
	w *wire
}

var (
	_ hal.Slot           = (*Slot)(nil)
	_ hal.Link           = (*Slot)(nil)
	_ hal.ErrorSignaller = (*Slot)(nil)
)

// SignalsErrors reports SlotOptions.ErrorSignal.
func (s *Slot) SignalsErrors() bool { return s.w.errSignal }

// wire is the state shared by both ends.
type wire struct {
	name      string
	clockHz   int
	lineEcho  bool
	actDelay  time.Duration
	events    chan hal.Event
	hostWake  chan struct{}
	cardWake  chan struct{}
	hostTimer *time.Timer
	cardTimer *time.Timer

	mu          sync.Mutex
	present     bool
	powered     bool
	active      bool // powered with RST released
	fault       bool
	closed      bool
	cfg         hal.LineConfig
	hostDL      time.Time
	cardDL      time.Time
	toHost      byteQueue
	toCard      byteQueue
	signals     []Signal
	hook        func(Signal)
	echoFault   func(sent byte) (echo byte, ok bool)
	resets      int
	written     int
	lastHostTx  time.Time
	firstHostTx time.Time

	timed     bool
	errSignal bool
	rxError   func(b byte) bool
	cardSig   bool // the card sends the T=0 error signal
	trace     []Char
	hostFree  time.Time // earliest start of the next host character
	cardFree  time.Time // earliest start of the next card character
	hostBusy  time.Time // end of the host character on the line
	cardBusy  time.Time // end of the card character on the line
}

// NewSlot returns the two ends of a new virtual slot.
func NewSlot(o SlotOptions) (*Slot, *Card) {
	if o.Name == "" {
		o.Name = "virtual"
	}
	if o.ClockHz <= 0 {
		o.ClockHz = DefaultClockHz
	}
	w := &wire{
		name:      o.Name,
		clockHz:   o.ClockHz,
		lineEcho:  o.Echo,
		actDelay:  o.ActivationDelay,
		events:    make(chan hal.Event, 64),
		hostWake:  make(chan struct{}, 1),
		cardWake:  make(chan struct{}, 1),
		hostTimer: stoppedTimer(),
		cardTimer: stoppedTimer(),
		present:   !o.Empty,
		timed:     o.Timed,
		errSignal: o.ErrorSignal,
		toHost:    byteQueue{data: make([]byte, 0, 512), marks: make([]uint8, 0, 512)},
		toCard:    byteQueue{data: make([]byte, 0, 512), marks: make([]uint8, 0, 512)},
	}
	w.cfg = w.initialConfig()
	return &Slot{w}, &Card{w}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (w *wire) initialConfig() hal.LineConfig {
	return hal.LineConfig{Baud: w.clockHz / 372, Parity: hal.ParityEven, StopBits: 2, Echo: w.lineEcho}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Name returns the configured slot name.
func (s *Slot) Name() string { return s.w.name }

// Link returns the slot itself, which implements hal.Link.
func (s *Slot) Link() hal.Link { return s }

// ClockHz returns the configured card clock.
func (s *Slot) ClockHz() int { return s.w.clockHz }

// Events returns the channel of card-detect and fault events. It holds up
// to 64 undelivered events; older ones are never dropped, newer ones are
// dropped when it is full. Close closes it.
func (s *Slot) Events() <-chan hal.Event { return s.w.events }

// Present reports whether a card is inserted.
func (s *Slot) Present() (bool, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, os.ErrClosed
	}
	return w.present, nil
}

// Reset performs a cold or warm reset and leaves the link flushed at the
// initial frame. A warm reset of an unpowered card fails.
func (s *Slot) Reset(ctx context.Context, kind hal.ResetKind) error {
	w := s.w
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	err := w.insertedLocked()
	if err == nil && kind == hal.WarmReset && !w.powered {
		err = fmt.Errorf("reset slot %s: warm reset with the card unpowered", w.name)
	}
	if err == nil {
		w.powered, w.active, w.fault = true, false, false
		w.cfg = w.initialConfig()
		w.toHost.reset()
		w.toCard.reset()
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	time.Sleep(w.actDelay)
	if err := ctx.Err(); err != nil {
		return err
	}
	sk := SignalColdReset
	if kind == hal.WarmReset {
		sk = SignalWarmReset
	}
	w.mu.Lock()
	if err := w.usableLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	w.active = true
	w.resets++
	w.toHost.reset()
	w.mu.Unlock()
	w.signal(sk)
	return nil
}

// Deactivate powers the card down.
func (s *Slot) Deactivate(ctx context.Context) error {
	w := s.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return os.ErrClosed
	}
	was := w.powered
	w.powered, w.active = false, false
	w.mu.Unlock()
	if was {
		w.signal(SignalDeactivate)
	}
	return nil
}

// Close closes the Events channel and makes pending and later Reads on both
// sides fail with os.ErrClosed.
func (s *Slot) Close() error {
	w := s.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return os.ErrClosed
	}
	w.closed = true
	close(w.events)
	w.mu.Unlock()
	wake(w.hostWake)
	wake(w.cardWake)
	return nil
}

// usableLocked returns why the card cannot be driven, or nil.
func (w *wire) usableLocked() error {
	if err := w.insertedLocked(); err != nil {
		return err
	}
	if w.fault {
		return hal.ErrFault
	}
	return nil
}

// insertedLocked returns why the slot cannot be reset, or nil.
func (w *wire) insertedLocked() error {
	switch {
	case w.closed:
		return os.ErrClosed
	case !w.present:
		return hal.ErrNoCard
	}
	return nil
}

func (w *wire) signal(k SignalKind) {
	w.mu.Lock()
	sig := Signal{Kind: k, At: time.Now(), Config: w.cfg}
	w.signals = append(w.signals, sig)
	hook := w.hook
	w.mu.Unlock()
	wake(w.cardWake)
	if hook != nil {
		hook(sig)
	}
}

func (w *wire) event(k hal.EventKind) {
	// Caller holds w.mu, so Close cannot close the channel under us.
	if w.closed {
		return
	}
	select {
	case w.events <- hal.Event{Kind: k, At: time.Now()}:
	default:
	}
}

// Configure changes the host's line configuration; the card sees it through
// Card.LineConfig.
func (s *Slot) Configure(c hal.LineConfig) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("configure slot %s: %w", s.w.name, err)
	}
	s.w.mu.Lock()
	s.w.cfg = c
	s.w.mu.Unlock()
	return nil
}

// Config returns the configuration in force.
func (s *Slot) Config() hal.LineConfig {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.cfg
}

// Flush discards bytes the card sent that the host has not read.
func (s *Slot) Flush() error {
	s.w.mu.Lock()
	s.w.toHost.reset()
	s.w.mu.Unlock()
	return nil
}

// SetReadDeadline sets the host's read deadline.
func (s *Slot) SetReadDeadline(t time.Time) error {
	s.w.mu.Lock()
	s.w.hostDL = t
	s.w.mu.Unlock()
	return nil
}

// CharETU returns the length of one character of c in etu: start bit, 8
// data bits, parity bit if any, and the stop bits.
func CharETU(c hal.LineConfig) int {
	n := 1 + 8 + c.StopBits
	if c.Parity != hal.ParityNone {
		n++
	}
	return n
}

// Write sends p to the card; see the Slot doc for pacing and echo.
func (s *Slot) Write(p []byte) (int, error) {
	w := s.w
	w.mu.Lock()
	cfg := w.cfg
	w.mu.Unlock()
	if w.timed {
		return w.writeTimed(p, cfg)
	}
	paced := cfg.GuardETU > 0 && cfg.GuardETU < 255
	gap := time.Duration(CharETU(cfg)+cfg.GuardETU) * cfg.ETU()
	for i, b := range p {
		if paced && i > 0 {
			time.Sleep(gap)
		}
		w.mu.Lock()
		if err := w.usableLocked(); err != nil {
			w.mu.Unlock()
			return i, err
		}
		w.toCard.push(b, markNone)
		w.written++
		now := time.Now()
		if w.firstHostTx.IsZero() {
			w.firstHostTx = now
		}
		w.lastHostTx = now
		echoFault := w.echoFault
		w.mu.Unlock()
		wake(w.cardWake)
		if cfg.Echo && echoFault != nil {
			if e, ok := echoFault(b); !ok {
				return i + 1, fmt.Errorf("write slot %s: no echo of byte %d (%#02x): %w", w.name, i, b, hal.ErrEcho)
			} else if e != b {
				return i + 1, fmt.Errorf("write slot %s: echo %#02x of byte %d (%#02x): %w", w.name, e, i, b, hal.ErrEcho)
			}
		}
	}
	return len(p), nil
}

// etus returns n etu at the configured speed.
func etus(cfg hal.LineConfig, n int) time.Duration { return time.Duration(n) * cfg.ETU() }

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleepUntil sleeps until t on the bubble's clock.
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// hostGap is the least distance between the starts of two host
// characters: 12 etu + N, or 11 etu with one stop bit (T=1, N = 255).
func hostGap(cfg hal.LineConfig) int {
	if cfg.StopBits == 1 {
		return 11
	}
	if cfg.GuardETU > 0 && cfg.GuardETU < 255 {
		return 12 + cfg.GuardETU
	}
	return 12
}

// writeTimed sends p character by character in wire time, with T=0
// repetition of characters the card refuses.
func (w *wire) writeTimed(p []byte, cfg hal.LineConfig) (int, error) {
	for i, b := range p {
		for try := 0; ; try++ {
			w.mu.Lock()
			if err := w.usableLocked(); err != nil {
				w.mu.Unlock()
				return i, err
			}
			start := later(time.Now(), w.hostFree)
			w.mu.Unlock()
			sleepUntil(start)
			w.mu.Lock()
			c := Char{At: start, ETU: cfg.ETU(), B: b, Collision: w.cardBusy.After(start)}
			w.hostFree = start.Add(etus(cfg, hostGap(cfg)))
			w.hostBusy = start.Add(etus(cfg, 10))
			rxError := w.rxError
			w.mu.Unlock()
			time.Sleep(etus(cfg, 10))
			c.Bad = rxError != nil && rxError(b)
			c.Refused = c.Bad && w.cardSignals()
			w.mu.Lock()
			w.trace = append(w.trace, c)
			if c.Refused {
				// Error signal from 10.5 etu; repeat >= 2 etu after it is seen at 11.
				w.hostFree = later(w.hostFree, start.Add(etus(cfg, 13)))
				w.cardBusy = later(w.cardBusy, start.Add(etus(cfg, 12)))
				w.mu.Unlock()
				if try < cfg.Repeat {
					continue
				}
				return i, fmt.Errorf("write slot %s: byte %d (%#02x) refused %d times: %w", w.name, i, b, try+1, hal.ErrNACK)
			}
			mark := markNone
			if c.Bad {
				mark = markParity
			}
			w.toCard.push(b, mark)
			w.written++
			if w.firstHostTx.IsZero() {
				w.firstHostTx = start
			}
			w.lastHostTx = start
			w.mu.Unlock()
			wake(w.cardWake)
			break
		}
	}
	return len(p), nil
}

// Read returns bytes sent by the card; see the Slot doc.
func (s *Slot) Read(p []byte) (int, error) {
	w := s.w
	return w.read(p, &w.toHost, &w.hostDL, w.hostWake, w.hostTimer, false)
}

// read is the blocking read shared by both sides. forCard selects the card
// side's extra wake-up reason: a pending Signal.
func (w *wire) read(p []byte, q *byteQueue, dl *time.Time, wakeC chan struct{}, t *time.Timer, forCard bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return 0, os.ErrClosed
		}
		if forCard && len(w.signals) > 0 {
			w.mu.Unlock()
			return 0, ErrSignal
		}
		if q.len() > 0 {
			n, err := q.pop(p)
			w.mu.Unlock()
			return n, err
		}
		if err := w.usableLocked(); err != nil {
			w.mu.Unlock()
			return 0, err
		}
		deadline := *dl
		w.mu.Unlock()
		if deadline.IsZero() {
			<-wakeC
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return 0, hal.ErrTimeout
		}
		t.Reset(d)
		select {
		case <-wakeC:
			t.Stop()
		case <-t.C:
		}
	}
}

// Read returns bytes the host wrote. It blocks until at least one byte is
// there, and fails with ErrSignal while a Signal is pending, hal.ErrNoCard
// once the card is removed, hal.ErrTimeout at the card's read deadline and
// os.ErrClosed after Slot.Close.
func (c *Card) Read(p []byte) (int, error) {
	w := c.w
	return w.read(p, &w.toCard, &w.cardDL, w.cardWake, w.cardTimer, true)
}

// SetReadDeadline sets the deadline of Card.Read; zero means none.
func (c *Card) SetReadDeadline(t time.Time) error {
	c.w.mu.Lock()
	c.w.cardDL = t
	c.w.mu.Unlock()
	wake(c.w.cardWake)
	return nil
}

// Write sends p to the host. It fails with ErrInactive unless the card is
// powered with RST released, and with hal.ErrNoCard once removed. On a
// timed line it returns when the last character is complete.
func (c *Card) Write(p []byte) (int, error) {
	w := c.w
	if w.timed {
		for i, b := range p {
			if _, err := c.WriteChar(b, false); err != nil {
				return i, err
			}
		}
		return len(p), nil
	}
	w.mu.Lock()
	if err := w.writableLocked(); err != nil {
		w.mu.Unlock()
		return 0, err
	}
	for _, b := range p {
		w.toHost.push(b, markNone)
	}
	w.mu.Unlock()
	wake(w.hostWake)
	return len(p), nil
}

// WriteMarked sends one byte that the host's UART received with a line
// error; mark must be hal.ErrParity or hal.ErrFraming.
func (c *Card) WriteMarked(b byte, mark error) error {
	var m uint8
	switch mark {
	case hal.ErrParity:
		m = markParity
	case hal.ErrFraming:
		m = markFraming
	default:
		return fmt.Errorf("haltest: WriteMarked mark %v: want hal.ErrParity or hal.ErrFraming", mark)
	}
	w := c.w
	w.mu.Lock()
	if err := w.writableLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	w.toHost.push(b, m)
	w.mu.Unlock()
	wake(w.hostWake)
	return nil
}

// WriteChar sends one character; bad sends it with a parity error. A host
// with ErrorSignal and LineConfig.Repeat set refuses a bad character with
// the error signal (refused true; send it again), any other host receives
// it marked with hal.ErrParity. On a timed line WriteChar takes the
// character's wire time and a repetition starts no earlier than 13 etu
// after the refused character.
func (c *Card) WriteChar(b byte, bad bool) (refused bool, err error) {
	w := c.w
	w.mu.Lock()
	if err := w.writableLocked(); err != nil {
		w.mu.Unlock()
		return false, err
	}
	cfg := w.cfg
	refused = bad && w.errSignal && cfg.Repeat > 0
	start := time.Now()
	if w.timed {
		start = later(start, w.cardFree)
		w.mu.Unlock()
		sleepUntil(start)
		w.mu.Lock()
		ch := Char{At: start, ETU: cfg.ETU(), B: b, FromCard: true, Bad: bad, Refused: refused, Collision: w.hostBusy.After(start)}
		w.trace = append(w.trace, ch)
		w.cardFree = start.Add(etus(cfg, 12))
		w.cardBusy = start.Add(etus(cfg, 10))
		if refused {
			w.cardFree = start.Add(etus(cfg, 13))
			w.hostBusy = later(w.hostBusy, start.Add(etus(cfg, 12)))
		}
		w.mu.Unlock()
		time.Sleep(etus(cfg, 10))
		w.mu.Lock()
		if err := w.writableLocked(); err != nil {
			w.mu.Unlock()
			return false, err
		}
	}
	if !refused {
		mark := markNone
		if bad {
			mark = markParity
		}
		w.toHost.push(b, mark)
	}
	w.mu.Unlock()
	wake(w.hostWake)
	return refused, nil
}

// cardSignals reports SetErrorSignal.
func (w *wire) cardSignals() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cardSig
}

// SetErrorSignal says whether the card answers a host character it
// received with a parity error with the T=0 error signal (T=0 cards do;
// T=1 cards do not). The host then repeats the character as often as
// LineConfig.Repeat allows and fails the write with hal.ErrNACK after.
func (c *Card) SetErrorSignal(on bool) {
	c.w.mu.Lock()
	c.w.cardSig = on
	c.w.mu.Unlock()
}

// SetRxError installs fn, asked for every character the host sends on a
// timed line: true means the card received it with a parity error. A card
// with SetErrorSignal refuses it; otherwise the card's Read returns it
// marked with hal.ErrParity. nil means no errors.
func (c *Card) SetRxError(fn func(b byte) bool) {
	c.w.mu.Lock()
	c.w.rxError = fn
	c.w.mu.Unlock()
}

// Trace returns the characters of a timed line so far, in order of their
// start (host characters are recorded when they complete).
func (c *Card) Trace() []Char {
	c.w.mu.Lock()
	t := append([]Char(nil), c.w.trace...)
	c.w.mu.Unlock()
	sort.SliceStable(t, func(i, j int) bool { return t[i].At.Before(t[j].At) })
	return t
}

// ClearTrace forgets the recorded characters.
func (c *Card) ClearTrace() {
	c.w.mu.Lock()
	c.w.trace = c.w.trace[:0]
	c.w.mu.Unlock()
}

func (w *wire) writableLocked() error {
	if err := w.usableLocked(); err != nil {
		return err
	}
	if !w.active {
		return ErrInactive
	}
	return nil
}

// NextSignal pops the oldest pending Signal, if any.
func (c *Card) NextSignal() (Signal, bool) {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.signals) == 0 {
		return Signal{}, false
	}
	s := w.signals[0]
	w.signals = append(w.signals[:0], w.signals[1:]...)
	return s, true
}

// OnSignal installs fn to be called synchronously, in the host goroutine,
// after each Signal is queued (it is still delivered by NextSignal). The
// card is already active when fn sees a reset, so fn may Write the ATR.
// fn must not call Slot methods.
func (c *Card) OnSignal(fn func(Signal)) {
	c.w.mu.Lock()
	c.w.hook = fn
	c.w.mu.Unlock()
}

// LineConfig returns the host's line configuration in force, so a
// simulator can refuse to answer at a speed or parity it was not told to use.
func (c *Card) LineConfig() hal.LineConfig {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.cfg
}

// Active reports whether the card is powered with RST released.
func (c *Card) Active() bool {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.active
}

// Powered reports whether the card is powered.
func (c *Card) Powered() bool {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.powered
}

// Resets returns how many resets (cold and warm) released RST so far.
func (c *Card) Resets() int {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.resets
}

// SetEchoFault installs fn to corrupt the echo of host bytes when the host
// LineConfig has Echo set: fn returns the echoed byte, or ok=false for a
// missing echo. nil restores a perfect echo.
func (c *Card) SetEchoFault(fn func(sent byte) (echo byte, ok bool)) {
	c.w.mu.Lock()
	c.w.echoFault = fn
	c.w.mu.Unlock()
}

// Insert puts a card into the slot and emits hal.CardInserted.
func (c *Card) Insert() {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.present {
		return
	}
	w.present, w.fault = true, false
	w.toCard.reset()
	w.toHost.reset()
	w.event(hal.CardInserted)
}

// Remove pulls the card out: it loses power, pending Reads on both sides
// fail with hal.ErrNoCard, and hal.CardRemoved is emitted.
func (c *Card) Remove() {
	w := c.w
	w.mu.Lock()
	if !w.present {
		w.mu.Unlock()
		return
	}
	w.present, w.powered, w.active = false, false, false
	w.toCard.reset()
	w.toHost.reset()
	w.event(hal.CardRemoved)
	w.mu.Unlock()
	wake(w.hostWake)
	wake(w.cardWake)
}

// Fault simulates an interface-chip fault (short circuit, overheating): the
// card is deactivated, pending host Reads fail with hal.ErrFault and
// hal.ChipFault is emitted. The next Reset clears the fault.
func (c *Card) Fault() {
	w := c.w
	w.mu.Lock()
	w.fault, w.powered, w.active = true, false, false
	w.event(hal.ChipFault)
	w.mu.Unlock()
	wake(w.hostWake)
	wake(w.cardWake)
}

// HostWrites returns how many bytes the host wrote so far and when the first
// and last of them reached the card (zero times if none).
func (c *Card) HostWrites() (n int, first, last time.Time) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.written, c.w.firstHostTx, c.w.lastHostTx
}
