package personality

import (
	"time"

	"satd.dev/satd/cardreader/cardsim"
)

// ConaxSubscription is one subscription record of a simulated Conax card.
type ConaxSubscription struct {
	ID         uint16
	Name       string
	Start, End time.Time
}

// Conax is a simulated unpaired (or, with Paired or WrapCWs, paired) Conax
// card speaking T=0.
type Conax struct {
	Behaviour
	CAID          uint16 // default 0B00
	Serial        uint32
	Subscriptions []ConaxSubscription
	// Paired makes the DD 26 answer report pairing mode 1.
	Paired bool
	// WrapCWs makes ECM answers carry an RSA block (nano 30) instead of
	// plain nano 25 CWs, as a paired card does.
	WrapCWs bool
	// Chunk, when set, limits each DD CA answer so the host reads in
	// several 98 xx rounds.
	Chunk int

	pending []byte
	buf     [256]byte
}

var _ cardsim.Personality = (*Conax)(nil)

// ConaxATR is the ATR of the simulated card: T=0, historical bytes "0B00".
func ConaxATR() []byte { return []byte{0x3B, 0x24, 0x00, '0', 'B', '0', '0'} }

// DataIn reports that every command except the DD CA read sends data.
func (*Conax) DataIn(h []byte) bool { return h[1] != 0xCA }

// Respond answers one APDU.
func (c *Conax) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 || cmd[0] != 0xDD {
		return status(resp, 0x6E, 0x00)
	}
	switch cmd[1] {
	case 0xCA:
		return c.read(cmd, resp)
	case 0x26:
		caid := c.CAID
		if caid == 0 {
			caid = 0x0B00
		}
		pm := byte(0)
		if c.Paired {
			pm = 1
		}
		return c.answer(resp, append(c.buf[:0], 0x20, 1, 0x40, 0x28, 2, byte(caid>>8), byte(caid), 0x2F, 1, pm))
	case 0x82:
		s := c.Serial
		return c.answer(resp, append(c.buf[:0], 0x23, 6, 0, 0, byte(s>>24), byte(s>>16), byte(s>>8), byte(s)))
	case 0xC6:
		b := c.buf[:0]
		for _, s := range c.Subscriptions {
			b = append(b, 0x32, 21, byte(s.ID>>8), byte(s.ID))
			b = append(b, padded(s.Name, 15)...)
			b = appendConaxDate(b, s.Start)
			b = appendConaxDate(b, s.End)
		}
		return c.answer(resp, b)
	case 0xA2:
		return c.ecm(cmd, resp)
	}
	return status(resp, 0x6D, 0x00)
}

func appendConaxDate(b []byte, t time.Time) []byte {
	off := t.Year() - 1990
	return append(b, byte(off/10)<<5|byte(t.Day()), byte(off%10)<<4|byte(t.Month()))
}

// ecm checks the nano 14 wrapping and answers CWs, a denial or an error.
func (c *Conax) ecm(cmd, resp []byte) int {
	mode := c.begin()
	data := cmd[5:]
	if mode == CardError {
		return errorSW(resp)
	}
	if len(data) < 6 || data[0] != 0x14 || int(data[1]) != len(data)-2 || data[3]&0xFE != 0x80 ||
		3+(int(data[4]&0x0F)<<8|int(data[5])) != len(data)-3 || mode == BadECM {
		return status(resp, 0x67, 0x00)
	}
	b := c.buf[:0]
	switch {
	case mode == NotSubscribed:
		b = append(b, 0x31, 2, 0x80, 0x00)
	case c.WrapCWs:
		b = append(b, 0x30, 64)
		b = append(b, c.buf[100:164]...) // stands in for an RSA block
	default:
		cw := cwOf(data[3:])
		b = append(b, 0x31, 2, 0x40, 0x00)
		for i := range 2 {
			b = append(b, 0x25, 13, 0, 0, byte(i), 0, 0)
			b = append(b, cw[8*i:8*i+8]...)
		}
	}
	return c.answer(resp, b)
}

// answer keeps b for DD CA and says 98 xx.
func (c *Conax) answer(resp, b []byte) int {
	c.pending = b
	return status(resp, 0x98, byte(c.chunk()))
}

// chunk returns the size of the next DD CA answer: everything, or as many
// whole nanos as fit in Chunk (at least one).
func (c *Conax) chunk() int {
	if c.Chunk <= 0 || c.Chunk >= len(c.pending) {
		return len(c.pending)
	}
	n := 0
	for n+1 < len(c.pending) {
		next := n + 2 + int(c.pending[n+1])
		if next > c.Chunk && n > 0 {
			break
		}
		n = next
	}
	return min(n, len(c.pending))
}

// read hands out the pending answer; 98 xx while more is left.
func (c *Conax) read(cmd, resp []byte) int {
	n := c.chunk()
	if n == 0 {
		return status(resp, 0x69, 0x85)
	}
	if leOf(cmd) != n {
		return status(resp, 0x6C, byte(n))
	}
	copy(resp, c.pending[:n])
	c.pending = c.pending[n:]
	if len(c.pending) > 0 {
		resp[n], resp[n+1] = 0x98, byte(c.chunk())
		return n + 2
	}
	resp[n], resp[n+1] = 0x90, 0x00
	return n + 2
}
