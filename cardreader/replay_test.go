package cardreader

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"satd.dev/satd/cardreader/t1"
	"satd.dev/satd/hal"
)

// scriptLink is a playback hal.Link: each Write must match the next
// expected host message, which releases the card's scripted answer for
// Read. It runs in the caller's goroutine and takes no wire time, so it
// measures the host stack alone.
type scriptLink struct {
	tx, rx [][]byte // per step: expected host bytes, card answer
	step   int
	pend   []byte
	cfg    hal.LineConfig
	err    error
}

var _ hal.Link = (*scriptLink)(nil)

func (l *scriptLink) Write(p []byte) (int, error) {
	want := l.tx[l.step%len(l.tx)]
	if !bytes.Equal(p, want) {
		l.err = fmt.Errorf("step %d: host wrote % X, script says % X", l.step, p, want)
		return 0, l.err
	}
	l.pend = l.rx[l.step%len(l.rx)]
	l.step++
	return len(p), nil
}

func (l *scriptLink) Read(p []byte) (int, error) {
	if len(l.pend) == 0 {
		return 0, hal.ErrTimeout
	}
	n := copy(p, l.pend)
	l.pend = l.pend[n:]
	return n, nil
}

func (l *scriptLink) SetReadDeadline(time.Time) error  { return nil }
func (l *scriptLink) Configure(c hal.LineConfig) error { l.cfg = c; return nil }
func (l *scriptLink) Config() hal.LineConfig           { return l.cfg }
func (l *scriptLink) Flush() error                     { l.pend = nil; return nil }

// newScriptedT1 returns a T=1 engine on a script of two 200-byte
// exchanges (N(S) 0 and 1 on both sides) that repeats.
func newScriptedT1(cmd []byte) (*t1Proto, *scriptLink) {
	answer := append(append([]byte(nil), cmd[5:5+200]...), 0x90, 0x00)
	l := &scriptLink{cfg: hal.LineConfig{Baud: 9600, StopBits: 2}}
	for ns := range uint8(2) {
		l.tx = append(l.tx, t1.Append(nil, 0, t1.IPCB(ns, false), cmd, t1.LRC))
		l.rx = append(l.rx, t1.Append(nil, 0, t1.IPCB(ns, false), answer, t1.LRC))
	}
	p := &port{link: l, removed: new(atomic.Bool)}
	return &t1Proto{
		p: p, edc: t1.LRC, bwt: time.Second, cwt: time.Second, ifsc: 254, atrIFSC: 254, ifsd: 254,
		retries: 3, resynchs: 3, counters: &Counters{}, wtxFactor: 1,
	}, l
}

func case4Cmd(n int) []byte {
	cmd := []byte{0x00, 0xDA, 0x00, 0x00, byte(n)}
	for i := range n {
		cmd = append(cmd, byte(i))
	}
	return append(cmd, 0x00)
}

func TestScriptedT1(t *testing.T) {
	cmd := case4Cmd(200)
	c, l := newScriptedT1(cmd)
	resp := make([]byte, 300)
	for i := range 4 {
		n, err := c.transmit(cmd, resp)
		if err != nil || n != 202 || !bytes.Equal(resp[:200], cmd[5:205]) {
			t.Fatalf("exchange %d: n %d err %v (link %v)", i, n, err, l.err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.transmit(cmd, resp) }); n != 0 || l.err != nil {
		t.Errorf("%v allocations per scripted exchange (link %v)", n, l.err)
	}
}

// BenchmarkT1Exchange200Host measures the host side alone of a 200-byte
// T=1 exchange: block encoding, EDC, decoding, sequence numbers and the
// copy into the caller's buffer, against a playback link with no wire time.
func BenchmarkT1Exchange200Host(b *testing.B) {
	cmd := case4Cmd(200)
	c, l := newScriptedT1(cmd)
	resp := make([]byte, 300)
	b.ReportAllocs()
	b.SetBytes(int64(len(cmd) + 202))
	for b.Loop() {
		if _, err := c.transmit(cmd, resp); err != nil {
			b.Fatal(err, l.err)
		}
	}
}
