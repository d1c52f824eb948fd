package cardreader_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// counting returns n bytes counting up from start.
func counting(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestT0Cases(t *testing.T) {
	readBinary := func(le byte) []byte { return []byte{0x00, 0xB0, 0x00, 0x10, le} }
	update := append([]byte{0x00, 0xD6, 0x00, 0x00, 0x04}, 1, 2, 3, 4)
	tests := []struct {
		name string
		cfg  cardsim.Config
		cmd  []byte
		want []byte
	}{
		{"case 1", cardsim.Config{}, []byte{0x00, 0x44, 0x00, 0x00}, []byte{0x90, 0x00}},
		{"case 2 ACK", cardsim.Config{}, readBinary(0x20), append(counting(0x10, 0x20), 0x90, 0x00)},
		{"case 2 complemented ACK", cardsim.Config{T0Ack: cardsim.AckEach}, readBinary(0x08), append(counting(0x10, 8), 0x90, 0x00)},
		{"case 2 Le 256", cardsim.Config{}, readBinary(0x00), append(counting(0x10, 256), 0x90, 0x00)},
		{"case 3 ACK", cardsim.Config{}, update, []byte{0x90, 0x00}},
		{"case 3 complemented ACK", cardsim.Config{T0Ack: cardsim.AckEach}, update, []byte{0x90, 0x00}},
		{"case 2 INS^01 ACK", cardsim.Config{T0Ack: cardsim.AckOld}, readBinary(0x08), append(counting(0x10, 8), 0x90, 0x00)},
		{"case 2 INS^FE ACK", cardsim.Config{T0Ack: cardsim.AckOldEach}, readBinary(0x08), append(counting(0x10, 8), 0x90, 0x00)},
		{"case 3 INS^01 ACK", cardsim.Config{T0Ack: cardsim.AckOld}, update, []byte{0x90, 0x00}},
		{"case 4 INS^FE ACK", cardsim.Config{T0Ack: cardsim.AckOldEach, T0Chunk: 7}, case4(20), append(case4(20)[5:25], 0x90, 0x00)},
		{"case 4 61xx", cardsim.Config{}, case4(40), append(case4(40)[5:45], 0x90, 0x00)},
		{"case 4 61xx chain", cardsim.Config{T0Chunk: 16}, case4(100), append(case4(100)[5:105], 0x90, 0x00)},
		{"case 4 complemented ACK", cardsim.Config{T0Ack: cardsim.AckEach, T0Chunk: 7}, case4(20), append(case4(20)[5:25], 0x90, 0x00)},
		{"6Cxx", cardsim.Config{Personality: cardsim.Echo{FixedLen: 20}}, readBinary(0x10), append(counting(0x10, 20), 0x90, 0x00)},
		{"NULL storm", cardsim.Config{T0Nulls: 150}, case4(30), append(case4(30)[5:35], 0x90, 0x00)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ATR = t0ATR(0x3B, 0x11, 0)
			bubble(t, haltest.SlotOptions{Echo: true}, tc.cfg, opts(), func(e *env) {
				resp := make([]byte, 300)
				n, err := e.reader.Transmit(tc.cmd, resp)
				if err != nil {
					t.Fatalf("Transmit: %v", err)
				}
				if !bytes.Equal(resp[:n], tc.want) {
					t.Errorf("response % X\nwant     % X", resp[:n], tc.want)
				}
			})
		})
	}
}

func TestT0NullStormBounded(t *testing.T) {
	o := opts()
	o.T0MaxNulls = 100
	cfg := cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0), T0Nulls: 101}
	bubble(t, haltest.SlotOptions{Echo: true}, cfg, o, func(e *env) {
		_, err := e.reader.Transmit(case4(4), make([]byte, 300))
		if !errors.Is(err, cardreader.ErrProtocol) {
			t.Fatalf("err %v, want ErrProtocol for too many NULLs", err)
		}
	})
}

func TestT0NullRestartsWT(t *testing.T) {
	// A card that pauses 0.8 s (under WT = 1 s) before every NULL and
	// procedure byte: each NULL restarts WT, so the command succeeds
	// although it takes far longer than one WT. With 1.1 s pauses WT
	// expires.
	for _, tc := range []struct {
		gap  time.Duration
		fail bool
	}{{800 * time.Millisecond, false}, {1100 * time.Millisecond, true}} {
		cfg := cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0), T0Nulls: 3, T0NullGap: tc.gap}
		bubble(t, haltest.SlotOptions{Echo: true}, cfg, opts(), func(e *env) {
			start := time.Now()
			n, err := e.reader.Transmit(case4(4), make([]byte, 300))
			if tc.fail {
				if !errors.Is(err, cardreader.ErrMute) {
					t.Errorf("gap %v: err %v, want ErrMute", tc.gap, err)
				}
				return
			}
			if err != nil || n != 6 {
				t.Fatalf("gap %v: n %d err %v", tc.gap, n, err)
			}
			if el := time.Since(start); el < 3*time.Second { // fake clock: bubble runs synctest
				t.Errorf("took %v, the card stalled longer", el)
			}
		})
	}
}

func TestT0MuteCard(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0)}, opts(), func(e *env) {
		e.sim.SetMute(true)
		start := time.Now()
		_, err := e.reader.Transmit(case4(4), make([]byte, 300))
		if !errors.Is(err, cardreader.ErrMute) {
			t.Fatalf("err %v, want ErrMute", err)
		}
		if el := time.Since(start); el < time.Second || el > time.Second+50*time.Millisecond { // fake clock: bubble runs synctest
			t.Errorf("gave up after %v, want WT = 1 s plus slack", el)
		}
	})
}

func TestT0RemovedMidTransfer(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0)}, opts(), func(e *env) {
		e.sim.Inject(cardsim.FaultNone, cardsim.FaultRemove) // the 61xx SW, then half the data
		_, err := e.reader.Transmit(case4(64), make([]byte, 300))
		if !errors.Is(err, cardreader.ErrCardRemoved) {
			t.Fatalf("err %v, want ErrCardRemoved", err)
		}
		ctx := e.ctx
		if err := e.reader.WaitState(ctx, cardreader.StateAbsent); err != nil {
			t.Fatal(err)
		}
		if s := e.reader.Stats(); s.Removals != 1 {
			t.Errorf("removals %d", s.Removals)
		}
	})
}

// TestRemovalAbortsWithin50ms pulls the card while the host waits for a
// slow answer and measures the time from the detect edge to the error.
func TestRemovalAbortsWithin50ms(t *testing.T) {
	for _, atr := range [][]byte{t0ATR(0x3B, 0x11, 0), t1ATR(0x3B, 0x11, 254, false)} {
		cfg := cardsim.Config{ATR: atr, Delay: 500 * time.Millisecond}
		bubble(t, haltest.SlotOptions{Echo: true}, cfg, opts(), func(e *env) {
			var pulled time.Time
			go func() {
				time.Sleep(200 * time.Millisecond)
				pulled = time.Now()
				e.card.Remove()
			}()
			_, err := e.reader.Transmit(case4(8), make([]byte, 300))
			if !errors.Is(err, cardreader.ErrCardRemoved) {
				t.Fatalf("err %v, want ErrCardRemoved", err)
			}
			if d := time.Since(pulled); d > 50*time.Millisecond { // fake clock: bubble runs synctest
				t.Errorf("aborted %v after removal, want <= 50 ms", d)
			}
		})
	}
}

// TestT0ParityRepeated has the card send a response byte with a parity
// error: a host whose UART signals the error gets it repeated and the
// command succeeds; a plain UART gets it marked and the command fails.
func TestT0ParityRepeated(t *testing.T) {
	for _, signal := range []bool{true, false} {
		cfg := cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0)}
		bubble(t, haltest.SlotOptions{Echo: true, ErrorSignal: signal}, cfg, opts(), func(e *env) {
			e.sim.Inject(cardsim.FaultNone, cardsim.FaultParity) // the 61xx SW, then the data
			resp := make([]byte, 300)
			n, err := e.reader.Transmit(case4(16), resp)
			switch {
			case signal && (err != nil || !bytes.Equal(resp[:n-2], case4(16)[5:21])):
				t.Errorf("error signal: % X, %v; want the data", resp[:n], err)
			case !signal && !errors.Is(err, hal.ErrParity):
				t.Errorf("plain UART: %v, want a parity error", err)
			}
		})
	}
}
