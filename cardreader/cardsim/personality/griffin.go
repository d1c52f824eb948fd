package personality

import (
	"fmt"

	"satd.dev/satd/cardreader/cardsim"
)

// Griffin is a simulated Griffin card speaking T=0. Every command is
// DC <base+op> 00 00 <Lc> [data]; the card answers 90 LL and hands the LL
// answer bytes out to the read command DC <base-0E> 00 00 LL. Answers are
// <code> <len> <data> records:
//
//	op 00 → 11 01 <base>
//	op 02 → 12 04 <serial 4>
//	op 04 → 13 0C <12 ASCII digits>
//	op 06 → 14 02 <CAID>
//	op 08 → 15 30 <48 address bytes>
//	op 22, 10, 14, 20 → 16 01 00 (not used by the host)
//	op 16 <section> → 19 04 00 00 00 00 1A 10 <CWs, even first>
type Griffin struct {
	Behaviour
	CAIDLow byte // CAID is 55xx
	Serial  [4]byte
	Base    byte
	// FixedCW, when set, is answered instead of the hash of the ECM.
	FixedCW *[16]byte

	pending []byte
	buf     [64]byte
}

var _ cardsim.Personality = (*Griffin)(nil)
var _ cardsim.Resetter = (*Griffin)(nil)

// ATR returns 3B 08 <caid-lo> 01 <serial:4> <base> 00.
func (g *Griffin) ATR() []byte {
	return []byte{0x3B, 0x08, g.CAIDLow, 0x01, g.Serial[0], g.Serial[1], g.Serial[2], g.Serial[3], g.Base, 0x00}
}

// DataIn reports that every command but the read sends Lc data.
func (g *Griffin) DataIn(h []byte) bool { return h[1] != g.Base-0x0E }

// Reset forgets a pending answer.
func (g *Griffin) Reset() {
	g.Behaviour.reset()
	g.pending = nil
}

// Respond answers one APDU.
func (g *Griffin) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 || cmd[0] != 0xDC {
		return status(resp, 0x6E, 0x00)
	}
	if cmd[1] == g.Base-0x0E {
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
	if int(cmd[4]) != len(cmd)-5 {
		return status(resp, 0x67, 0x00)
	}
	b := g.buf[:0]
	switch cmd[1] - g.Base {
	case 0x00:
		b = append(b, 0x11, 0x01, g.Base)
	case 0x02:
		b = append(append(b, 0x12, 0x04), g.Serial[:]...)
	case 0x04:
		b = fmt.Appendf(append(b, 0x13, 0x0C), "%012d", uint32(g.Serial[0])<<24|uint32(g.Serial[1])<<16|uint32(g.Serial[2])<<8|uint32(g.Serial[3]))
	case 0x06:
		b = append(b, 0x14, 0x02, 0x55, g.CAIDLow)
	case 0x08:
		b = append(b, 0x15, 0x30)
		b = append(b, make([]byte, 0x30)...)
	case 0x22, 0x10, 0x14, 0x20:
		b = append(b, 0x16, 0x01, 0x00)
	case 0x16:
		return g.ecm(cmd[5:], resp)
	default:
		return status(resp, 0x6D, 0x00)
	}
	g.pending = b
	return status(resp, 0x90, byte(len(b)))
}

// ecm answers op 16.
func (g *Griffin) ecm(data, resp []byte) int {
	mode := g.begin()
	switch mode {
	case CardError:
		return errorSW(resp)
	case NotSubscribed:
		return status(resp, 0x69, 0x85)
	case BadECM:
		return status(resp, 0x67, 0x00)
	}
	if len(data) < 3 || 3+(int(data[1]&0x0F)<<8|int(data[2])) != len(data) {
		return status(resp, 0x67, 0x00)
	}
	cw := cwFor(g.FixedCW, data, mode)
	b := append(g.buf[:0], 0x19, 0x04, 0, 0, 0, 0, 0x1A, 0x10)
	g.pending = append(b, cw[:]...)
	return status(resp, 0x90, byte(len(g.pending)))
}
