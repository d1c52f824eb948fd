package cardreader_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

func TestInverseConvention(t *testing.T) {
	for _, atr := range [][]byte{t0ATR(0x3F, 0x11, 0), t1ATR(0x3F, 0x11, 32, false)} {
		bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: atr}, opts(), func(e *env) {
			exchange(t, e.reader, 100)
			s := e.reader.Stats()
			if s.Convention != "inverse" || e.slot.Config().Parity != hal.ParityOdd {
				t.Errorf("convention %q parity %v", s.Convention, e.slot.Config().Parity)
			}
			if want := strings.ToUpper(string(hexOf(atr))); s.ATR != want {
				t.Errorf("ATR %s, want %s", s.ATR, want)
			}
		})
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func TestGuardTimeTC1(t *testing.T) {
	update := []byte{0x00, 0xD6, 0x00, 0x00, 0x04, 1, 2, 3, 4}
	for _, tc := range []struct {
		n, guard int
	}{{0, 0}, {5, 5}, {255, 0}} {
		bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t0ATR(0x3B, 0x11, byte(tc.n))}, opts(), func(e *env) {
			if g := e.slot.Config().GuardETU; g != tc.guard {
				t.Fatalf("N=%d: link guard time %d etu, want %d", tc.n, g, tc.guard)
			}
			start := time.Now()
			if _, err := e.reader.Transmit(update, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			el := time.Since(start) // fake clock: bubble runs synctest
			etu := e.slot.Config().ETU()
			paced := time.Duration(7*(12+tc.guard)) * etu // 4 gaps in the header, 3 in the data
			if tc.guard > 0 && el < paced {
				t.Errorf("N=%d: command took %v, pacing needs %v", tc.n, el, paced)
			}
			if tc.guard == 0 && el > 20*etu {
				t.Errorf("N=%d: command took %v without pacing", tc.n, el)
			}
		})
	}
}

func TestSpeedSelection(t *testing.T) {
	const clock = 4_000_000
	specific := []byte{0x3B, 0x90, 0x96, 0x10, 0x00}
	for _, tc := range []struct {
		name             string
		atr              []byte
		pps              cardsim.PPSMode
		mod              func(*cardreader.Options)
		baud, f, d       int
		ppsSeen          int64
		resets, failures uint64
	}{
		{"PPS accepted", t0ATR(0x3B, 0x96, 0), cardsim.PPSAccept, nil, 250000, 512, 32, 1, 1, 0},
		{"PPS accepted T=1", t1ATR(0x3B, 0x95, 254, false), cardsim.PPSAccept, nil, 125000, 512, 16, 1, 1, 0},
		{"maxbaud caps", t0ATR(0x3B, 0x96, 0), cardsim.PPSAccept, func(o *cardreader.Options) { o.MaxBaud = 130000 }, 125000, 512, 16, 1, 1, 0},
		{"PPS refused: cold reset, defaults", t0ATR(0x3B, 0x96, 0), cardsim.PPSRefuse, nil, 10753, 372, 1, 1, 2, 1},
		{"PPS bad PCK: cold reset, defaults", t1ATR(0x3B, 0x96, 254, false), cardsim.PPSBadPCK, nil, 10753, 372, 1, 1, 2, 1},
		{"PPS1 omitted: defaults", t0ATR(0x3B, 0x96, 0), cardsim.PPSOmitPPS1, nil, 10753, 372, 1, 1, 1, 0},
		{"deprecated: no PPS", t0ATR(0x3B, 0x96, 0), cardsim.PPSAccept, func(o *cardreader.Options) { o.Deprecated = true }, 10753, 372, 1, 0, 1, 0},
		{"specific mode: TA1 without PPS", specific, cardsim.PPSAccept, nil, 250000, 512, 32, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.mod != nil {
				tc.mod(&o)
			}
			bubble(t, haltest.SlotOptions{Echo: true, ClockHz: clock}, cardsim.Config{ATR: tc.atr, PPS: tc.pps}, o, func(e *env) {
				exchange(t, e.reader, 30) // the card marks bytes at a wrong speed as framing errors
				s := e.reader.Stats()
				if s.Baud != tc.baud || s.F != tc.f || s.D != tc.d {
					t.Errorf("baud %d F %d D %d, want %d %d %d", s.Baud, s.F, s.D, tc.baud, tc.f, tc.d)
				}
				if e.sim.C.PPS.Load() != tc.ppsSeen || s.ColdResets != tc.resets || s.PPSFailures != tc.failures {
					t.Errorf("card saw %d PPS; host cold resets %d PPS failures %d; want %d %d %d",
						e.sim.C.PPS.Load(), s.ColdResets, s.PPSFailures, tc.ppsSeen, tc.resets, tc.failures)
				}
			})
		})
	}
}

func TestLifecycleInsertRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := setup(t, haltest.SlotOptions{Echo: true, Empty: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false)}, opts())
		defer stop()
		synctest.Wait()
		if st := e.reader.State(); st != cardreader.StateAbsent {
			t.Fatalf("empty slot: state %v", st)
		}
		if _, err := e.reader.Transmit(case4(1), make([]byte, 10)); !errors.Is(err, cardreader.ErrNotReady) {
			t.Errorf("Transmit on empty slot: %v", err)
		}
		for i := range 2 {
			e.card.Insert()
			e.ready()
			exchange(t, e.reader, 10)
			e.card.Remove()
			if err := e.reader.WaitState(e.ctx, cardreader.StateAbsent); err != nil {
				t.Fatal(err)
			}
			if s := e.reader.Stats(); s.Removals != uint64(i+1) || s.ColdResets != uint64(i+1) {
				t.Errorf("round %d: %+v", i, s)
			}
		}
	})
}

func TestLifecycleBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := opts()
		o.BackoffMin = cardreader.Duration(time.Second)
		o.BackoffMax = cardreader.Duration(4 * time.Second)
		// The card answers reset only after 1 s: longer than atr_timeout.
		cfg := cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0), ATRDelay: time.Second}
		e, stop := setup(t, haltest.SlotOptions{Echo: true}, cfg, o)
		defer stop()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		s := e.reader.Stats()
		// Attempts at about 0, 1.1, 3.2, 7.4, 11.5, 15.6 and 19.7 s.
		if s.ColdResets != 7 || s.Faults != 7 {
			t.Errorf("%d resets, %d faults in 20 s, want 7 (backoff 1, 2, 4, 4, … s)", s.ColdResets, s.Faults)
		}
		if s.State != cardreader.StateFault || !strings.Contains(s.LastError, "no answer to reset") || s.LastErrorState != cardreader.StateATR {
			t.Errorf("state %v, last error %q in %v", s.State, s.LastError, s.LastErrorState)
		}
	})
}

func TestChipFaultRecovers(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false), Delay: 300 * time.Millisecond}, opts(), func(e *env) {
		go func() {
			time.Sleep(100 * time.Millisecond)
			e.card.Fault()
		}()
		_, err := e.reader.Transmit(case4(8), make([]byte, 300))
		if !errors.Is(err, hal.ErrFault) {
			t.Fatalf("err %v, want hal.ErrFault", err)
		}
		if err := e.reader.WaitState(e.ctx, cardreader.StateFault); err != nil {
			t.Fatal(err)
		}
		e.ready() // reactivated after the backoff
		exchange(t, e.reader, 4)
	})
}

// testSystem is a card system that recognises cards by a historical byte
// and reads data during init.
type testSystem struct {
	hist     byte
	initRead int
}

func (s *testSystem) Name() string { return "testsys" }
func (s *testSystem) Identify(ctx context.Context, c cardreader.Card) (bool, error) {
	h := c.ATR().Historical
	return len(h) > 0 && h[0] == s.hist, nil
}
func (s *testSystem) Init(ctx context.Context, c cardreader.Card) error {
	resp := make([]byte, 40)
	n, err := c.Transmit([]byte{0x00, 0xB0, 0x00, 0x00, 0x20}, resp)
	s.initRead = n
	return err
}

func TestCardSystemHook(t *testing.T) {
	atr := []byte{0x3B, 0x02, 0x42, 0x99} // T=0, historical 42 99
	synctest.Test(t, func(t *testing.T) {
		sys := &testSystem{hist: 0x42}
		e, stop := setup(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: atr}, opts(), sys)
		defer stop()
		e.ready()
		if s := e.reader.Stats(); s.System != "testsys" || sys.initRead != 0x22 {
			t.Errorf("system %q, init read %d bytes", s.System, sys.initRead)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		e, stop := setup(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: atr}, opts(), &testSystem{hist: 0x55})
		defer stop()
		if err := e.reader.WaitState(e.ctx, cardreader.StateFault); err != nil {
			t.Fatal(err)
		}
		if s := e.reader.Stats(); !strings.Contains(s.LastError, cardreader.ErrUnknownCard.Error()) || s.LastErrorState != cardreader.StateIdentify {
			t.Errorf("last error %q in %v", s.LastError, s.LastErrorState)
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	if err := validate(cardreader.DefaultOptions()); err != "" {
		t.Errorf("defaults invalid: %s", err)
	}
	o := cardreader.DefaultOptions()
	o.IFSD, o.T1CRC, o.T1Retries, o.BackoffMax = 255, "crc32", 0, cardreader.Duration(time.Millisecond)
	got := validate(o)
	for _, key := range []string{"ifsd", "t1_crc", "t1_retries", "reset_backoff_max"} {
		if !strings.Contains(got, key+":") {
			t.Errorf("no problem reported for %s in %q", key, got)
		}
	}
	var d cardreader.Duration
	if err := d.UnmarshalText([]byte("250ms")); err != nil || time.Duration(d) != 250*time.Millisecond {
		t.Errorf("Duration: %v %v", d, err)
	}
}

func validate(o cardreader.Options) string {
	var b strings.Builder
	o.Validate(func(key, msg string) { b.WriteString(key + ": " + msg + "\n") })
	return b.String()
}

var _ = iso7816.DefaultF
