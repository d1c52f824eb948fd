// Package hal is the only part of satd that touches hardware. It gives
// cardreader a card slot: a half-duplex serial line to the card (Link) and the
// control lines around it (Control), for both wirings found on receivers: an
// internal slot driving a TDA8024/TDA8035-style interface chip through GPIO,
// and a Phoenix/Smartmouse reader on a serial port.
//
// The interfaces live here; implementations live in sub-packages (uart,
// gpio backends, slot sequencers) and fakes in hal/haltest, in the periph.io
// style. Nothing in hal knows what a card says.
package hal

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors that callers branch on.
var (
	// ErrTimeout is returned by Link.Read when the read deadline passes
	// before any byte arrives.
	ErrTimeout = errors.New("hal: read deadline exceeded")
	// ErrParity marks a received byte that had a parity error.
	ErrParity = errors.New("hal: parity error")
	// ErrFraming marks a received byte that had a framing error or a break.
	ErrFraming = errors.New("hal: framing error")
	// ErrEcho reports that the echo of a sent byte was missing or differed
	// from what was sent: a line fault, never card data.
	ErrEcho = errors.New("hal: echo mismatch")
	// ErrNoCard reports that the slot holds no card, or that the card was
	// removed while an operation was in progress.
	ErrNoCard = errors.New("hal: no card in slot")
	// ErrFault reports that the interface chip signalled a fault (OFF low
	// while active: short circuit, overheating, supply drop).
	ErrFault = errors.New("hal: interface chip fault")
	// ErrNACK reports that the card signalled a parity error (the T=0
	// error signal) on a character the host sent, more often than
	// LineConfig.Repeat allowed the character to be repeated.
	ErrNACK = errors.New("hal: card refused a character (parity error signal)")
	// ErrNotSupported reports an operation the line cannot do, such as modem
	// control lines on a pseudo-terminal.
	ErrNotSupported = errors.New("hal: not supported by this line")
)

// Parity is the parity setting of the serial line.
type Parity uint8

// Parity settings. Direct-convention cards use even parity; inverse-convention
// cards are driven with odd parity (the bit inversion itself is done by
// cardreader).
const (
	ParityEven Parity = iota
	ParityOdd
	ParityNone
)

func (p Parity) String() string {
	switch p {
	case ParityEven:
		return "even"
	case ParityOdd:
		return "odd"
	case ParityNone:
		return "none"
	}
	return "parity?"
}

// LineConfig is the character frame and pacing of a Link.
type LineConfig struct {
	// Baud is the bit rate in bits per second; any positive value, not only
	// the standard rates (10752 and 16129 baud are common for cards).
	Baud int
	// Parity is the parity bit setting.
	Parity Parity
	// StopBits is 1 or 2. Cards use 2 (guard time) except T=1 with N=255.
	StopBits int
	// GuardETU is the extra guard time N (TC1) in elementary time units that
	// must separate two bytes sent to the card. Zero costs nothing.
	GuardETU int
	// Echo says whether every sent byte comes back on the receive side
	// (single-wire I/O). When set, Write reads the echo back, compares it,
	// and strips it.
	Echo bool
	// Repeat turns on T=0 character repetition (ISO/IEC 7816-3 §7.3): a
	// receiver that sees a parity error pulls I/O low at 10.5 etu and the
	// sender repeats the character, here at most Repeat times. Zero (the
	// ATR, PPS and T=1) means no error signalling: a refused character is
	// an echo fault and a bad received character is returned marked.
	Repeat int
}

// ETU returns the duration of one elementary time unit at this baud.
func (c LineConfig) ETU() time.Duration {
	if c.Baud <= 0 {
		return 0
	}
	return time.Second / time.Duration(c.Baud)
}

// Link is the byte-level serial line between host and card.
//
// Write sends p with the configured guard time; when echo is on it also
// reads back and checks the echo, returning an error wrapping ErrEcho on a
// mismatch. With Repeat set, a character the card refuses with the T=0
// error signal is sent again (no earlier than 2 etu after the signal); when
// the repetitions run out Write returns the characters accepted and an error
// wrapping ErrNACK. Read returns at least one byte or an error: it waits
// until the read deadline and returns ErrTimeout if nothing arrived. A
// received byte marked with a parity or framing error ends a read before
// it; the next Read returns that byte alone (n == 1) with an error wrapping
// ErrParity or ErrFraming. A link whose hardware sends the error signal
// itself (ErrorSignaller) asks for the repetition of a bad character when
// Repeat is set and returns only the repeated one. Implementations must not
// allocate per call in steady state.
type Link interface {
	Write(p []byte) (n int, err error)
	Read(p []byte) (n int, err error)
	// SetReadDeadline sets the absolute time after which Read returns
	// ErrTimeout. The zero time means no deadline.
	SetReadDeadline(t time.Time) error
	// Configure changes the character frame, speed and pacing.
	Configure(c LineConfig) error
	// Config returns the configuration in force.
	Config() LineConfig
	// Flush discards any received bytes not yet read.
	Flush() error
}

// ErrorSignaller is implemented by links whose receiver sends the T=0
// error signal on a parity error by itself (a smartcard-mode UART), so the
// card repeats a bad character. A plain UART cannot: it reports the bad
// character marked instead.
type ErrorSignaller interface {
	SignalsErrors() bool
}

// Adapter is implemented by links that know what carries their bytes. A
// USB serial adapter holds received bytes for its latency timer (16 ms by
// default on FTDI chips) and makes every small write a USB round trip, so
// cardreader adds more slack to waiting times and avoids byte-by-byte
// echo checks on it.
type Adapter interface {
	USB() bool
}

// ResetKind says which reset a Control performs.
type ResetKind uint8

// Reset kinds.
const (
	// ColdReset powers the card down if needed, runs the activation
	// sequence and releases RST.
	ColdReset ResetKind = iota
	// WarmReset keeps power and clock, holds RST low for at least 400 clock
	// cycles and releases it.
	WarmReset
)

func (k ResetKind) String() string {
	if k == WarmReset {
		return "warm"
	}
	return "cold"
}

// Voltage is the card supply class selected before activation.
type Voltage uint8

// Supply classes.
const (
	Volt5   Voltage = iota // class A
	Volt3                  // class B
	Volt1_8                // class C
)

// EventKind is what a card-detect or fault edge means.
type EventKind uint8

// Event kinds.
const (
	CardInserted EventKind = iota + 1
	CardRemoved
	ChipFault
)

func (k EventKind) String() string {
	switch k {
	case CardInserted:
		return "inserted"
	case CardRemoved:
		return "removed"
	case ChipFault:
		return "fault"
	}
	return "event?"
}

// Event is a debounced change of the slot's card-detect or fault line.
type Event struct {
	Kind EventKind
	At   time.Time
}

// Control drives the control lines of a slot.
//
// Reset leaves the card with RST released, the link flushed and set to the
// initial frame (f/372 baud, 8E2), so the caller's next Read returns the first
// ATR byte. Deactivate runs the deactivation sequence (RST low, then VCC off)
// and returns once the card may be activated again. Events delivers debounced
// card-detect and fault edges; the channel is closed by Close.
type Control interface {
	Reset(ctx context.Context, kind ResetKind) error
	Deactivate(ctx context.Context) error
	Present() (bool, error)
	Events() <-chan Event
	// ClockHz is the card clock frequency f in hertz, from which cardreader
	// derives baud rates and waiting times.
	ClockHz() int
	Close() error
}

// Slot is a card slot: its control lines and its serial line.
type Slot interface {
	Control
	Link() Link
	// Name is the slot's configured name, used in logs and errors.
	Name() string
}
