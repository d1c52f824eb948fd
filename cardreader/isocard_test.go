package cardreader_test

// isoCard is a card and line model written from ISO/IEC 7816-3 alone (the
// character frame, §7; ATR timing, §8; PPS, §9; T=0, §10; T=1, §11) for
// the character-level tests. It shares no code with cardsim or with the
// host stack: its T=0 procedure bytes, T=1 block codec, LRC and both CRC
// variants are its own, so a test fails when satd and the standard
// disagree rather than when satd disagrees with itself. It runs on a timed
// haltest line, whose trace records every character's start.

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// crcKind is the T=1 CRC the model card computes when its ATR asks for one.
type crcKind uint8

const (
	crcCCID crcKind = iota // CRC-16/MCRF4XX, high byte first (pcsc-lite)
	crcISO                 // ISO/IEC 13239: final XOR FFFF, low byte first
)

// isoCard is the card. Fields are set before run and not changed after,
// except the fault flags, which the card consumes under mu.
type isoCard struct {
	t    *testing.T
	c    *haltest.Card
	atr  []byte
	crc  crcKind // when the ATR's TC3 asks for a CRC
	edc  int     // 1 (LRC) or 2 (CRC), from the ATR
	ppsT int     // the protocol the ATR offers

	// ATR timing: a pause of gapETU initial etu before ATR byte gapAt.
	gapAt, gapETU int

	// T=0 behaviour: the card answers READ BINARY (B0) with respLen
	// bytes; UPDATE (D6) and ENVELOPE-like DA take data, DA answers with
	// 61xx and the data back.
	respLen int

	mu sync.Mutex
	// T=0 faults
	nackHostChar int // refuse the host's n-th character (1-based) once
	badCardData  bool
	hostChars    int
	getRespP3    []byte
	pend         []byte // T=0 response data waiting for GET RESPONSE
	// T=1 faults, each used once
	lenTwoShort  bool          // answer with LEN two less than the INF sent
	abortNext    bool          // answer the next command with S(ABORT request)
	parityOnResp bool          // send one character of the answer with bad parity
	slowChar     time.Duration // pause before the fifth character of the answer
	// T=1 counters
	rBlocksIn, edcErrsIn, parityIn, iBlocksIn int

	// T=1 state
	ns, nr uint8
	last   []byte
}

// newISOCard builds the model for atr on the card side of a timed slot.
func newISOCard(t *testing.T, c *haltest.Card, atr []byte) *isoCard {
	m := &isoCard{t: t, c: c, atr: atr, respLen: 16, edc: 1}
	// Walk the interface bytes for the first protocol and TC3.
	y, i, proto := atr[1]>>4, 2, -1
	for level := 1; ; level++ {
		if y&1 != 0 {
			i++
		}
		if y&2 != 0 {
			i++
		}
		if y&4 != 0 {
			if level == 3 && atr[i]&1 == 1 {
				m.edc = 2
			}
			i++
		}
		if y&8 == 0 {
			break
		}
		if proto < 0 {
			proto = int(atr[i] & 0x0F)
		}
		y = atr[i] >> 4
		i++
	}
	if proto > 0 {
		m.ppsT = proto
	}
	c.SetRxError(m.rxError)
	return m
}

// rxError is asked for each host character: it refuses the configured one.
func (m *isoCard) rxError(b byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hostChars++
	if m.nackHostChar > 0 && m.hostChars == m.nackHostChar {
		m.nackHostChar = 0
		return true
	}
	return false
}

// errGone ends the card loop: the slot closed, or a reset came.
var errGone = errors.New("isocard: reset or closed")

// run serves resets until the slot closes.
func (m *isoCard) run() {
	for {
		sig, ok := m.c.NextSignal()
		if !ok {
			var b [1]byte
			_, err := m.c.Read(b[:])
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if !errors.Is(err, haltest.ErrSignal) {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		if sig.Kind == haltest.SignalDeactivate {
			continue
		}
		if err := m.session(); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// etu is the current elementary time unit of the line.
func (m *isoCard) etu() time.Duration { return m.c.LineConfig().ETU() }

// session sends the ATR, handles a PPS and serves commands until reset.
func (m *isoCard) session() error {
	m.ns, m.nr, m.last = 0, 0, nil
	m.c.SetErrorSignal(m.ppsT == 0)    // §7.3: T=0 cards signal parity errors
	time.Sleep(500 * time.Microsecond) // 400-40000 clocks after RST
	for i, b := range m.atr {
		if i == m.gapAt && m.gapETU > 0 {
			time.Sleep(time.Duration(m.gapETU-12) * m.etu())
		}
		if _, err := m.c.Write([]byte{b}); err != nil {
			return err
		}
	}
	first, err := m.readByte(0)
	if err != nil {
		return err
	}
	if first == 0xFF {
		if first, err = m.pps(); err != nil {
			return err
		}
	}
	for {
		if m.ppsT == 1 {
			err = m.t1Block(first)
		} else {
			err = m.t0Command(first)
		}
		if err != nil {
			return err
		}
		if first, err = m.readByte(0); err != nil {
			return err
		}
	}
}

// readByte reads one host character; timeout 0 waits without limit.
func (m *isoCard) readByte(timeout time.Duration) (byte, error) {
	b, err := m.readMarked(timeout)
	if errors.Is(err, hal.ErrParity) {
		return b, nil
	}
	return b, err
}

// readMarked is readByte that reports a parity error on the character.
func (m *isoCard) readMarked(timeout time.Duration) (byte, error) {
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(timeout)
	}
	m.c.SetReadDeadline(dl)
	var b [1]byte
	_, err := m.c.Read(b[:])
	switch {
	case err == nil, errors.Is(err, hal.ErrParity):
		return b[0], err
	case errors.Is(err, haltest.ErrSignal), errors.Is(err, haltest.ErrInactive), errors.Is(err, hal.ErrNoCard):
		return 0, errGone
	}
	return 0, err
}

// send writes characters; the line model paces them.
func (m *isoCard) send(b ...byte) error {
	_, err := m.c.Write(b)
	return err
}

// turn waits 16 etu - 10 after the host's last character (the card, too,
// keeps the T=0 turnaround).
func (m *isoCard) turn(n int) { time.Sleep(time.Duration(n-10) * m.etu()) }

// pps answers a PPS request (PPSS already read) by echoing it, and returns
// the first character after it. The new speed applies from the first
// character after the response; the host switches the line itself.
func (m *isoCard) pps() (byte, error) {
	req := []byte{0xFF}
	p0, err := m.readByte(time.Second)
	if err != nil {
		return 0, err
	}
	req = append(req, p0)
	for bit := byte(0x10); bit <= 0x40; bit <<= 1 {
		if p0&bit != 0 {
			b, err := m.readByte(time.Second)
			if err != nil {
				return 0, err
			}
			req = append(req, b)
		}
	}
	pck, err := m.readByte(time.Second)
	if err != nil {
		return 0, err
	}
	req = append(req, pck)
	m.ppsT = int(p0 & 0x0F)
	m.c.SetErrorSignal(m.ppsT == 0)
	m.turn(16)
	if err := m.send(req...); err != nil {
		return 0, err
	}
	return m.readByte(0)
}

// t0Command serves one T=0 command whose CLA is cla.
func (m *isoCard) t0Command(cla byte) error {
	hdr := []byte{cla, 0, 0, 0, 0}
	for i := 1; i < 5; i++ {
		b, err := m.readByte(time.Second)
		if err != nil {
			return err
		}
		hdr[i] = b
	}
	ins, p3 := hdr[1], int(hdr[4])
	m.turn(16)
	switch ins {
	case 0xC0:
		m.mu.Lock()
		m.getRespP3 = append(m.getRespP3, hdr[4])
		pending := m.pend
		m.mu.Unlock()
		n := p3
		if n == 0 {
			n = 256
		}
		if n > len(pending) {
			return m.send(0x6C, byte(len(pending)))
		}
		if err := m.sendData(ins, pending[:n]); err != nil {
			return err
		}
		m.mu.Lock()
		m.pend = pending[n:]
		left := len(m.pend)
		m.mu.Unlock()
		if left > 0 {
			return m.send(0x61, byte(min(left, 256)))
		}
		return m.send(0x90, 0x00)
	case 0xB0: // data out: P3 is Le
		if p3 != m.respLen {
			return m.send(0x6C, byte(m.respLen))
		}
		data := make([]byte, m.respLen)
		for i := range data {
			data[i] = 0x10 + byte(i)
		}
		if err := m.sendData(ins, data); err != nil {
			return err
		}
		return m.send(0x90, 0x00)
	case 0xD6, 0xDA: // data in: P3 is Lc
		if err := m.send(ins); err != nil {
			return err
		}
		data := make([]byte, p3)
		for i := range data {
			b, err := m.readByte(time.Second)
			if err != nil {
				return err
			}
			data[i] = b
		}
		m.turn(16)
		if ins == 0xD6 {
			return m.send(0x90, 0x00)
		}
		m.mu.Lock()
		m.pend = data
		m.mu.Unlock()
		return m.send(0x61, byte(len(data)))
	}
	return m.send(0x90, 0x00) // case 1
}

// nackAfter makes the card refuse the host's k-th character from now.
func (m *isoCard) nackAfter(k int) {
	m.mu.Lock()
	m.nackHostChar = m.hostChars + k
	m.mu.Unlock()
}

// count reads a counter under the lock.
func (m *isoCard) count(f func(m *isoCard) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(m)
}

// fault sets one-shot faults under the lock.
func (m *isoCard) fault(f func(m *isoCard)) {
	m.mu.Lock()
	f(m)
	m.mu.Unlock()
}

// sendData sends ACK (INS) and the data; with badCardData the second data
// character goes out once with a parity error and, when the host signals
// the error, is repeated (§7.3).
func (m *isoCard) sendData(ins byte, data []byte) error {
	if err := m.send(ins); err != nil {
		return err
	}
	m.mu.Lock()
	bad := m.badCardData
	m.badCardData = false
	m.mu.Unlock()
	for i, b := range data {
		refused, err := m.c.WriteChar(b, bad && i == 1)
		if err != nil {
			return err
		}
		if refused {
			if _, err := m.c.WriteChar(b, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- T=1 ----

// Block kinds and PCB values (§11.3.2).
const (
	pcbR      = 0x80
	pcbS      = 0xC0
	sIFS      = 0x01
	sAbort    = 0x02
	sResponse = 0x20
)

// lrc is the XOR of the block bytes.
func lrc(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// crc16 is the reflected CCITT CRC (poly 0x8408, init FFFF) without final
// XOR; the ISO/IEC 13239 variant complements it.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendEDC appends the card's EDC of kind edc/crc to block.
func appendEDC(block []byte, edc int, kind crcKind) []byte {
	if edc == 1 {
		return append(block, lrc(block))
	}
	c := crc16(block)
	if kind == crcISO {
		c ^= 0xFFFF
		return append(block, byte(c), byte(c>>8))
	}
	return append(block, byte(c>>8), byte(c))
}

// block builds NAD PCB LEN INF EDC with NAD 0.
func (m *isoCard) block(pcb byte, inf []byte) []byte {
	b := append([]byte{0, pcb, byte(len(inf))}, inf...)
	return appendEDC(b, m.edc, m.crc)
}

// sendBlock sends a block BGT after the host's last character and keeps
// it for retransmission.
func (m *isoCard) sendBlock(b []byte) error {
	m.turn(22)
	m.last = b
	return m.send(b...)
}

// t1Block reads the rest of a host block that began with nad and answers.
func (m *isoCard) t1Block(nad byte) error {
	b := []byte{nad}
	bad := false
	need := 3
	for len(b) < need {
		c, err := m.readMarked(time.Second)
		if errors.Is(err, hal.ErrParity) {
			bad, err = true, nil
		}
		if err != nil {
			return err
		}
		b = append(b, c)
		if len(b) == 3 {
			need = 3 + int(b[2]) + m.edc
		}
	}
	if bad {
		m.mu.Lock()
		m.parityIn++
		m.mu.Unlock()
		return m.sendBlock(m.block(pcbR|m.nr<<4|0x01, nil))
	}
	if !bytes.Equal(appendEDC(append([]byte(nil), b[:len(b)-m.edc]...), m.edc, m.crc), b) {
		m.mu.Lock()
		m.edcErrsIn++
		m.mu.Unlock()
		return m.sendBlock(m.block(pcbR|m.nr<<4|0x01, nil))
	}
	pcb, inf := b[1], b[3:len(b)-m.edc]
	switch {
	case pcb&0x80 == 0: // I-block
		m.mu.Lock()
		m.iBlocksIn++
		abort := m.abortNext
		m.abortNext = false
		m.mu.Unlock()
		if pcb>>6&1 != m.nr {
			return m.sendBlock(m.block(pcbR|m.nr<<4|0x02, nil))
		}
		m.nr ^= 1
		if abort {
			return m.abort()
		}
		return m.answer(inf)
	case pcb&0xC0 == pcbR:
		m.mu.Lock()
		m.rBlocksIn++
		m.mu.Unlock()
		if m.last == nil {
			return m.sendBlock(m.block(pcbR|m.nr<<4, nil))
		}
		m.turn(22)
		return m.send(m.last...)
	case pcb == pcbS|sIFS:
		return m.sendBlock(m.block(pcbS|sResponse|sIFS, inf))
	}
	return m.sendBlock(m.block(pcbR|m.nr<<4|0x02, nil))
}

// answer sends the response to an APDU: its data bytes after the 5-byte
// header, then 90 00, in one I-block, with the configured one-shot faults.
func (m *isoCard) answer(apdu []byte) error {
	var data []byte
	if len(apdu) > 5 {
		data = apdu[5 : 5+int(apdu[4])]
	}
	inf := append(append([]byte(nil), data...), 0x90, 0x00)
	blk := m.block(m.ns<<6, inf)
	m.ns ^= 1
	m.mu.Lock()
	short, parity, slow := m.lenTwoShort, m.parityOnResp, m.slowChar
	m.lenTwoShort, m.parityOnResp, m.slowChar = false, false, 0
	m.mu.Unlock()
	m.turn(22)
	m.last = blk
	switch {
	case slow > 0: // a character gap beyond CWT
		if err := m.send(blk[:4]...); err != nil {
			return err
		}
		time.Sleep(slow)
		return m.send(blk[4:]...)
	case short: // LEN two short: the host finds the block two characters early
		bad := append([]byte(nil), blk...)
		bad[2] -= 2
		return m.send(bad...)
	case parity:
		for i, c := range blk {
			if _, err := m.c.WriteChar(c, i == 3); err != nil {
				return err
			}
		}
		return nil
	}
	return m.send(blk...)
}

// abort sends S(ABORT request) instead of an answer; after the host's
// S(ABORT response) the card hands the right to send back with an R-block
// (§11.6.3.2, rule 9) after a pause of its own.
func (m *isoCard) abort() error {
	if err := m.sendBlock(m.block(pcbS|sAbort, nil)); err != nil {
		return err
	}
	var resp [4]byte
	for i := range len(resp) - 1 + m.edc {
		c, err := m.readByte(time.Second)
		if err != nil {
			return err
		}
		resp[min(i, 3)] = c
	}
	if resp[1] != pcbS|sResponse|sAbort {
		m.t.Errorf("card: host answered S(ABORT) with PCB %02X", resp[1])
	}
	time.Sleep(200 * m.etu()) // the card takes its time
	return m.sendBlock(m.block(pcbR|m.nr<<4, nil))
}
