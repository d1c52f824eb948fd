package personality

import (
	"fmt"

	"satd.dev/satd/cardreader/cardsim"
)

// Griffin is a simulated Griffin card speaking T=0: even command bytes
// (relative to Base) take data and answer 90 LL, the next odd byte reads
// the LL answer bytes.
type Griffin struct {
	Behaviour
	CAIDLow byte // CAID is 55xx
	Serial  [4]byte
	Base    byte

	pending []byte
	buf     [64]byte
}

var _ cardsim.Personality = (*Griffin)(nil)

// ATR returns 3B 08 <caid-lo> 01 <serial:4> <base> 00.
func (g *Griffin) ATR() []byte {
	return []byte{0x3B, 0x08, g.CAIDLow, 0x01, g.Serial[0], g.Serial[1], g.Serial[2], g.Serial[3], g.Base, 0x00}
}

// DataIn reports whether the command byte is a command (even relative to
// Base) rather than a read.
func (g *Griffin) DataIn(h []byte) bool { return (h[1]-g.Base)&1 == 0 }

// Respond answers one APDU.
func (g *Griffin) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 || cmd[0] != 0xDC {
		return status(resp, 0x6E, 0x00)
	}
	op := cmd[1] - g.Base
	if op&1 == 1 {
		if len(g.pending) == 0 {
			return status(resp, 0x69, 0x85)
		}
		if leOf(cmd) != len(g.pending) {
			return status(resp, 0x6C, byte(len(g.pending)))
		}
		n := reply(resp, g.pending)
		g.pending = nil
		return n
	}
	b := g.buf[:0]
	switch op {
	case 0x00:
	case 0x02:
		b = append(b, g.Serial[:]...)
	case 0x04:
		b = fmt.Appendf(b, "%010d", uint32(g.Serial[0])<<24|uint32(g.Serial[1])<<16|uint32(g.Serial[2])<<8|uint32(g.Serial[3]))
	case 0x06:
		b = append(b, 0x55, g.CAIDLow)
	case 0x16:
		switch g.begin() {
		case CardError:
			return errorSW(resp)
		case NotSubscribed:
			return status(resp, 0x69, 0x85)
		case BadECM:
			return status(resp, 0x67, 0x00)
		}
		data := cmd[5:]
		if len(data) < 3 || 3+(int(data[1]&0x0F)<<8|int(data[2])) != len(data) {
			return status(resp, 0x67, 0x00)
		}
		cw := cwOf(data)
		b = append(b, 0x01, 0x02, 0, 0, 0, 0, 0, 0x10)
		b = append(b, cw[:]...)
	default:
		return status(resp, 0x6D, 0x00)
	}
	g.pending = b
	return status(resp, 0x90, byte(len(b)))
}
