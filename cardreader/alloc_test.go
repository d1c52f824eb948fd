package cardreader_test

import (
	"context"
	"testing"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal/haltest"
)

// TestExchangeAllocs proves that an APDU exchange with a ready card
// allocates nothing, host and simulator together, for T=0 (with GET
// RESPONSE) and T=1 (with chaining both ways).
func TestExchangeAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		atr  []byte
		o    func(*cardreader.Options)
		cfg  cardsim.Config
		n    int
	}{
		{"T=0 case 4", t0ATR(0x3B, 0x11, 0), nil, cardsim.Config{T0Chunk: 64}, 200},
		{"T=0 inverse complemented ACK", t0ATR(0x3F, 0x11, 0), nil, cardsim.Config{T0Ack: cardsim.AckEach}, 20},
		{"T=1 IFSC 32 chaining", t1ATR(0x3B, 0x11, 32, false), func(o *cardreader.Options) { o.IFSD = 32 }, cardsim.Config{}, 200},
		{"T=1 IFSC 254 CRC", t1ATR(0x3B, 0x11, 254, true), nil, cardsim.Config{}, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.o != nil {
				tc.o(&o)
			}
			tc.cfg.ATR = tc.atr
			bubble(t, haltest.SlotOptions{Echo: true}, tc.cfg, o, func(e *env) {
				cmd, resp := case4(tc.n), make([]byte, 300)
				allocs := testing.AllocsPerRun(50, func() {
					if _, err := e.reader.Transmit(cmd, resp); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("%v allocations per exchange", allocs)
				}
			})
		})
	}
}

// BenchmarkT1Exchange200 runs a 200-byte T=1 exchange (205-byte command,
// 202-byte answer, IFSC/IFSD 254) against the in-process simulator in real
// time. The virtual line has no wire time and the card clock is chosen so
// that guard and turnaround times are below the pause threshold, so ns/op
// is host plus simulator processing and goroutine hand-offs.
func BenchmarkT1Exchange200(b *testing.B) {
	slot, card := haltest.NewSlot(haltest.SlotOptions{Echo: true, ClockHz: 372_000_000})
	sim, err := cardsim.New(card, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false), ClockHz: slot.ClockHz()})
	if err != nil {
		b.Fatal(err)
	}
	r, err := cardreader.New(slot, cardreader.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); slot.Close() }()
	go sim.Run(ctx)
	go r.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute) // a hang guard: the ATR takes microseconds
	defer wcancel()
	if err := r.WaitState(wctx, cardreader.StateReady); err != nil {
		b.Fatal(err)
	}
	cmd, resp := case4(200), make([]byte, 300)
	b.ReportAllocs()
	b.SetBytes(int64(len(cmd) + 202))
	for b.Loop() {
		if _, err := r.Transmit(cmd, resp); err != nil {
			b.Fatal(err)
		}
	}
}
