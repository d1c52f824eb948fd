package personality

import (
	"bytes"
	"sync/atomic"
	"time"

	"satd.dev/satd/cardreader/cardsim"
)

// SecaProvider is one provider record of a simulated Seca card.
type SecaProvider struct {
	ID   uint16 // FE xx for a FEDC entry
	Name string
	End  time.Time
}

// Seca is a simulated Seca/Mediaguard 2 card speaking T=0. It answers:
//
//	C1 0E 00 00 08 → 00 00 <serial 6>
//	C1 16 00 00 07 → 00 00 <provider bitmap 2> 00 00 00
//	C1 12 i 00 19  → <ident 2> <name 16> 00 00 00 00 <expiry 2> 00
//	C1 3C idx key len <ECM from byte 8> → 90 00, 93 02, 96 00, or 90 1A (token)
//	C1 30 00 02 09 00 × 8 FF → 90 00 (the token)
//	C1 3A 00 00 10 → the CWs, even first
//
// After a C1 3C the card wants C1 3A next, whatever C1 3C answered: any
// other command gets 6F 00 until a reset (the card locks up).
type Seca struct {
	Behaviour
	Serial    [6]byte
	Providers []SecaProvider // at most 16, indexed in order
	// EmptyMapReads is how many C1 16 reads answer an empty provider map
	// before the real one (a card still starting up).
	EmptyMapReads int
	// FixedCW, when set, is answered instead of the hash of the ECM.
	FixedCW *[16]byte

	ecmSW    atomic.Uint32
	mapReads int
	token    bool // the token came since the last ECM
	await    bool // C1 3C came, C1 3A must follow
	locked   bool
	cw       [16]byte
	hasCW    bool
	buf      [32]byte
	ecmIn    [256]byte // key number and ECM bytes, hashed into the CWs
}

var _ cardsim.Personality = (*Seca)(nil)
var _ cardsim.Resetter = (*Seca)(nil)

// SecaATR is the ATR of a simulated Seca card of the given version (7 is
// Seca 2, 10 Seca 3): T=0, version in byte 9 and the Seca signature
// 0E 6C B6 D6 in bytes 10-13.
func SecaATR(version byte) []byte {
	return []byte{0x3B, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, version, 0x0E, 0x6C, 0xB6, 0xD6}
}

// SecaToken is the token command the card asks for with 90 1A.
var SecaToken = []byte{0xC1, 0x30, 0x00, 0x02, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF}

// SetECMStatus makes C1 3C answer sw (90 02, 93 00, 96 02: status words
// after which the card still hands out CWs) instead of 90 00; 0 restores
// 90 00.
func (c *Seca) SetECMStatus(sw uint16) { c.ecmSW.Store(uint32(sw)) }

// DataIn reports that the ECM command C1 3C and the token C1 30 send data.
func (*Seca) DataIn(h []byte) bool { return h[1] == 0x3C || h[1] == 0x30 }

// Reset unlocks the card and forgets pending CWs.
func (c *Seca) Reset() {
	c.Behaviour.reset()
	c.await, c.locked, c.hasCW, c.token, c.mapReads = false, false, false, false, 0
}

// Respond answers one APDU.
func (c *Seca) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 || cmd[0] != 0xC1 {
		return status(resp, 0x6E, 0x00)
	}
	if c.await && cmd[1] != 0x3A {
		c.locked = true
	}
	if c.locked {
		return errorSW(resp)
	}
	switch cmd[1] {
	case 0x0E:
		return c.fixed(cmd, resp, append(append(c.buf[:0], 0, 0), c.Serial[:]...))
	case 0x16:
		var bitmap uint16
		if c.mapReads++; c.mapReads > c.EmptyMapReads {
			for i := range min(len(c.Providers), 16) {
				bitmap |= 1 << i
			}
		}
		return c.fixed(cmd, resp, append(c.buf[:0], 0, 0, byte(bitmap>>8), byte(bitmap), 0, 0, 0))
	case 0x12:
		i := int(cmd[2])
		if i >= len(c.Providers) {
			return status(resp, 0x90, 0x04) // unknown provider index
		}
		p := c.Providers[i]
		b := append(c.buf[:0], byte(p.ID>>8), byte(p.ID))
		b = append(b, padded(p.Name, 16)...)
		b = append(b, 0, 0, 0, 0)
		y, m, d := p.End.Year()-1990, int(p.End.Month()), p.End.Day()
		return c.fixed(cmd, resp, append(b, byte(y<<1|m>>3), byte(m<<5|d), 0))
	case 0x30:
		if !bytes.Equal(cmd, SecaToken) {
			return status(resp, 0x6A, 0x80)
		}
		c.token = true
		return status(resp, 0x90, 0x00)
	case 0x3C:
		return c.ecm(cmd, resp)
	case 0x3A:
		c.await = false
		if !c.hasCW {
			return status(resp, 0x93, 0x02)
		}
		c.hasCW = false
		return c.fixed(cmd, resp, c.cw[:])
	}
	return status(resp, 0x6D, 0x00)
}

// fixed answers data of a fixed length; a wrong Le gets 6C xx.
func (c *Seca) fixed(cmd, resp, data []byte) int {
	if leOf(cmd) != len(data) {
		return status(resp, 0x6C, byte(len(data)))
	}
	return reply(resp, data)
}

// ecm answers C1 3C: 90 00 with the CWs kept for C1 3A, 93 02 not
// subscribed, 96 00 bad ECM, 90 1A for a token.
func (c *Seca) ecm(cmd, resp []byte) int {
	c.hasCW = false
	mode := c.begin()
	if mode == Token && !c.token {
		return status(resp, 0x90, 0x1A) // no C1 3A expected yet
	}
	c.token = false
	c.await = true
	switch mode {
	case CardError:
		return errorSW(resp)
	case NotSubscribed:
		return status(resp, 0x93, 0x02)
	case BadECM:
		return status(resp, 0x96, 0x00)
	}
	if int(cmd[2]) >= len(c.Providers) {
		return status(resp, 0x93, 0x02)
	}
	if int(cmd[4]) != len(cmd)-5 || len(cmd) < 6 {
		return status(resp, 0x96, 0x00)
	}
	// The card sees the key number (P2) and the ECM from byte 8: hash
	// them as ECM bytes 7.. so ExpectedCW can recompute it.
	c.ecmIn[0] = cmd[3]
	n := 1 + copy(c.ecmIn[1:], cmd[5:])
	c.cw, c.hasCW = cwFor(c.FixedCW, c.ecmIn[:n], mode), true
	if sw := c.ecmSW.Load(); sw != 0 {
		return status(resp, byte(sw>>8), byte(sw))
	}
	return status(resp, 0x90, 0x00)
}
