package uart

import "satd.dev/satd/hal"

// decoder undoes the kernel's PARMRK escaping (termios INPCK|PARMRK with
// IGNPAR and ISTRIP off): a literal 0xFF arrives as FF FF, a byte received
// with a parity or framing error as FF 00 xx, and a break as FF 00 00. The
// kernel does not say which error it was; xx = 00 is reported as
// hal.ErrFraming (break, or a card NACK seen at the stop bit) and anything
// else as hal.ErrParity. The state survives across reads, so an escape split
// between two reads decodes correctly.
type decoder struct {
	state uint8 // decNormal, decFF, decFF00
	// held is a marked byte waiting to be returned alone.
	held     byte
	heldMark error
}

const (
	decNormal uint8 = iota
	decFF
	decFF00
)

func (d *decoder) reset() { *d = decoder{} }

// takeHeld returns a held marked byte, if any.
func (d *decoder) takeHeld(dst []byte) (int, error, bool) {
	if d.heldMark == nil || len(dst) == 0 {
		return 0, nil, false
	}
	dst[0] = d.held
	err := d.heldMark
	d.held, d.heldMark = 0, nil
	return 1, err, true
}

// decode consumes src and writes plain bytes into dst. It stops when dst
// is full, or at a marked byte, which it holds for takeHeld when plain
// bytes precede it and returns directly (n == 1, mark) otherwise. used is
// how much of src was consumed.
func (d *decoder) decode(dst, src []byte) (n, used int, mark error) {
	for used < len(src) && n < len(dst) {
		c := src[used]
		used++
		switch d.state {
		case decNormal:
			if c == 0xFF {
				d.state = decFF
				continue
			}
			dst[n] = c
			n++
		case decFF:
			switch c {
			case 0xFF:
				d.state = decNormal
				dst[n] = 0xFF
				n++
			case 0x00:
				d.state = decFF00
			default:
				// Not produced by the kernel; keep both bytes as data.
				d.state = decNormal
				dst[n] = 0xFF
				n++
				used--
			}
		case decFF00:
			d.state = decNormal
			m := error(hal.ErrParity)
			if c == 0 {
				m = hal.ErrFraming
			}
			if n == 0 {
				dst[0] = c
				return 1, used, m
			}
			d.held, d.heldMark = c, m
			return n, used, nil
		}
	}
	return n, used, nil
}
