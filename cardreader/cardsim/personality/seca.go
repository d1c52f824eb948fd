package personality

import (
	"time"

	"satd.dev/satd/cardreader/cardsim"
)

// SecaProvider is one provider record of a simulated Seca card.
type SecaProvider struct {
	ID   uint16
	Name string
	End  time.Time
}

// Seca is a simulated Seca/Mediaguard 2 card speaking T=0.
type Seca struct {
	Behaviour
	Serial    [6]byte
	Providers []SecaProvider // at most 16, indexed in order

	cw    [16]byte
	hasCW bool
	buf   [32]byte
	ecmIn [256]byte // key number and ECM bytes, hashed into the CWs
}

var _ cardsim.Personality = (*Seca)(nil)

// SecaATR is the ATR of a simulated Seca card of the given version (7 is
// Seca 2): T=0, manufacturer bytes 7-8, version byte 9 and the Seca
// signature 0E 6C B6 D6 in bytes 10-13.
func SecaATR(version byte) []byte {
	return []byte{0x3B, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, version, 0x0E, 0x6C, 0xB6, 0xD6}
}

// DataIn reports that only the ECM command C1 3C sends data.
func (*Seca) DataIn(h []byte) bool { return h[1] == 0x3C }

// Respond answers one APDU.
func (c *Seca) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 || cmd[0] != 0xC1 {
		return status(resp, 0x6E, 0x00)
	}
	switch cmd[1] {
	case 0x0E:
		return c.fixed(cmd, resp, append(append(c.buf[:0], 0, 0), c.Serial[:]...))
	case 0x16:
		var bitmap uint16
		for i := range min(len(c.Providers), 16) {
			bitmap |= 1 << i
		}
		return c.fixed(cmd, resp, append(c.buf[:0], byte(bitmap>>8), byte(bitmap), 0, 0, 0, 0, 0))
	case 0x12:
		i := int(cmd[2])
		if i >= len(c.Providers) {
			return status(resp, 0x90, 0x04) // OSCam: unknown provider index
		}
		p := c.Providers[i]
		b := append(c.buf[:0], byte(p.ID>>8), byte(p.ID))
		b = append(b, padded(p.Name, 16)...)
		b = append(b, 0, 0, 0, 0)
		d := uint16(p.End.Year()-1990)<<9 | uint16(p.End.Month())<<5 | uint16(p.End.Day())
		return c.fixed(cmd, resp, append(b, byte(d>>8), byte(d), 0))
	case 0x3C:
		return c.ecm(cmd, resp)
	case 0x3A:
		if !c.hasCW {
			return status(resp, 0x69, 0x85)
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
// subscribed, 96 00 bad ECM.
func (c *Seca) ecm(cmd, resp []byte) int {
	c.hasCW = false
	switch c.begin() {
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
	c.cw, c.hasCW = cwOf(c.ecmIn[:n]), true
	return status(resp, 0x90, 0x00)
}
