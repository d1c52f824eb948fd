package iso7816

import (
	"errors"
	"fmt"
)

// PPSS is the first byte of every PPS request and response.
const PPSS = 0xFF

// ErrPPS is wrapped by every PPS parse or validation error.
var ErrPPS = errors.New("invalid PPS")

// PPS is a protocol and parameters selection request or response.
type PPS struct {
	Protocol int
	// HasPPS1..3 say which optional bytes are present.
	HasPPS1, HasPPS2, HasPPS3 bool
	PPS1                      FIDI
	PPS2, PPS3                byte
}

// Len returns the encoded length, PPSS and PCK included.
func (p PPS) Len() int {
	n := 3
	for _, h := range [3]bool{p.HasPPS1, p.HasPPS2, p.HasPPS3} {
		if h {
			n++
		}
	}
	return n
}

// Append encodes p onto dst with its PCK.
func (p PPS) Append(dst []byte) []byte {
	pps0 := byte(p.Protocol & 0x0F)
	start := len(dst)
	dst = append(dst, PPSS, 0)
	if p.HasPPS1 {
		pps0 |= 0x10
		dst = append(dst, byte(p.PPS1))
	}
	if p.HasPPS2 {
		pps0 |= 0x20
		dst = append(dst, p.PPS2)
	}
	if p.HasPPS3 {
		pps0 |= 0x40
		dst = append(dst, p.PPS3)
	}
	dst[start+1] = pps0
	var pck byte
	for _, c := range dst[start:] {
		pck ^= c
	}
	return append(dst, pck)
}

// PPSLen returns the total length of a PPS whose first two bytes are ppss and
// pps0 (it does not validate them).
func PPSLen(pps0 byte) int {
	n := 3
	for m := byte(0x10); m <= 0x40; m <<= 1 {
		if pps0&m != 0 {
			n++
		}
	}
	return n
}

// ParsePPS decodes a complete PPS message, checking PPSS, the reserved bit,
// the length and PCK.
func ParsePPS(b []byte) (PPS, error) {
	var p PPS
	if len(b) < 3 {
		return p, fmt.Errorf("%w: %d bytes, need at least 3", ErrPPS, len(b))
	}
	if b[0] != PPSS {
		return p, fmt.Errorf("%w: PPSS is %02X, want FF", ErrPPS, b[0])
	}
	pps0 := b[1]
	if pps0&0x80 != 0 {
		return p, fmt.Errorf("%w: PPS0 %02X has reserved bit 8 set", ErrPPS, pps0)
	}
	if n := PPSLen(pps0); len(b) != n {
		return p, fmt.Errorf("%w: PPS0 %02X announces %d bytes, got %d", ErrPPS, pps0, n, len(b))
	}
	var x byte
	for _, c := range b {
		x ^= c
	}
	if x != 0 {
		return p, fmt.Errorf("%w: PCK %02X does not XOR to 0 (got %02X)", ErrPPS, b[len(b)-1], x)
	}
	p.Protocol = int(pps0 & 0x0F)
	i := 2
	if pps0&0x10 != 0 {
		p.HasPPS1, p.PPS1 = true, FIDI(b[i])
		i++
	}
	if pps0&0x20 != 0 {
		p.HasPPS2, p.PPS2 = true, b[i]
		i++
	}
	if pps0&0x40 != 0 {
		p.HasPPS3, p.PPS3 = true, b[i]
	}
	return p, nil
}

// CheckPPSResponse validates a card's response to request req and returns
// the parameters now in force: the requested PPS1 when echoed, the defaults
// when the card left PPS1 out.
func CheckPPSResponse(req PPS, resp []byte) (FIDI, error) {
	r, err := ParsePPS(resp)
	if err != nil {
		return 0, fmt.Errorf("PPS response % X: %w", resp, err)
	}
	if r.Protocol != req.Protocol {
		return 0, fmt.Errorf("PPS response % X: %w: protocol T=%d, requested T=%d", resp, ErrPPS, r.Protocol, req.Protocol)
	}
	for i, pair := range [3][2]bool{{req.HasPPS1, r.HasPPS1}, {req.HasPPS2, r.HasPPS2}, {req.HasPPS3, r.HasPPS3}} {
		if pair[1] && !pair[0] {
			return 0, fmt.Errorf("PPS response % X: %w: PPS%d present but not requested", resp, ErrPPS, i+1)
		}
	}
	if r.HasPPS2 && r.PPS2 != req.PPS2 || r.HasPPS3 && r.PPS3 != req.PPS3 {
		return 0, fmt.Errorf("PPS response % X: %w: PPS2/PPS3 differ from the request", resp, ErrPPS)
	}
	if !r.HasPPS1 {
		return DefaultFIDI, nil
	}
	if r.PPS1 != req.PPS1 {
		return 0, fmt.Errorf("PPS response % X: %w: PPS1 %02X, requested %02X", resp, ErrPPS, byte(r.PPS1), byte(req.PPS1))
	}
	return r.PPS1, nil
}
