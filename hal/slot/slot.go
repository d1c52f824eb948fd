// Package slot runs the activation, reset and deactivation sequences of a
// card slot for both wirings found on receivers: an internal slot whose
// TDA8024/TDA8035 interface chip is driven through GPIO, and a
// Phoenix/Smartmouse reader whose reset is a modem control line. A Slot
// implements hal.Slot on top of a UART port and gpio lines, so the sequences
// are tested against haltest.Recorder pins under testing/synctest.
package slot

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/pins"
)

// Port is what a Slot needs from its serial line: a hal.Link whose pending
// and later Reads can be made to fail with a given error (card removed,
// chip fault) until SetAbort(nil).
type Port interface {
	hal.Link
	SetAbort(err error)
	Close() error
}

// Line is a control line with its polarity. Level true means the signal is
// asserted in the chip's (or card's) own sense: CMDVCC activating, RST high
// (card released), OFF high (card present), 5V/3V selecting 5 V. Invert
// says the board puts an inverter in between.
type Line struct {
	Pin    gpio.PinIO
	Invert bool
}

func (l Line) ok() bool { return l.Pin != nil }

func (l Line) set(v bool) error {
	if l.Pin == nil {
		return nil
	}
	if err := l.Pin.Out(gpio.Level(v != l.Invert)); err != nil {
		return fmt.Errorf("line %s: %w", l.Pin.Name(), err)
	}
	return nil
}

func (l Line) get() bool { return bool(l.Pin.Read()) != l.Invert }

// Lines are the control lines of a slot. VCC is nil for Phoenix readers,
// whose card is powered whenever it is inserted.
type Lines struct {
	// VCC is CMDVCC: asserted = activate. The TDA8024 pin is active low, so
	// a direct wiring has Invert set.
	VCC Line
	// RST is RSTIN (internal) or the reset modem line (Phoenix): asserted =
	// RST high, card released from reset.
	RST Line
	// Detect is OFF/PRES (internal) or the presence modem line (Phoenix):
	// asserted = card present. nil means always present.
	Detect Line
	// VSel (asserted = 5 V), ClkDiv1 and ClkDiv2 are optional.
	VSel, ClkDiv1, ClkDiv2 Line
}

// Timing holds the delays of the sequences.
type Timing struct {
	// Activation is the time from CMDVCC to RST high (internal slots).
	Activation time.Duration
	// ResetHold is how long RST stays low for a warm reset, and for every
	// reset of a Phoenix reader.
	ResetHold time.Duration
	// Deactivation is waited after CMDVCC is released, before the card may
	// be activated again.
	Deactivation time.Duration
	// Debounce and Poll tune card detection (pins defaults when zero).
	Debounce, Poll time.Duration
}

// Echo says how a Slot learns whether the line echoes sent bytes.
type Echo uint8

// Echo modes.
const (
	// EchoAuto sends 0x55 while RST holds the card silent and looks for it.
	EchoAuto Echo = iota
	EchoOn
	EchoOff
)

// Options configure New.
type Options struct {
	Name    string
	ClockHz int
	Lines   Lines
	Timing  Timing
	Echo    Echo
	// Voltage and ClkDiv (1, 2, 4 or 8; 0 leaves the pins alone) are set
	// while idle.
	Voltage hal.Voltage
	ClkDiv  int
}

// Slot is a card slot; see the package doc.
type Slot struct {
	o      Options
	port   Port
	events chan hal.Event
	stop   context.CancelFunc
	done   chan struct{}

	present atomic.Bool
	mu      sync.Mutex // serialises sequences
	active  atomic.Bool
	echo    bool
	echoSet bool
	closed  bool
}

var _ hal.Slot = (*Slot)(nil)

// New drives the lines to the idle state (RST low, VCC off, voltage and
// clock divider selected), starts card detection and returns the slot.
func New(o Options, port Port) (*Slot, error) {
	if o.ClockHz <= 0 {
		return nil, fmt.Errorf("slot %s: clock %d Hz: must be positive", o.Name, o.ClockHz)
	}
	if !o.Lines.RST.ok() {
		return nil, fmt.Errorf("slot %s: no reset line", o.Name)
	}
	s := &Slot{o: o, port: port, events: make(chan hal.Event, 16), done: make(chan struct{})}
	s.echo, s.echoSet = o.Echo == EchoOn, o.Echo != EchoAuto
	if err := s.idle(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if !o.Lines.Detect.ok() {
		s.present.Store(true)
		close(s.done)
		return s, nil
	}
	d := &pins.Detector{Pin: o.Lines.Detect.Pin, Debounce: o.Timing.Debounce, Poll: o.Timing.Poll}
	lvl, err := d.Start()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("slot %s: card detect: %w", o.Name, err)
	}
	s.present.Store(bool(lvl) != o.Lines.Detect.Invert)
	go func() {
		defer close(s.done)
		d.Run(ctx, lvl, func(l gpio.Level) { s.detectChanged(bool(l) != o.Lines.Detect.Invert) })
	}()
	return s, nil
}

func (s *Slot) idle() error {
	l := s.o.Lines
	for _, err := range []error{
		l.RST.set(false),
		l.VCC.set(false),
		l.VSel.set(s.o.Voltage == hal.Volt5),
	} {
		if err != nil {
			return fmt.Errorf("slot %s: idle: %w", s.o.Name, err)
		}
	}
	if s.o.ClkDiv == 0 {
		return nil
	}
	d, ok := clkDivLevels[s.o.ClkDiv]
	if !ok {
		return fmt.Errorf("slot %s: clock divider %d: want 1, 2, 4 or 8", s.o.Name, s.o.ClkDiv)
	}
	if err := l.ClkDiv1.set(d[0]); err != nil {
		return err
	}
	return l.ClkDiv2.set(d[1])
}

// clkDivLevels maps a divider to the TDA8024 CLKDIV1, CLKDIV2 levels
// (spec §3.1, to be verified against the datasheet): 00 = /8, 01 = /4,
// 11 = /2, 10 = /1.
var clkDivLevels = map[int][2]bool{8: {false, false}, 4: {false, true}, 2: {true, true}, 1: {true, false}}

// detectChanged handles a debounced change of the presence line.
func (s *Slot) detectChanged(present bool) {
	l := s.o.Lines
	if present || !s.active.Load() || !l.VCC.ok() {
		if !present && s.active.Swap(false) {
			s.port.SetAbort(hal.ErrNoCard)
		}
		if s.present.Swap(present) != present {
			s.emit(map[bool]hal.EventKind{true: hal.CardInserted, false: hal.CardRemoved}[present])
		}
		return
	}
	// OFF fell while active: the chip has deactivated the card. Release
	// CMDVCC and read OFF again: low means the card is gone, high a fault.
	l.RST.set(false)
	l.VCC.set(false)
	s.active.Store(false)
	time.Sleep(time.Millisecond)
	if l.Detect.get() {
		s.port.SetAbort(hal.ErrFault)
		s.emit(hal.ChipFault)
		return
	}
	s.port.SetAbort(hal.ErrNoCard)
	s.present.Store(false)
	s.emit(hal.CardRemoved)
}

func (s *Slot) emit(k hal.EventKind) {
	select {
	case s.events <- hal.Event{Kind: k, At: time.Now()}:
	default:
	}
}

// Name returns the slot name.
func (s *Slot) Name() string { return s.o.Name }

// Link returns the serial line.
func (s *Slot) Link() hal.Link { return s.port }

// ClockHz returns the card clock.
func (s *Slot) ClockHz() int { return s.o.ClockHz }

// Events returns debounced card-detect and fault events.
func (s *Slot) Events() <-chan hal.Event { return s.events }

// Present returns the debounced presence state.
func (s *Slot) Present() (bool, error) { return s.present.Load(), nil }

// Echo reports whether the line echoes, as detected at the last cold reset
// or configured.
func (s *Slot) Echo() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.echo
}

func (s *Slot) initial(echo bool) hal.LineConfig {
	return hal.LineConfig{Baud: s.o.ClockHz / 372, Parity: hal.ParityEven, StopBits: 2, Echo: echo}
}

// Reset runs a cold or warm reset. A warm reset of an inactive card is a
// cold one.
func (s *Slot) Reset(ctx context.Context, kind hal.ResetKind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("slot %s: closed", s.o.Name)
	}
	if !s.present.Load() {
		return fmt.Errorf("reset slot %s: %w", s.o.Name, hal.ErrNoCard)
	}
	var err error
	if kind == hal.WarmReset && s.active.Load() {
		err = s.warm(ctx)
	} else {
		if s.active.Load() {
			if err = s.deactivate(ctx); err != nil {
				return err
			}
		}
		err = s.cold(ctx)
	}
	if err != nil {
		s.o.Lines.RST.set(false)
		return fmt.Errorf("%s reset slot %s: %w", kind, s.o.Name, err)
	}
	return nil
}

func (s *Slot) cold(ctx context.Context) error {
	l := s.o.Lines
	s.port.SetAbort(nil)
	if err := l.RST.set(false); err != nil {
		return err
	}
	if err := s.port.Configure(s.initial(false)); err != nil {
		return err
	}
	if err := s.port.Flush(); err != nil {
		return err
	}
	hold := s.o.Timing.ResetHold
	if l.VCC.ok() {
		if err := l.VCC.set(true); err != nil {
			return err
		}
		hold = s.o.Timing.Activation
	}
	start := time.Now()
	if !s.echoSet {
		echo, err := s.probeEcho()
		if err != nil {
			return err
		}
		s.echo, s.echoSet = echo, true
	}
	if err := pins.Sleep(ctx, hold-time.Since(start)); err != nil {
		return err
	}
	return s.release()
}

func (s *Slot) warm(ctx context.Context) error {
	if err := s.o.Lines.RST.set(false); err != nil {
		return err
	}
	if err := pins.Sleep(ctx, s.o.Timing.ResetHold); err != nil {
		return err
	}
	return s.release()
}

// release sets the initial frame, flushes and raises RST: the card may
// answer 400 clocks later, so the UART must be ready first.
func (s *Slot) release() error {
	if err := s.port.Configure(s.initial(s.echo)); err != nil {
		return err
	}
	if err := s.port.Flush(); err != nil {
		return err
	}
	if err := s.o.Lines.RST.set(true); err != nil {
		return err
	}
	s.active.Store(true)
	return nil
}

// probeEcho sends 0x55 while RST keeps the card silent. It comes back on a
// single-wire line and not otherwise; anything else is a wiring fault.
func (s *Slot) probeEcho() (bool, error) {
	if _, err := s.port.Write([]byte{0x55}); err != nil {
		return false, fmt.Errorf("echo probe: %w", err)
	}
	cfg := s.port.Config()
	wait := 4*12*cfg.ETU() + 20*time.Millisecond
	s.port.SetReadDeadline(time.Now().Add(wait))
	defer s.port.SetReadDeadline(time.Time{})
	var b [4]byte
	n, err := s.port.Read(b[:])
	switch {
	case err == hal.ErrTimeout || n == 0 && err == nil:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("echo probe: %w", err)
	case n == 1 && b[0] == 0x55:
		return true, nil
	}
	return false, fmt.Errorf("echo probe: sent 55, read % x: %w", b[:n], hal.ErrEcho)
}

// Deactivate runs RST low, then VCC off, and waits until the card may be
// activated again.
func (s *Slot) Deactivate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deactivate(ctx)
}

func (s *Slot) deactivate(ctx context.Context) error {
	l := s.o.Lines
	s.active.Store(false)
	if err := l.RST.set(false); err != nil {
		return fmt.Errorf("deactivate slot %s: %w", s.o.Name, err)
	}
	if !l.VCC.ok() {
		return nil
	}
	if err := l.VCC.set(false); err != nil {
		return fmt.Errorf("deactivate slot %s: %w", s.o.Name, err)
	}
	return pins.Sleep(ctx, s.o.Timing.Deactivation)
}

// Close deactivates the card, stops detection, closes Events and the port.
func (s *Slot) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.active.Store(false)
	s.o.Lines.RST.set(false)
	s.o.Lines.VCC.set(false)
	s.mu.Unlock()
	s.stop()
	<-s.done
	close(s.events)
	closeLines(s.o.Lines)
	return s.port.Close()
}

// closeLines releases the pins that hold resources (sysfs descriptors,
// chardev line requests).
func closeLines(l Lines) {
	for _, line := range []Line{l.VCC, l.RST, l.Detect, l.VSel, l.ClkDiv1, l.ClkDiv2} {
		switch c := line.Pin.(type) {
		case interface{ Close() error }:
			c.Close()
		case interface{ Close() }:
			c.Close()
		}
	}
}
