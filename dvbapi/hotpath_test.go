package dvbapi

import (
	"testing"
)

// altSolver is an in-process instant reader alternating between two CW
// pairs, so every new ECM changes one half.
type altSolver struct {
	cws [2][16]byte
	n   int
}

func (a *altSolver) Solve(req *ECMRequest) {
	a.n++
	req.Done.ECMAnswered(ECMAnswer{Tag: req.Tag, Result: Found, CW: a.cws[a.n&1], System: "Conax", Reader: "slot0", Protocol: "internal"})
}

// hotPath returns a running programme and a function that delivers the next
// ECM (alternating parity) as a FILTER_DATA message and returns the bytes
// written back.
func hotPath(t testing.TB, version int) func() []byte {
	s := &altSolver{cws: [2][16]byte{examplePair(cwEven, cwOdd), examplePair(cwEven2, cwOdd)}}
	c := testConn(t, s)
	if version >= 3 {
		c.feed(t, h("FF FF 00 01 00 03 01 41"))
	} else {
		c.feed(t, h("FF FF 00 01 00 02 01 41"))
	}
	prefix := ""
	if version >= 3 {
		prefix = "A5 00 00 00 07"
	}
	c.feed(t, h(prefix+exampleCAPMT))
	var msgs [2][]byte
	for i, table := range []byte{0x80, 0x81} {
		msgs[i] = append(h(prefix+"FF FF 00 00 00 00"), exampleECM(table)...)
	}
	c.take()
	var m ClientMessage
	i := 0
	return func() []byte {
		c.out = c.out[:0]
		if _, err := SplitClientMessage(msgs[i&1], true, &m); err != nil {
			t.Fatal(err)
		}
		i++
		c.handle(&m)
		return c.out
	}
}

// TestHotPathAllocs: FILTER_DATA in → CA_SET_DESCR + ECM_INFO + re-arm out
// allocates nothing in steady state.
func TestHotPathAllocs(t *testing.T) {
	for _, v := range []int{2, 3} {
		next := hotPath(t, v)
		for i := 0; i < 4; i++ {
			if out := next(); len(out) == 0 {
				t.Fatalf("v%d: no output for ECM %d", v, i)
			}
		}
		if n := testing.AllocsPerRun(200, func() {
			if out := next(); len(out) < CASetDescrLen {
				t.Fatal("no CA_SET_DESCR")
			}
		}); n != 0 {
			t.Errorf("v%d: %.1f allocations per ECM, want 0", v, n)
		}
	}
}

// BenchmarkFilterDataToCASetDescr measures the daemon's own cost from a
// FILTER_DATA message to the CA_SET_DESCR bytes with an instant solver.
func BenchmarkFilterDataToCASetDescr(b *testing.B) {
	for _, v := range []int{2, 3} {
		b.Run(map[int]string{2: "protocol2", 3: "protocol3"}[v], func(b *testing.B) {
			next := hotPath(b, v)
			b.ReportAllocs()
			for b.Loop() {
				next()
			}
		})
	}
}
