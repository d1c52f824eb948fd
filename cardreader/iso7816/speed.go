package iso7816

import (
	"errors"
	"fmt"
)

// MaxBaudError is the largest relative error between the baud a UART can
// produce and the card's baud that selection accepts (2 %).
const MaxBaudError = 0.02

// ErrNoUsableMode reports a specific-mode card whose mode the host cannot
// run and which cannot be switched to negotiable mode.
var ErrNoUsableMode = errors.New("card's specific mode cannot be used")

// SelectOptions constrain parameter selection.
type SelectOptions struct {
	// ClockHz is the card clock f.
	ClockHz int
	// NearestBaud returns the baud the UART really produces when asked for
	// baud; nil means any baud is exact.
	NearestBaud func(baud int) int
	// MaxBaud caps the link speed; 0 means no cap.
	MaxBaud int
	// NoPPS keeps the defaults and the first offered protocol (OSCam's
	// "deprecated" mode).
	NoPPS bool
	// ForceProtocol asks for Protocol instead of the first offered one when
	// the card offers it.
	ForceProtocol bool
	Protocol      int
}

// Selection is the outcome of parameter selection after the ATR.
type Selection struct {
	Protocol int
	FIDI     FIDI
	// PPS is the request to send first; nil when no PPS is needed.
	PPS *PPS
	// WarmReset asks for a warm reset to leave specific mode (TA2 bit 8 = 0)
	// because the host cannot run it.
	WarmReset bool
}

// BaudUsable reports whether the UART can produce baud within MaxBaudError
// and under the MaxBaud cap.
func (o SelectOptions) BaudUsable(baud int) bool {
	if baud <= 0 || o.MaxBaud > 0 && baud > o.MaxBaud {
		return false
	}
	if o.NearestBaud == nil {
		return true
	}
	got := o.NearestBaud(baud)
	diff := float64(got - baud)
	if diff < 0 {
		diff = -diff
	}
	return diff <= MaxBaudError*float64(baud)
}

// usable reports whether (F, D) of x can be run at the configured clock:
// valid nibbles, clock within f(max) and the baud producible.
func (o SelectOptions) usable(x FIDI) bool {
	if !x.Valid() {
		return false
	}
	if x != DefaultFIDI && o.ClockHz > FMax(x.FI()) {
		return false
	}
	return o.BaudUsable(Timing{ClockHz: o.ClockHz, F: x.F(), D: x.D()}.Baud())
}

// SelectParameters chooses protocol and speed for the card with ATR a
// (ISO 7816-3 §6.3.1 and §9): specific mode is honoured; in negotiable mode a
// PPS asks for the fastest (F, D) the card offers that the UART can produce
// within 2 % at the card clock without exceeding f(max).
func SelectParameters(a *ATR, o SelectOptions) (Selection, error) {
	if a.Specific {
		return selectSpecific(a, o)
	}
	s := Selection{Protocol: a.FirstProtocol, FIDI: DefaultFIDI}
	if o.ForceProtocol && a.Offers(o.Protocol) {
		s.Protocol = o.Protocol
	}
	if o.NoPPS {
		s.Protocol = a.FirstProtocol
		return s, nil
	}
	if s.Protocol != 14 { // T=14 cards do not take a PPS (OSCam, Irdeto)
		s.FIDI = fastest(a.TA1, o)
	}
	if s.FIDI != DefaultFIDI || s.Protocol != a.FirstProtocol {
		req := PPS{Protocol: s.Protocol}
		if s.FIDI != DefaultFIDI {
			req.HasPPS1, req.PPS1 = true, s.FIDI
		}
		s.PPS = &req
	}
	return s, nil
}

// selectSpecific applies TA2: its protocol at once, TA1's F/D unless TA2
// says they are implicit.
func selectSpecific(a *ATR, o SelectOptions) (Selection, error) {
	s := Selection{Protocol: a.SpecificProtocol, FIDI: DefaultFIDI}
	if !a.ImplicitFD {
		s.FIDI = a.TA1
	}
	if o.usable(s.FIDI) {
		return s, nil
	}
	if a.CanChangeMode {
		return Selection{WarmReset: true}, nil
	}
	return s, fmt.Errorf("%w: TA1 %02X (F=%d, D=%d) at %d Hz", ErrNoUsableMode, byte(a.TA1), a.Fi(), a.Di(), o.ClockHz)
}

// fastest returns the fastest usable (F, D) with TA1's F and a D up to
// TA1's (cards are only known to support their own Fi), or the defaults.
func fastest(ta1 FIDI, o SelectOptions) FIDI {
	best, bestBaud := FIDI(DefaultFIDI), Timing{ClockHz: o.ClockHz, F: DefaultF, D: DefaultD}.Baud()
	for di := uint8(1); di < 10; di++ {
		x := FIDI(ta1.FI()<<4 | di)
		if Di(di) > ta1.D() || !o.usable(x) {
			continue
		}
		if b := (Timing{ClockHz: o.ClockHz, F: x.F(), D: x.D()}).Baud(); b > bestBaud {
			best, bestBaud = x, b
		}
	}
	return best
}
