package netstream

import "time"

// An upstream that replaces another source (failover, switch-back,
// reconnect) first sends its burst: the seconds of history Icecast gives
// every new client. Played to listeners who are already at the live edge,
// that burst repeats audio they heard and adds its length to their latency
// at every switch. liveEdge finds where the burst ends so that only live
// audio reaches the ring.
//
// The rule: lead is the media received minus the wall time since the first
// frame. While the burst arrives, lead grows faster than real time; at the
// live edge it stays level (chunked delivery makes it wobble below its
// maximum, never above it by much). Once lead has not risen by more than
// edgeMargin for edgeQuiet, the frames received since its last rise are
// live: they are released, after silence for the gap and, for MP3, priming
// frames (see muteMP3).
const (
	edgeQuiet    = 150 * time.Millisecond
	edgeMargin   = 40 * time.Millisecond
	edgeMaxWait  = 2 * time.Second // an upstream that bursts longer is taken as it is
	edgeHeldMax  = 64 << 10        // live bytes held while the quiet period runs
	edgeFrameMax = 512             // live frames held
	primeFrames  = 2               // MP3 bit reservoir: 511 bytes back at most
	primeCap     = 2048            // the largest layer III frame is 1441 bytes
)

// heldFrame is a live frame kept while the quiet period runs.
type heldFrame struct {
	off, n int
	fi     frameInfo
}

// liveEdge is the live-edge search of one joining upstream. Its buffers are
// allocated once per mount and reused by every switch.
type liveEdge struct {
	active  bool
	t0      time.Time
	media   time.Duration
	maxLead time.Duration
	tMax    time.Time // when lead last rose: the live edge as seen so far

	held   []byte // fixed capacity edgeHeldMax
	frames []heldFrame
	prime  [primeFrames][]byte // the last burst frames, oldest first
	nPrime int
}

func newLiveEdge() *liveEdge {
	e := &liveEdge{held: make([]byte, 0, edgeHeldMax), frames: make([]heldFrame, 0, edgeFrameMax)}
	for i := range e.prime {
		e.prime[i] = make([]byte, 0, primeCap)
	}
	return e
}

// start begins a search for a new upstream.
func (e *liveEdge) start() {
	*e = liveEdge{active: true, held: e.held[:0], frames: e.frames[:0], prime: e.prime}
	for i := range e.prime {
		e.prime[i] = e.prime[i][:0]
	}
}

// add takes one frame that arrived at now. done reports that the live edge
// is found: frames then holds the live frames, to be released in order, and
// if taken is false f follows them.
func (e *liveEdge) add(now time.Time, f []byte, fi frameInfo) (done, taken bool) {
	if e.t0.IsZero() {
		e.t0 = now
	}
	e.media += fi.dur
	lead := e.media - now.Sub(e.t0)
	rising := lead > e.maxLead+edgeMargin ||
		lead > e.maxLead && now.Sub(e.tMax) < edgeMargin // the rest of a burst chunk
	if e.tMax.IsZero() || rising {
		// Still the burst: what was held was burst too.
		e.maxLead, e.tMax = lead, now
		for _, h := range e.frames {
			e.keepPrime(e.held[h.off : h.off+h.n])
		}
		e.held, e.frames = e.held[:0], e.frames[:0]
		e.keepPrime(f)
		return now.Sub(e.t0) >= edgeMaxWait, true
	}
	if len(e.held)+len(f) > cap(e.held) || len(e.frames) == cap(e.frames) {
		return true, false
	}
	e.frames = append(e.frames, heldFrame{off: len(e.held), n: len(f), fi: fi})
	e.held = append(e.held, f...)
	return now.Sub(e.tMax) >= edgeQuiet || now.Sub(e.t0) >= edgeMaxWait, true
}

// searching reports whether frames are flowing into an unfinished search;
// the gap is then bridged when the edge is found, not by the tick.
func (e *liveEdge) searching() bool { return e != nil && e.active && !e.t0.IsZero() }

// keepPrime remembers f as the newest burst frame.
func (e *liveEdge) keepPrime(f []byte) {
	if len(f) > primeCap {
		e.nPrime = 0 // not a layer III frame: nothing to prime with
		return
	}
	p := e.prime[0]
	copy(e.prime[:], e.prime[1:])
	e.prime[primeFrames-1] = append(p[:0], f...)
	e.nPrime = min(e.nPrime+1, primeFrames)
}

// primers returns the burst frames that precede the first held frame.
func (e *liveEdge) primers() [][]byte { return e.prime[primeFrames-e.nPrime:] }

// muteMP3 turns an MPEG layer III frame in place into one that decodes to
// silence but still feeds the decoder's bit reservoir: its side information
// is zeroed (main_data_begin 0, no Huffman bits in any granule) while its
// main data stays. The next frame of the same stream may reach up to 511
// bytes back into those bytes; without them it would decode from another
// stream's bytes (the click and "dequantization failed" at a splice). It
// reports false for anything else.
func muteMP3(f []byte) bool {
	if _, ok := parseMP3(f); !ok || (f[1]>>1)&3 != 1 {
		return false
	}
	side := 32
	mono := f[3]>>6 == 3
	switch {
	case f[1]&0x18 == 0x18 && mono: // MPEG-1
		side = 17
	case f[1]&0x18 != 0x18 && mono:
		side = 9
	case f[1]&0x18 != 0x18:
		side = 17
	}
	off := 4
	crc := f[1]&1 == 0
	if crc {
		off = 6
	}
	if len(f) < off+side {
		return false
	}
	clear(f[off : off+side])
	if crc {
		c := crc16(0xFFFF, f[2:4])
		c = crc16(c, f[6:6+side])
		f[4], f[5] = byte(c>>8), byte(c)
	}
	return true
}

// crc16 is the MPEG audio CRC (polynomial 0x8005, MSB first).
func crc16(c uint16, b []byte) uint16 {
	for _, x := range b {
		c ^= uint16(x) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x8005
			} else {
				c <<= 1
			}
		}
	}
	return c
}
