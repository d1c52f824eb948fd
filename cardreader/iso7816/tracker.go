package iso7816

// ATRTracker follows an ATR as it arrives, byte by byte, and knows how many
// bytes are still due, so the reader stops reading when the ATR is complete
// instead of waiting for an idle timeout. It holds no buffer of its own.
type ATRTracker struct {
	n         int   // bytes seen
	y         uint8 // presence bits still expected in the current group
	inIface   bool  // still reading interface bytes
	hist      int   // historical bytes still expected
	tckNeeded bool
	done      bool
}

// Reset prepares the tracker for a new ATR.
func (t *ATRTracker) Reset() { *t = ATRTracker{} }

// Feed accounts for the next logical ATR byte (TS first) and reports whether
// the ATR is complete, TCK included when one is due.
func (t *ATRTracker) Feed(b byte) bool {
	if t.done {
		return true
	}
	t.n++
	switch {
	case t.n == 1: // TS
	case t.n == 2: // T0
		t.y = b >> 4
		t.hist = int(b & 0x0F)
		t.inIface = true
	case t.inIface:
		// The lowest pending presence bit is the byte just received.
		bit := t.y & -t.y
		t.y &^= bit
		if bit == HasTD {
			t.y = b >> 4
			if b&0x0F != 0 {
				t.tckNeeded = true
			}
		}
	case t.hist > 0:
		t.hist--
	default: // TCK
		t.done = true
		return true
	}
	if t.n >= 2 && t.inIface && t.y == 0 {
		t.inIface = false
	}
	if t.n >= 2 && !t.inIface && t.hist == 0 && !t.tckNeeded {
		t.done = true
	}
	if t.n >= MaxATRLen+8 { // a runaway card: stop at a hard bound
		t.done = true
	}
	return t.done
}

// Remaining returns how many more bytes the ATR announces (at least 1 until
// T0 has arrived).
func (t *ATRTracker) Remaining() int {
	if t.done {
		return 0
	}
	if t.n < 2 {
		return 2 - t.n
	}
	r := t.hist
	for y := t.y; y != 0; y &= y - 1 {
		r++
	}
	if t.tckNeeded {
		r++
	}
	return r
}

// Len returns the number of bytes fed so far.
func (t *ATRTracker) Len() int { return t.n }
