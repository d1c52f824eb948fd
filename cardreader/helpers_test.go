package cardreader_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal/haltest"
)

// env is one reader on a virtual slot with a simulated card.
type env struct {
	t      *testing.T
	slot   *haltest.Slot
	card   *haltest.Card
	sim    *cardsim.Sim
	reader *cardreader.Reader
	ctx    context.Context
}

// setup builds the slot, simulator and reader and starts them; cleanup is
// returned to stop everything before the bubble ends.
func setup(t *testing.T, so haltest.SlotOptions, cfg cardsim.Config, opts cardreader.Options, systems ...cardreader.CardSystem) (*env, func()) {
	t.Helper()
	slot, card := haltest.NewSlot(so)
	cfg.ClockHz = slot.ClockHz()
	sim, err := cardsim.New(card, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cardreader.New(slot, opts, systems...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone, readerDone := make(chan struct{}), make(chan struct{})
	go func() { sim.Run(ctx); close(simDone) }()
	go func() { r.Run(ctx); close(readerDone) }()
	e := &env{t: t, slot: slot, card: card, sim: sim, reader: r, ctx: ctx}
	return e, func() {
		cancel()
		<-readerDone
		slot.Close()
		<-simDone
	}
}

// ready waits (in virtual time) until the reader is ready.
func (e *env) ready() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	if err := e.reader.WaitState(ctx, cardreader.StateReady); err != nil {
		e.t.Fatalf("%v; stats %+v", err, e.reader.Stats())
	}
}

// bubble runs f in a synctest bubble with a ready reader.
func bubble(t *testing.T, so haltest.SlotOptions, cfg cardsim.Config, opts cardreader.Options, f func(e *env)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		e, stop := setup(t, so, cfg, opts)
		defer stop()
		e.ready()
		f(e)
	})
}

// withTCK appends the check byte to an ATR.
func withTCK(atr ...byte) []byte {
	var x byte
	for _, b := range atr[1:] {
		x ^= b
	}
	return append(atr, x)
}

// t1ATR is a T=1 card: TA1 fidi, IFSC ifsc, BWI 4 / CWI 5, LRC or CRC.
func t1ATR(ts, fidi, ifsc byte, crc bool) []byte {
	tc3 := byte(0)
	if crc {
		tc3 = 1
	}
	// T0: TA1 TD1; TD1: TD2, T=1; TD2: TA3 TB3 TC3, T=1.
	return withTCK(ts, 0x90, fidi, 0x81, 0x71, ifsc, 0x45, tc3)
}

// t0ATR is a T=0 card with TA1 fidi and TC1 n: 3B 50 TA1 TC1 (no TCK).
func t0ATR(ts, fidi, n byte) []byte { return []byte{ts, 0x50 | 0x00, fidi, n} }

func opts() cardreader.Options { return cardreader.DefaultOptions() }

// apdu builds a case 4 command with n data bytes.
func case4(n int) []byte {
	cmd := []byte{0x00, 0xDA, 0x01, 0x02, byte(n)}
	for i := range n {
		cmd = append(cmd, byte(i*7))
	}
	return append(cmd, 0x00)
}
