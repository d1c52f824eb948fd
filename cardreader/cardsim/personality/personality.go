// Package personality holds cardsim personalities that speak the command
// sets of the card systems in cardreader/system: Conax, Seca, Griffin and
// DGCrypt. They exist for tests and the demo only, and they are written
// from the reference behaviour of real cards (the command tables of
// docs/cardsystems.md, taken from OSCam's readers), not from satd's card
// systems: when the two disagree, the card system is wrong.
//
// The simulated cards hold test data only: their control words are a hash
// of the ECM bytes the card receives (see ExpectedCW) with valid checksum
// bytes, or a fixed test value, not the result of any broadcaster's
// algorithm, and no key material is involved. They cannot descramble
// anything real. Each card can be switched at run time to answer ECMs "not
// subscribed", "bad ECM", with a card error, a wrong CW checksum, a hang,
// or slowly.
package personality

import (
	"crypto/sha256"
	"sync/atomic"
	"time"
)

// Mode selects how a simulated card answers ECMs.
type Mode uint32

// ECM answer modes. Not every system knows every mode; the others answer
// normally.
const (
	Normal        Mode = iota // control words derived from the ECM
	NotSubscribed             // the system's "no entitlement" answer
	BadECM                    // the system's "bad ECM" answer
	CardError                 // status 6F 00 (technical problem)
	BadChecksum               // one CW checksum byte (byte 7) is wrong
	Hang                      // Conax: 90 11, then 90 11 to everything until reset
	Token                     // Seca: 90 1A until the token command came
	Wrapped                   // Conax: 3DES-wrapped CWs (checksums fail)
	RSA                       // Conax: the CWs come in an RSA block (nano 81)
	Parental                  // Conax: access refused until the parental PIN came
)

// Behaviour is the run-time switchable part shared by all personalities.
// Its methods may be called from any goroutine.
type Behaviour struct {
	mode   atomic.Uint32
	slow   atomic.Int64
	ecms   atomic.Int64
	resets atomic.Int64
	hung   atomic.Bool
}

// SetMode changes how later ECMs are answered.
func (b *Behaviour) SetMode(m Mode) { b.mode.Store(uint32(m)) }

// SetSlow makes the card wait d before answering each ECM command.
func (b *Behaviour) SetSlow(d time.Duration) { b.slow.Store(int64(d)) }

// ECMs returns the number of ECM commands the card received.
func (b *Behaviour) ECMs() int64 { return b.ecms.Load() }

// Resets returns the number of resets the card saw.
func (b *Behaviour) Resets() int64 { return b.resets.Load() }

// Hung reports whether the card hangs until the next reset.
func (b *Behaviour) Hung() bool { return b.hung.Load() }

// reset is the part of a card reset the behaviour keeps: a hung card
// works again.
func (b *Behaviour) reset() {
	b.resets.Add(1)
	b.hung.Store(false)
}

// begin counts an ECM command, waits the slow delay and returns the mode.
func (b *Behaviour) begin() Mode {
	b.ecms.Add(1)
	if d := time.Duration(b.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	return Mode(b.mode.Load())
}

// cwOf derives the test control words from the bytes a card received:
// the first 16 bytes of SHA-256, with valid checksum bytes (3, 7, 11, 15
// are the sum of the three before), as real cards hand them out.
func cwOf(b []byte) [16]byte {
	sum := sha256.Sum256(b)
	var cw [16]byte
	copy(cw[:], sum[:16])
	for i := 0; i < 16; i += 4 {
		cw[i+3] = cw[i] + cw[i+1] + cw[i+2]
	}
	return cw
}

// cwFor returns the fixed CW when set, else cwOf(b), and breaks byte 7's
// checksum in BadChecksum mode.
func cwFor(fixed *[16]byte, b []byte, m Mode) [16]byte {
	cw := cwOf(b)
	if fixed != nil {
		cw = *fixed
	}
	if m == BadChecksum {
		cw[7]++
	}
	return cw
}

// ExpectedCW returns the control words (even, odd) the simulated card of
// system ("conax", "seca", "griffin" or "dgcrypt") answers for the ECM
// section ecm when no fixed CW is set: the first 16 bytes of SHA-256 over
// the ECM bytes that card receives (Conax, Griffin: the whole section;
// Seca: from byte 7; DGCrypt: from byte 3), checksum bytes set.
func ExpectedCW(system string, ecm []byte) [16]byte {
	n := 3 + (int(ecm[1]&0x0F)<<8 | int(ecm[2]))
	switch system {
	case "seca":
		return cwOf(ecm[7:n])
	case "dgcrypt":
		return cwOf(ecm[3:n])
	}
	return cwOf(ecm[:n])
}

// status answers sw1 sw2 without data.
func status(resp []byte, sw1, sw2 byte) int {
	resp[0], resp[1] = sw1, sw2
	return 2
}

// reply copies data and 90 00 into resp.
func reply(resp, data []byte) int {
	n := copy(resp, data)
	resp[n], resp[n+1] = 0x90, 0x00
	return n + 2
}

// errorSW is the answer of every personality in CardError mode.
func errorSW(resp []byte) int { return status(resp, 0x6F, 0x00) }

// leOf returns the Le of a case 2 command (0 means 256).
func leOf(cmd []byte) int {
	if len(cmd) < 5 || cmd[4] == 0 {
		return 256
	}
	return int(cmd[4])
}

// padded returns s as exactly n bytes, space padded.
func padded(s string, n int) []byte {
	b := []byte(s)
	for len(b) < n {
		b = append(b, ' ')
	}
	return b[:n]
}
