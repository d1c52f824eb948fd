package system_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/hal/haltest"
)

// section builds an ECM section with table id 0x80 around payload.
func section(payload ...byte) []byte {
	return append([]byte{0x80, 0x70 | byte(len(payload)>>8), byte(len(payload))}, payload...)
}

// fixture is one simulated card with what its system must report.
type fixture struct {
	name     string
	atr      []byte
	p        cardsim.Personality
	beh      *personality.Behaviour
	protocol int
	caid     uint16
	provs    []uint32
	serial   string
	ecm      []byte
}

var (
	start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	end   = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
)

func conaxCard() *personality.Conax {
	return &personality.Conax{Serial: 0x0A0B0C0D, Shared: 0x00112233,
		Subscriptions: []personality.ConaxSubscription{{ID: 0x0101, Name: "TEST BASIC", Start: start, End: end}}}
}

func secaCard() *personality.Seca {
	return &personality.Seca{Serial: [6]byte{0, 0, 0x12, 0x34, 0x56, 0x78}, Providers: []personality.SecaProvider{{ID: 0, Name: "SECA", End: end}, {ID: 0x0064, Name: "TEST PROVIDER", End: end}}}
}

func fixtures() []fixture {
	cx, se := conaxCard(), secaCard()
	gr := &personality.Griffin{CAIDLow: 0x01, Serial: [4]byte{0x01, 0x02, 0x03, 0x04}, Base: 0x10}
	dg := &personality.DGCrypt{Serial: [7]byte{0, 0, 0, 0xAB, 0xCD, 0xEF, 0x01}, Label: "DGTEST"}
	payload := make([]byte, 60)
	for i := range payload {
		payload[i] = byte(i*37 + 11)
	}
	seca := append([]byte{0x00, 0x64, 0x00, 0x00, 0x03, 0x10, 0x01}, payload...)
	dgc := append([]byte{0x00, byte(len(payload))}, payload...)
	return []fixture{
		{"conax", personality.ConaxATR(), cx, &cx.Behaviour, 0, 0x0B00, []uint32{0}, "168496141", section(payload...)},
		{"seca", personality.SecaATR(7), se, &se.Behaviour, 0, 0x0100, []uint32{0, 0x64}, "000012345678", section(seca...)},
		{"griffin", gr.ATR(), gr, &gr.Behaviour, 0, 0x5501, []uint32{0}, "01020304 (000016909060)", section(payload...)},
		{"dgcrypt", personality.DGCryptATR(), dg, &dg.Behaviour, 1, 0x4ABF, []uint32{0}, "000000ABCDEF01", section(dgc...)},
	}
}

// slotEnv is a reader with all card systems on a virtual slot with a
// simulated card.
type slotEnv struct {
	reader  *cardreader.Reader
	systems []system.System
	sim     *cardsim.Sim
}

// withCard runs f in a synctest bubble with a running reader and default
// options; it waits for want (ready or fault) first.
func withCard(t *testing.T, atr []byte, p cardsim.Personality, want cardreader.State, f func(e *slotEnv)) {
	t.Helper()
	withCardOpts(t, atr, p, system.Options{}, want, f)
}

// withCardOpts is withCard with card-system options. DGCrypt cards number
// every T=1 block 0, as the real ones do.
func withCardOpts(t *testing.T, atr []byte, p cardsim.Personality, so system.Options, want cardreader.State, f func(e *slotEnv)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		slot, card := haltest.NewSlot(haltest.SlotOptions{Echo: true})
		_, dg := p.(*personality.DGCrypt)
		sim, err := cardsim.New(card, cardsim.Config{ATR: atr, Personality: p, ClockHz: slot.ClockHz(), T1ZeroNS: dg})
		if err != nil {
			t.Fatal(err)
		}
		systems := system.New(so)
		r, err := cardreader.New(slot, cardreader.DefaultOptions(), system.CardSystems(systems)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		simDone, readerDone := make(chan struct{}), make(chan struct{})
		go func() { sim.Run(ctx); close(simDone) }()
		go func() { r.Run(ctx); close(readerDone) }()
		defer func() { cancel(); <-readerDone; slot.Close(); <-simDone }()
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		if err := r.WaitState(wctx, want); err != nil {
			t.Fatalf("%v; stats %+v", err, r.Stats())
		}
		f(&slotEnv{reader: r, systems: systems, sim: sim})
	})
}

// active returns the system that accepted the card.
func (e *slotEnv) active(t *testing.T) system.System {
	t.Helper()
	s := system.ByName(e.systems, e.reader.Stats().System)
	if s == nil {
		t.Fatalf("no system active; stats %+v", e.reader.Stats())
	}
	return s
}

// waitCardReset waits until the reader did n card-requested resets and is
// ready again.
func (e *slotEnv) waitCardReset(t *testing.T, n uint64) {
	t.Helper()
	for {
		ch := e.reader.Changed()
		if st := e.reader.Stats(); st.CardResets >= n && st.State == cardreader.StateReady {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatalf("no card reset; stats %+v", e.reader.Stats())
		}
	}
}
