package haltest

import "satd.dev/satd/hal"

// Byte marks kept next to queued bytes.
const (
	markNone uint8 = iota
	markParity
	markFraming
)

// byteQueue is a FIFO of bytes with an optional error mark per byte. It
// reuses its backing arrays, so it allocates only while growing.
type byteQueue struct {
	data  []byte
	marks []uint8
	r     int
}

func (q *byteQueue) len() int { return len(q.data) - q.r }

func (q *byteQueue) push(b byte, mark uint8) {
	if q.r > 0 && q.r == len(q.data) {
		q.reset()
	}
	q.data = append(q.data, b)
	q.marks = append(q.marks, mark)
}

func (q *byteQueue) reset() {
	q.data, q.marks, q.r = q.data[:0], q.marks[:0], 0
}

// pop copies unmarked bytes into p, stopping before the first marked byte.
// A marked byte at the head is returned alone with its error, following the
// hal.Link contract.
func (q *byteQueue) pop(p []byte) (int, error) {
	if len(p) == 0 || q.len() == 0 {
		return 0, nil
	}
	if m := q.marks[q.r]; m != markNone {
		p[0] = q.data[q.r]
		q.r++
		return 1, markErr(m)
	}
	n := 0
	for n < len(p) && q.r < len(q.data) && q.marks[q.r] == markNone {
		p[n] = q.data[q.r]
		n++
		q.r++
	}
	if q.r == len(q.data) {
		q.reset()
	}
	return n, nil
}

func markErr(m uint8) error {
	switch m {
	case markParity:
		return hal.ErrParity
	case markFraming:
		return hal.ErrFraming
	}
	return nil
}
