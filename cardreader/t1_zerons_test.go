package cardreader_test

import (
	"context"
	"testing"
	"testing/synctest"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal/haltest"
)

// zeroNSSystem accepts every card and asks for T1Quirks.ZeroNS when set.
type zeroNSSystem struct{ zero bool }

func (zeroNSSystem) Name() string                                            { return "zerons" }
func (zeroNSSystem) Identify(context.Context, cardreader.Card) (bool, error) { return true, nil }
func (zeroNSSystem) Init(context.Context, cardreader.Card) error             { return nil }
func (s zeroNSSystem) T1Quirks() cardreader.T1Quirks                         { return cardreader.T1Quirks{ZeroNS: s.zero} }

var _ cardreader.T1Quirker = zeroNSSystem{}

// TestT1ZeroNS talks to a card that numbers every I-block 0 and expects
// the same: with the quirk on, commands go through without recovery; with
// it off, each second command needs a RESYNCH.
func TestT1ZeroNS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		zero     bool
		resynchs bool
	}{{"quirk on", true, false}, {"quirk off", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := cardsim.Config{ATR: t1ATR(0x3B, 0x11, 0xC3, false), T1ZeroNS: true}
				e, stop := setup(t, haltest.SlotOptions{Echo: true}, cfg, opts(), zeroNSSystem{tc.zero})
				defer stop()
				e.ready()
				for range 4 {
					exchange(t, e.reader, 20)
				}
				if got := e.sim.C.Resynchs.Load() > 0; got != tc.resynchs {
					t.Errorf("card saw %d RESYNCHs; want some: %v", e.sim.C.Resynchs.Load(), tc.resynchs)
				}
			})
		})
	}
}
