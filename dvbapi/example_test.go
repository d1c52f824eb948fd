package dvbapi

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"
)

// h decodes spaced hex; "|" separators are ignored.
func h(s string) []byte {
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopRWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopRWC) Close() error                { return nil }

// fixedSolver answers instantly with the CW pairs in cws, one per call.
type fixedSolver struct {
	cws   [][16]byte
	calls int
}

func (f *fixedSolver) Solve(req *ECMRequest) {
	cw := f.cws[min(f.calls, len(f.cws)-1)]
	f.calls++
	req.Done.ECMAnswered(ECMAnswer{Tag: req.Tag, Result: Found, CW: cw, System: "Conax", Reader: "slot0",
		Protocol: "internal", After: 180 * time.Millisecond})
}

var (
	cwEven  = h("E0 E1 E2 E3 E4 E5 E6 E7")
	cwOdd   = h("0A 0B 0C 0D 0E 0F 10 11")
	cwEven2 = h("A0 A1 A2 A3 A4 A5 A6 A7")
)

func examplePair(even, odd []byte) (p [16]byte) {
	copy(p[:8], even)
	copy(p[8:], odd)
	return p
}

// testConn is a network-mode connection without transport: messages are
// fed with feed and the bytes it would send are taken with take.
func testConn(t testing.TB, s ECMSolver) *conn {
	srv := NewServer(Options{Solver: s, ServerName: "satd 0.1"})
	return newConn(srv, nopRWC{}, srv.opt.Log, nil)
}

func (c *conn) feed(t testing.TB, msg []byte) {
	t.Helper()
	f := NewFramer()
	f.Write(msg)
	var m ClientMessage
	n := 0
	for {
		ok, err := f.Next(c.allowFrame(), &m)
		if err != nil {
			t.Fatalf("feed % X: %v", msg, err)
		}
		if !ok {
			break
		}
		n++
		if err := c.handle(&m); err != nil {
			t.Fatalf("handle: %v", err)
		}
	}
	if n == 0 || f.Buffered() != 0 {
		t.Fatalf("feed % X: %d messages, %d bytes left", msg, n, f.Buffered())
	}
}

func (c *conn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := append([]byte(nil), c.out...)
	c.out = c.out[:0]
	return b
}

func expectBytes(t *testing.T, step string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got % X\nwant % X", step, got, want)
	}
}

const exampleCAPMT = `9F 80 32 2B
	03 12 34 C1 F0 1B
	01
	81 08 00 00 00 00 00 01 00 01
	83 01 00
	86 01 00
	84 02 01 00
	09 04 0B 00 E2 00
	02 E1 01 F0 00
	03 E1 02 F0 00`

// exampleECM is a 61-byte table 0x80 section (section_length 0x3A).
func exampleECM(table byte) []byte {
	s := make([]byte, 61)
	s[0], s[1], s[2] = table, 0x70, 0x3A
	for i := 3; i < len(s); i++ {
		s[i] = byte(i)
	}
	return s
}

const (
	firstFilter = `40 3C 6F 2B | 00 | 00 | 00 | 02 00 |
		80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		F0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 | 00 00 0B B8 | 00 00 00 04`
	rearmOdd = `40 3C 6F 2B | 00 | 00 | 00 | 02 00 |
		81 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		FF 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 | 00 00 00 00 | 00 00 00 04`
	rearmEven = `40 3C 6F 2B | 00 | 00 | 00 | 02 00 |
		80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		FF 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 |
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 | 00 00 00 00 | 00 00 00 04`
	ecmInfoExample = `FF FF 00 03 | 00 | 12 34 | 0B 00 | 02 00 | 00 00 00 00 | 00 00 00 B4 |
		05 436F6E6178 | 05 736C6F7430 | 05 6C6F63616C | 08 696E7465726E616C | 00`
)

// TestWorkedExample replays spec §1.8 byte for byte (protocol 2), then the
// same exchange with protocol 3 framing (msgid 7).
func TestWorkedExample(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hello  string
		server string
		prefix string
	}{
		{"protocol2", `FF FF 00 01 | 00 02 | 09 | 54766865616465 6E64`, `FF FF 00 02 | 00 03 | 08 | 7361746420302E31`, ""},
		{"protocol3", `FF FF 00 01 00 03 07 456E69676D6132`, `A5 00 00 00 00 FF FF 00 02 00 03 08 7361746420302E31`, "A5 00 00 00 07"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConn(t, &fixedSolver{cws: [][16]byte{examplePair(cwEven, cwOdd), examplePair(cwEven2, cwOdd)}})
			p := func(s string) []byte { return h(tc.prefix + s) }
			c.feed(t, h(tc.hello))
			expectBytes(t, "SERVER_INFO", c.take(), h(tc.server))

			c.feed(t, p(exampleCAPMT))
			expectBytes(t, "DMX_SET_FILTER", c.take(), p(firstFilter))

			c.feed(t, append(p("FF FF 00 00 | 00 | 00"), exampleECM(0x80)...))
			var want []byte
			want = append(want, p("40 08 6F 87 | 00 | 00 00 01 01 | 00 00 00 00")...)
			want = append(want, p("40 08 6F 87 | 00 | 00 00 01 02 | 00 00 00 00")...)
			want = append(want, p("40 10 6F 86 | 00 | 00 00 00 00 | 00 00 00 00 | E0 E1 E2 E3 E4 E5 E6 E7")...)
			want = append(want, p("40 10 6F 86 | 00 | 00 00 00 00 | 00 00 00 01 | 0A 0B 0C 0D 0E 0F 10 11")...)
			want = append(want, p(ecmInfoExample)...)
			want = append(want, p(rearmOdd)...)
			expectBytes(t, "first CW", c.take(), want)

			// A repeat of the same parity is ignored.
			c.feed(t, append(p("FF FF 00 00 | 00 | 00"), exampleECM(0x80)...))
			expectBytes(t, "repeat", c.take(), nil)

			c.feed(t, append(p("FF FF 00 00 | 00 | 00"), exampleECM(0x81)...))
			want = append([]byte(nil), p("40 10 6F 86 | 00 | 00 00 00 00 | 00 00 00 00 | A0 A1 A2 A3 A4 A5 A6 A7")...)
			want = append(want, p(`FF FF 00 03 | 00 | 12 34 | 0B 00 | 02 00 | 00 00 00 00 | 00 00 00 B4 |
				05 436F6E6178 | 05 736C6F7430 | 05 6C6F63616C | 08 696E7465726E616C | 00`)...)
			want = append(want, p(rearmEven)...)
			expectBytes(t, "parity change", c.take(), want)

			c.feed(t, p("9F 80 3F 04 83 02 00 00"))
			want = append([]byte(nil), p("00 00 6F 2A | 00 | 00 | 00 | 02 00")...)
			want = append(want, p("40 08 6F 87 | 00 | 00 00 01 01 | FF FF FF FF")...)
			want = append(want, p("40 08 6F 87 | 00 | 00 00 01 02 | FF FF FF FF")...)
			expectBytes(t, "stop", c.take(), want)
		})
	}
}
