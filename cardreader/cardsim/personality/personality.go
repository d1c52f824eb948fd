// Package personality holds cardsim personalities that speak the command
// sets of the card systems in cardreader/system: Conax, Seca, Griffin and
// DGCrypt. They exist for tests and the demo only.
//
// The simulated cards hold test data only: their control words are a hash
// of the ECM bytes the card receives (see ExpectedCW), not the result of
// any broadcaster's algorithm, and no key material is involved. They cannot
// descramble anything real. Each card can be switched at run time to answer
// ECMs "not subscribed", "bad ECM", with a card error, or slowly.
package personality

import (
	"crypto/sha256"
	"sync/atomic"
	"time"
)

// Mode selects how a simulated card answers ECMs.
type Mode uint32

// ECM answer modes.
const (
	Normal        Mode = iota // control words derived from the ECM
	NotSubscribed             // the system's "no entitlement" answer
	BadECM                    // the system's "bad ECM" answer
	CardError                 // status 6F 00 (technical problem)
)

// Behaviour is the run-time switchable part shared by all personalities.
// Its methods may be called from any goroutine.
type Behaviour struct {
	mode atomic.Uint32
	slow atomic.Int64
	ecms atomic.Int64
}

// SetMode changes how later ECMs are answered.
func (b *Behaviour) SetMode(m Mode) { b.mode.Store(uint32(m)) }

// SetSlow makes the card wait d before answering each ECM command.
func (b *Behaviour) SetSlow(d time.Duration) { b.slow.Store(int64(d)) }

// ECMs returns the number of ECM commands the card received.
func (b *Behaviour) ECMs() int64 { return b.ecms.Load() }

// begin counts an ECM command, waits the slow delay and returns the mode.
func (b *Behaviour) begin() Mode {
	b.ecms.Add(1)
	if d := time.Duration(b.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	return Mode(b.mode.Load())
}

// cwOf derives the test control words from the bytes a card received.
func cwOf(b []byte) [16]byte {
	sum := sha256.Sum256(b)
	var cw [16]byte
	copy(cw[:], sum[:16])
	return cw
}

// ExpectedCW returns the control words (even, odd) the simulated card of
// system ("conax", "seca", "griffin" or "dgcrypt") answers for the ECM
// section ecm: the first 16 bytes of SHA-256 over the ECM bytes that card
// receives (Conax, Griffin: the whole section; Seca: from byte 7, the key
// number; DGCrypt: from byte 3).
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
