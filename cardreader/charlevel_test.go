package cardreader_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// isoEnv is a reader on a timed line with the ISO model card.
type isoEnv struct {
	t      *testing.T
	slot   *haltest.Slot
	card   *haltest.Card
	m      *isoCard
	reader *cardreader.Reader
	ctx    context.Context
}

// isoBubble runs f with a reader on a timed slot whose card is the ISO
// model for atr; prep adjusts the model before it runs. ready says whether
// to wait for StateReady first.
func isoBubble(t *testing.T, so haltest.SlotOptions, atr []byte, o cardreader.Options, prep func(*isoCard), wrap func(*haltest.Slot) hal.Slot, ready bool, f func(e *isoEnv)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		so.Timed = true
		slot, card := haltest.NewSlot(so)
		m := newISOCard(t, card, atr)
		if prep != nil {
			prep(m)
		}
		var hs hal.Slot = slot
		if wrap != nil {
			hs = wrap(slot)
		}
		r, err := cardreader.New(hs, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cardDone, readerDone := make(chan struct{}), make(chan struct{})
		go func() { m.run(); close(cardDone) }()
		go func() { r.Run(ctx); close(readerDone) }()
		defer func() {
			cancel()
			<-readerDone
			slot.Close()
			<-cardDone
		}()
		e := &isoEnv{t: t, slot: slot, card: card, m: m, reader: r, ctx: ctx}
		if ready {
			wctx, wcancel := context.WithTimeout(ctx, time.Minute)
			defer wcancel()
			if err := r.WaitState(wctx, cardreader.StateReady); err != nil {
				t.Fatalf("%v; stats %+v", err, r.Stats())
			}
		}
		f(e)
	})
}

// transmit sends cmd and returns the response, failing the test on error.
func (e *isoEnv) transmit(cmd []byte) []byte {
	e.t.Helper()
	resp := make([]byte, 300)
	n, err := e.reader.Transmit(cmd, resp)
	if err != nil {
		e.t.Fatalf("Transmit % X: %v; stats %+v", cmd, err, e.reader.Stats())
	}
	return resp[:n]
}

// etus returns the distance from a to b in b's etu.
func etusBetween(a, b haltest.Char) float64 {
	return float64(b.At.Sub(a.At)) / float64(b.ETU)
}

// checkLine checks ISO/IEC 7816-3 character timing over a trace: no
// collisions; characters in opposite directions at least turn etu apart
// (16 for T=0, 22 = BGT for T=1; leading edge to leading edge);
// characters of the host at least hostGap etu apart; a refused character
// repeated no earlier than 13 etu after its start (error signal at 10.5
// etu, repetition at least 2 etu after it is seen at 11).
func checkLine(t *testing.T, trace []haltest.Char, turn int, hostGap float64) {
	t.Helper()
	if len(trace) == 0 {
		t.Fatal("empty trace")
	}
	hostAfterCard, cardAfterHost, hostHost := 1e9, 1e9, 1e9
	for i, c := range trace {
		if c.Collision {
			t.Errorf("char %d (%v) collided", i, c)
		}
		if i == 0 {
			continue
		}
		p := trace[i-1]
		d := etusBetween(p, c)
		switch {
		case p.FromCard && !c.FromCard:
			hostAfterCard = min(hostAfterCard, d)
		case !p.FromCard && c.FromCard:
			cardAfterHost = min(cardAfterHost, d)
		case !p.FromCard && !p.Refused:
			hostHost = min(hostHost, d)
		}
		switch {
		case p.FromCard != c.FromCard && d < float64(turn)-0.01:
			t.Errorf("char %d (%v) starts %.1f etu after %v, want >= %d", i, c, d, p, turn)
		case p.Refused && d < 13-0.01:
			t.Errorf("char %d (%v) repeats %.1f etu after the refused %v, want >= 13", i, c, d, p)
		case !c.FromCard && !p.FromCard && d < hostGap-0.01:
			t.Errorf("host char %d (%v) starts %.1f etu after the previous, want >= %.0f", i, c, d, hostGap)
		}
	}
	t.Logf("%d characters; least distance between leading edges: host after card %.1f etu, card after host %.1f etu, host after host %.1f etu",
		len(trace), hostAfterCard, cardAfterHost, hostHost)
	if t.Failed() {
		for i, c := range trace {
			t.Logf("%3d %s %8.1f etu  %v", i, c.At.Format("05.000000"), etusBetween(trace[0], c), c)
		}
	}
}

// t0Plain is a T=0 card without TA1 (no PPS) and two historical bytes.
var t0Plain = []byte{0x3B, 0x02, 0x14, 0x50}

// TestCharT0Turnaround drives T=0 cases 1, 2 (6Cxx) and 4 (61xx) and
// checks that the host keeps 16 etu to the card's last character every
// time: after the ATR, after 90 00, after 6Cxx, after 61xx.
func TestCharT0Turnaround(t *testing.T) {
	isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, opts(), nil, nil, true, func(e *isoEnv) {
		if got := e.transmit([]byte{0x00, 0x44, 0x00, 0x00}); !bytes.Equal(got, []byte{0x90, 0x00}) {
			t.Errorf("case 1: % X", got)
		}
		if got := e.transmit([]byte{0x00, 0xB0, 0x00, 0x00, 0x08}); len(got) != 18 || got[16] != 0x90 {
			t.Errorf("case 2 after 6C10: % X", got)
		}
		cmd := []byte{0x00, 0xDA, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x00}
		if got := e.transmit(cmd); !bytes.Equal(got, []byte{1, 2, 3, 4, 0x90, 0x00}) {
			t.Errorf("case 4 via 61 04: % X", got)
		}
		e.transmit([]byte{0x00, 0x44, 0x00, 0x00})
		checkLine(t, e.card.Trace(), 16, 12)
	})
}

// TestCharPPSTiming checks the PPS request: 16 etu after the ATR, and with
// TC1 = 32 every character 12 + 32 etu after the previous one, before and
// after the speed change.
func TestCharPPSTiming(t *testing.T) {
	atr := []byte{0x3B, 0x50, 0x13, 0x20} // TA1 13 (D = 4), TC1 N = 32, T=0
	isoBubble(t, haltest.SlotOptions{Echo: true}, atr, opts(), nil, nil, true, func(e *isoEnv) {
		if s := e.reader.Stats(); s.D != 4 || s.Baud != 38400 {
			t.Fatalf("PPS not applied: %+v", s)
		}
		e.transmit([]byte{0x00, 0xD6, 0x00, 0x00, 0x03, 7, 8, 9})
		trace := e.card.Trace()
		checkLine(t, trace, 16, 44)
		// The PPS request is the first host character.
		for i, c := range trace {
			if !c.FromCard {
				if c.B != 0xFF || i != len(atr) {
					t.Errorf("first host char %d is %v, want PPSS after the %d ATR chars", i, c, len(atr))
				}
				break
			}
		}
	})
}

// TestCharATRGap sends an ATR whose last historical byte comes 12,000 etu
// after the one before (§8.1 allows 9,600): the gap ends the ATR; strict
// mode refuses it, lenient mode reports the truncation, and the late byte
// is never taken for a procedure byte.
func TestCharATRGap(t *testing.T) {
	gap := func(m *isoCard) { m.gapAt, m.gapETU = 3, 12000 }
	t.Run("lenient", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, opts(), gap, nil, true, func(e *isoEnv) {
			s := e.reader.Stats()
			if !strings.Contains(s.ATRNote, "gap") || s.ATR != "3B0214" {
				t.Errorf("ATR %s note %q, want the truncation reported", s.ATR, s.ATRNote)
			}
			if got := e.transmit([]byte{0x00, 0x44, 0x00, 0x00}); !bytes.Equal(got, []byte{0x90, 0x00}) {
				t.Errorf("first command after the cut ATR: % X", got)
			}
			checkLine(t, e.card.Trace(), 16, 12)
		})
	})
	t.Run("strict", func(t *testing.T) {
		o := opts()
		o.ATRStrict = true
		isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, o, gap, nil, false, func(e *isoEnv) {
			if err := e.reader.WaitState(e.ctx, cardreader.StateFault); err != nil {
				t.Fatal(err)
			}
			if s := e.reader.Stats(); !strings.Contains(s.LastError, "gap over 9600 etu") {
				t.Errorf("last error %q, want the gap named", s.LastError)
			}
		})
	})
}

// TestCharGetResponseLe sends a case 4 command with Le = 4 to a card that
// has 9 bytes (61 09): GET RESPONSE asks for 4 and the answer holds 4.
func TestCharGetResponseLe(t *testing.T) {
	isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, opts(), nil, nil, true, func(e *isoEnv) {
		cmd := []byte{0x00, 0xDA, 0x00, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x04}
		got := e.transmit(cmd)
		if !bytes.Equal(got, []byte{1, 2, 3, 4, 0x61, 0x05}) {
			t.Errorf("response % X, want 4 bytes and the card's 61 05", got)
		}
		e.m.mu.Lock()
		p3 := append([]byte(nil), e.m.getRespP3...)
		e.m.mu.Unlock()
		if !bytes.Equal(p3, []byte{0x04}) {
			t.Errorf("GET RESPONSE P3 % X, want 04", p3)
		}
		checkLine(t, e.card.Trace(), 16, 12)
	})
}

// TestCharT0Repetition covers §7.3 in both directions: the card refuses a
// header character (the host repeats it), and the card sends a data
// character with a parity error to a host whose UART signals it (the card
// repeats it) or to a plain UART (the command fails with a parity error).
func TestCharT0Repetition(t *testing.T) {
	read := []byte{0x00, 0xB0, 0x00, 0x00, 0x10}
	want := append(counting(0x10, 16), 0x90, 0x00)
	t.Run("card refuses a host character", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, opts(), nil, nil, true, func(e *isoEnv) {
			e.m.nackAfter(3)
			if got := e.transmit(read); !bytes.Equal(got, want) {
				t.Errorf("response % X", got)
			}
			trace := e.card.Trace()
			refused := 0
			for i, c := range trace {
				if c.Refused && !c.FromCard {
					refused++
					if n := trace[i+1]; n.FromCard || n.B != c.B {
						t.Errorf("refused %v followed by %v, want its repetition", c, n)
					}
				}
			}
			if refused != 1 {
				t.Errorf("%d refused host characters, want 1", refused)
			}
			checkLine(t, trace, 16, 12)
		})
	})
	t.Run("host signals a card parity error", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true, ErrorSignal: true}, t0Plain, opts(), nil, nil, true, func(e *isoEnv) {
			e.m.fault(func(m *isoCard) { m.badCardData = true })
			if got := e.transmit(read); !bytes.Equal(got, want) {
				t.Errorf("response % X", got)
			}
			trace := e.card.Trace()
			n := 0
			for _, c := range trace {
				if c.Refused && c.FromCard {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d refused card characters, want 1", n)
			}
			checkLine(t, trace, 16, 12)
		})
	})
	t.Run("plain UART gets the character marked", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, opts(), nil, nil, true, func(e *isoEnv) {
			e.m.fault(func(m *isoCard) { m.badCardData = true })
			_, err := e.reader.Transmit(read, make([]byte, 300))
			if !errors.Is(err, hal.ErrParity) {
				t.Errorf("err %v, want a parity error", err)
			}
			// The rest of the card's answer is drained, not collided with.
			if got := e.transmit(read); !bytes.Equal(got, want) {
				t.Errorf("next response % X", got)
			}
			checkLine(t, e.card.Trace(), 16, 12)
		})
	})
	t.Run("repetitions run out", func(t *testing.T) {
		o := opts()
		o.T0Repeat = 0
		isoBubble(t, haltest.SlotOptions{Echo: true}, t0Plain, o, nil, nil, true, func(e *isoEnv) {
			e.m.nackAfter(2)
			_, err := e.reader.Transmit(read, make([]byte, 300))
			if !errors.Is(err, hal.ErrNACK) {
				t.Errorf("err %v, want hal.ErrNACK", err)
			}
			// The card waits for the refused character: satd resets it.
			if err := e.reader.WaitState(e.ctx, cardreader.StateReady); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if err := e.reader.WaitState(e.ctx, cardreader.StateReady); err != nil {
				t.Fatal(err)
			}
			if s := e.reader.Stats(); s.WarmResets+s.ColdResets < 2 {
				t.Errorf("stats %+v, want the card reset after the refusal", s)
			}
			if got := e.transmit(read); !bytes.Equal(got, want) {
				t.Errorf("response after the reset % X", got)
			}
		})
	})
}

// t1Plain is a T=1 card: IFSC 254, BWI 4, CWI 5, LRC.
var t1Plain = t1ATR(0x3B, 0x11, 254, false)

// TestCharT1BGT checks BGT (22 etu) between the card's blocks and the
// host's, over S(IFS), a plain exchange and the host's R-blocks.
func TestCharT1BGT(t *testing.T) {
	isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, nil, true, func(e *isoEnv) {
		exchangeISO(e, 10)
		exchangeISO(e, 3)
		checkLine(t, e.card.Trace(), 22, 12)
	})
}

// exchangeISO sends a case 3-like command with n data bytes to the T=1
// model, which answers with the data and 90 00.
func exchangeISO(e *isoEnv, n int) {
	e.t.Helper()
	cmd := append([]byte{0x00, 0xDA, 0x00, 0x00, byte(n)}, counting(0x40, n)...)
	got := e.transmit(cmd)
	if !bytes.Equal(got, append(counting(0x40, n), 0x90, 0x00)) {
		e.t.Errorf("response % X", got)
	}
}

// TestCharT1CRCVariant runs a card that computes the ISO/IEC 13239 CRC
// against the default t1_crc = ccid: after the EDC error on the first
// block the host tries the other variant, keeps it, and remembers it for
// the card's next activation.
func TestCharT1CRCVariant(t *testing.T) {
	atr := t1ATR(0x3B, 0x11, 254, true)
	isoBubble(t, haltest.SlotOptions{Echo: true}, atr, opts(), func(m *isoCard) { m.crc = crcISO }, nil, true, func(e *isoEnv) {
		exchangeISO(e, 20)
		first := e.m.count(func(m *isoCard) int { return m.edcErrsIn })
		if first != 1 {
			t.Errorf("card saw %d EDC errors, want 1 (the first block only)", first)
		}
		e.card.Remove()
		if err := e.reader.WaitState(e.ctx, cardreader.StateAbsent); err != nil {
			t.Fatal(err)
		}
		e.card.Insert()
		if err := e.reader.WaitState(e.ctx, cardreader.StateReady); err != nil {
			t.Fatal(err)
		}
		exchangeISO(e, 20)
		again := e.m.count(func(m *isoCard) int { return m.edcErrsIn })
		if s := e.reader.Stats(); again != 1 || s.ColdResets != 2 || s.WarmResets != 0 {
			t.Errorf("after re-insertion: card EDC errors %d, stats %+v; want the variant remembered", again, s)
		}
		checkLine(t, e.card.Trace(), 22, 12)
	})
}

// TestCharT1CRCModel checks the model's CRCs against the vectors of the
// specification (block 00 00 00: pcsc-lite 39 33, ISO/IEC 13239 CC C6).
func TestCharT1CRCModel(t *testing.T) {
	if got := appendEDC([]byte{0, 0, 0}, 2, crcCCID)[3:]; !bytes.Equal(got, []byte{0x39, 0x33}) {
		t.Errorf("CCID CRC % X", got)
	}
	if got := appendEDC([]byte{0, 0, 0}, 2, crcISO)[3:]; !bytes.Equal(got, []byte{0xCC, 0xC6}) {
		t.Errorf("ISO CRC % X", got)
	}
}

// TestCharT1LenTwoShort answers with a block whose LEN is two short: the
// host drains the two extra characters for CWT, asks again with a single
// R-block and gets the block; no warm reset, no collision.
func TestCharT1LenTwoShort(t *testing.T) {
	isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, nil, true, func(e *isoEnv) {
		exchangeISO(e, 8)
		e.card.ClearTrace()
		e.m.fault(func(m *isoCard) { m.lenTwoShort = true })
		exchangeISO(e, 8)
		exchangeISO(e, 4) // in step afterwards
		rb := e.m.count(func(m *isoCard) int { return m.rBlocksIn })
		if s := e.reader.Stats(); rb != 1 || s.WarmResets != 0 || s.Resynchs != 0 {
			t.Errorf("card saw %d R-blocks; stats %+v; want one R-block and no reset", rb, s)
		}
		trace := e.card.Trace()
		checkLine(t, trace, 22, 12)
		// The R-block starts at least CWT (43 etu) after the card's last
		// character of the bad block.
		for i := 1; i < len(trace); i++ {
			if !trace[i].FromCard && trace[i-1].FromCard {
				if d := etusBetween(trace[i-1], trace[i]); d < 43 {
					t.Errorf("host answered %.1f etu after the bad block, want the line drained for CWT", d)
				}
				break
			}
		}
	})
}

// TestCharT1Abort has the card answer a command with S(ABORT request):
// the host answers S(ABORT response), then reads the card's R-block that
// hands the turn back, and the next command runs in step.
func TestCharT1Abort(t *testing.T) {
	isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, nil, true, func(e *isoEnv) {
		exchangeISO(e, 8)
		e.m.fault(func(m *isoCard) { m.abortNext = true })
		_, err := e.reader.Transmit(append([]byte{0x00, 0xDA, 0x00, 0x00, 0x02}, 1, 2), make([]byte, 300))
		if !errors.Is(err, cardreader.ErrAborted) {
			t.Fatalf("err %v, want ErrAborted", err)
		}
		exchangeISO(e, 5)
		exchangeISO(e, 6)
		rb := e.m.count(func(m *isoCard) int { return m.rBlocksIn })
		if s := e.reader.Stats(); rb != 0 || s.WarmResets != 0 || s.Resynchs != 0 || s.State != cardreader.StateReady {
			t.Errorf("card saw %d R-blocks, stats %+v; want the exchange in step", rb, s)
		}
		checkLine(t, e.card.Trace(), 22, 12)
	})
}

// TestCharT1Parity covers parity errors in T=1, where there is no
// character repetition: a card character with bad parity makes the host
// ask again with R(EDC/parity error), and a host character the card
// receives with bad parity makes the card ask again.
func TestCharT1Parity(t *testing.T) {
	t.Run("card to host", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, nil, true, func(e *isoEnv) {
			e.m.fault(func(m *isoCard) { m.parityOnResp = true })
			exchangeISO(e, 8)
			rb := e.m.count(func(m *isoCard) int { return m.rBlocksIn })
			if rb != 1 {
				t.Errorf("card saw %d R-blocks, want 1", rb)
			}
			checkLine(t, e.card.Trace(), 22, 12)
		})
	})
	t.Run("host to card", func(t *testing.T) {
		isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, nil, true, func(e *isoEnv) {
			e.m.nackAfter(4)
			exchangeISO(e, 8)
			pi := e.m.count(func(m *isoCard) int { return m.parityIn })
			if s := e.reader.Stats(); pi != 1 || s.Retransmits != 1 {
				t.Errorf("card saw %d parity errors, host retransmits %d; want 1, 1", pi, s.Retransmits)
			}
			checkLine(t, e.card.Trace(), 22, 12)
		})
	})
}

// usbSlot presents a virtual slot as a USB serial adapter.
type usbSlot struct{ *haltest.Slot }

type usbLink struct{ *haltest.Slot }

func (s usbSlot) Link() hal.Link { return usbLink{s.Slot} }
func (usbLink) USB() bool        { return true }

// TestCharUSBSlack pauses 30 ms inside a T=1 block (CWT is 43 etu, 4.5
// ms): beyond CWT plus the native 20 ms slack, within the 40 ms that USB
// adapters get.
func TestCharUSBSlack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wrap    func(*haltest.Slot) hal.Slot
		rBlocks int
	}{
		{"native UART", nil, 1},
		{"USB adapter", func(s *haltest.Slot) hal.Slot { return usbSlot{s} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isoBubble(t, haltest.SlotOptions{Echo: true}, t1Plain, opts(), nil, tc.wrap, true, func(e *isoEnv) {
				e.m.fault(func(m *isoCard) { m.slowChar = 30 * time.Millisecond })
				exchangeISO(e, 8)
				rb := e.m.count(func(m *isoCard) int { return m.rBlocksIn })
				if rb != tc.rBlocks {
					t.Errorf("card saw %d R-blocks, want %d", rb, tc.rBlocks)
				}
			})
		})
	}
}
