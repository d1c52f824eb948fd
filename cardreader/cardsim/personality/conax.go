package personality

import (
	"bytes"
	"time"

	"satd.dev/satd/cardreader/cardsim"
)

// ConaxSubscription is one subscription or PPV record of a simulated
// Conax card.
type ConaxSubscription struct {
	ID         uint16
	Name       string
	Start, End time.Time
}

// Conax is a simulated Conax card speaking T=0. It answers:
//
//	DD 26 00 00 03 10 01 40   → 98 LL: nanos 20 (version), 2F (currency/language), 28 (CAID)
//	DD 82 00 00 11 11 0F <CAM record with the card's CAID> → 98 LL: nano 22 around two nanos 23
//	DD C6 00 00 03 1C 01 00   → 98 LL: subscription records
//	DD 26 00 00 03 1C 01 01   → 98 LL: PPV records
//	DD A2 00 00 LL 14 .. 00 <section> → 98 LL: nanos 25 (odd first), 31
//	DD C8 00 00 07 1D 05 01 <PIN> → 90 00 (right PIN) or 6A 80
//	DD CA 00 00 LL            → the pending answer, 98 xx while more is left
type Conax struct {
	Behaviour
	CAID    uint16 // default 0B00
	Version byte   // nano 20
	// Serial is the unique address (its first byte must not be 0);
	// Shared the shared address (first byte 0).
	Serial        uint32
	Shared        uint32
	Subscriptions []ConaxSubscription
	PPV           []ConaxSubscription
	// PIN is the parental PIN (4 ASCII digits) Parental mode waits for.
	PIN string
	// FixedCW, when set, is answered instead of the hash of the ECM.
	FixedCW *[16]byte
	// Chunk, when set, limits each DD CA answer so the host reads in
	// several 98 xx rounds.
	Chunk int

	unlocked bool
	pending  []byte
	buf      [512]byte
}

var _ cardsim.Personality = (*Conax)(nil)
var _ cardsim.Resetter = (*Conax)(nil)

// ConaxATR is the ATR of the simulated card: T=0, historical bytes "0B00".
func ConaxATR() []byte { return []byte{0x3B, 0x24, 0x00, '0', 'B', '0', '0'} }

// ConaxCAMRecord is the 15-byte CAM identity record of DD 82 for caid.
func ConaxCAMRecord(caid uint16) []byte {
	return []byte{0x01, 0xB0, 0x0F, 0xFF, 0xFF, 0xFB, 0x00, 0x00, 0x09, 0x04, byte(caid >> 8), byte(caid), 0xE0, 0x30, 0x2B}
}

// DataIn reports that every command except the DD CA read sends data.
func (*Conax) DataIn(h []byte) bool { return h[1] != 0xCA }

// Reset forgets the pending answer, the PIN and a hang.
func (c *Conax) Reset() {
	c.Behaviour.reset()
	c.pending, c.unlocked = nil, false
}

func (c *Conax) caid() uint16 {
	if c.CAID == 0 {
		return 0x0B00
	}
	return c.CAID
}

// Respond answers one APDU.
func (c *Conax) Respond(cmd, resp []byte) int {
	if c.Hung() {
		return status(resp, 0x90, 0x11)
	}
	if len(cmd) < 5 || cmd[0] != 0xDD {
		return status(resp, 0x6E, 0x00)
	}
	data := cmd[5:]
	switch {
	case cmd[1] == 0xCA:
		return c.read(cmd, resp)
	case cmd[1] == 0x26 && bytes.Equal(data, []byte{0x10, 0x01, 0x40}):
		caid := c.caid()
		return c.answer(resp, append(c.buf[:0], 0x20, 1, c.Version, 0x2F, 2, 0x11, 0x22, 0x28, 2, byte(caid>>8), byte(caid)))
	case cmd[1] == 0x26 && bytes.Equal(data, []byte{0x1C, 0x01, 0x01}):
		return c.answer(resp, c.records(c.PPV))
	case cmd[1] == 0xC6 && bytes.Equal(data, []byte{0x1C, 0x01, 0x00}):
		return c.answer(resp, c.records(c.Subscriptions))
	case cmd[1] == 0x82:
		if !bytes.Equal(data, append([]byte{0x11, 0x0F}, ConaxCAMRecord(c.caid())...)) {
			return status(resp, 0x6A, 0x80)
		}
		b := append(c.buf[:0], 0x22, 18)
		b = appendAddress(b, c.Serial)
		return c.answer(resp, appendAddress(b, c.Shared))
	case cmd[1] == 0xA2:
		return c.ecm(data, resp)
	case cmd[1] == 0xC8 && len(data) == 7 && bytes.Equal(data[:3], []byte{0x1D, 0x05, 0x01}):
		if c.PIN == "" || string(data[3:]) != c.PIN {
			return status(resp, 0x6A, 0x80)
		}
		c.unlocked = true
		return status(resp, 0x90, 0x00)
	}
	return status(resp, 0x6D, 0x00)
}

// appendAddress appends nano 23 (7 bytes, the address in bytes 3..6).
func appendAddress(b []byte, a uint32) []byte {
	return append(b, 0x23, 7, 0x00, 0x00, 0x00, byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
}

// records encodes subscription records: tag 32, id, 01 name, 30 start end,
// 20 classes.
func (c *Conax) records(subs []ConaxSubscription) []byte {
	b := c.buf[:0]
	for _, s := range subs {
		name := []byte(s.Name)
		b = append(b, 0x32, byte(2+2+len(name)+6+6), byte(s.ID>>8), byte(s.ID), 0x01, byte(len(name)))
		b = append(b, name...)
		b = append(b, 0x30, 4)
		b = appendConaxDate(b, s.Start)
		b = appendConaxDate(b, s.End)
		b = append(b, 0x20, 4, 0x00, 0x00, 0x00, 0x01)
	}
	return b
}

func appendConaxDate(b []byte, t time.Time) []byte {
	off := t.Year() - 1990
	return append(b, byte(off/10)<<5|byte(t.Day()), byte(off%10)<<4|byte(t.Month()))
}

// ecm checks the nano 14 wrapping and answers CWs, a denial or an error.
func (c *Conax) ecm(data, resp []byte) int {
	mode := c.begin()
	switch mode {
	case CardError:
		return errorSW(resp)
	case Hang:
		c.hung.Store(true)
		return status(resp, 0x90, 0x11)
	}
	if len(data) < 6 || data[0] != 0x14 || int(data[1]) != len(data)-2 || data[2] != 0x00 ||
		3+(int(data[4]&0x0F)<<8|int(data[5])) != len(data)-3 || mode == BadECM {
		return status(resp, 0x67, 0x00)
	}
	sec := data[3:]
	b := c.buf[:0]
	switch {
	case mode == NotSubscribed:
		return c.answer(resp, append(b, 0x31, 2, 0x80, 0x00))
	case mode == Parental && !c.unlocked:
		return c.answer(resp, append(b, 0x31, 2, 0x01, 0x00))
	case mode == RSA:
		b = append(b, 0x81, 64)
		b = append(b, make([]byte, 64)...) // stands in for an RSA block
		return c.answer(resp, append(b, 0x31, 2, 0x40, 0x00))
	}
	c.unlocked = false
	cw := cwFor(c.FixedCW, sec, mode)
	if mode == Wrapped {
		for i := range cw {
			cw[i] ^= 0x5A // "encrypted": checksums no longer hold
		}
		cw[3]++
		cw[11]++
	}
	// Odd CW first: the nano order is free.
	for _, i := range []int{1, 0} {
		b = append(b, 0x25, 13, 0x00, 0x00, byte(i), 0x00, 0x00)
		b = append(b, cw[8*i:8*i+8]...)
		if i == 1 {
			b = append(b, 0x31, 2, 0x40, 0x00)
		}
	}
	return c.answer(resp, b)
}

// answer keeps b for DD CA and says 98 xx (90 00 when there is nothing).
func (c *Conax) answer(resp, b []byte) int {
	if len(b) == 0 {
		return status(resp, 0x90, 0x00)
	}
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
