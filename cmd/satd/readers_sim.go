//go:build !satd_nodemo

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/hal/haltest"
)

// simSlot is the card side of a sim reader's virtual slot: where tests
// insert and pull the simulated card and switch how it answers ECMs.
type simSlot struct {
	card    *haltest.Card
	setMode func(personality.Mode)
}

// simCard returns the card side of a sim reader's slot, or nil for a real
// slot.
func (c *cardSource) simCard() *haltest.Card {
	if c.sim == nil {
		return nil
	}
	return c.sim.card
}

// simMode switches how a sim reader's card answers ECMs; it reports false
// for a real slot or a simulated card without modes.
func (c *cardSource) simMode(m personality.Mode) bool {
	if c.sim == nil || c.sim.setMode == nil {
		return false
	}
	c.sim.setMode(m)
	return true
}

// simCard is the simulated card a sim reader gets.
type simCard struct {
	atr []byte
	p   cardsim.Personality
}

// simCardFor picks the simulated card from the reader's system key or,
// when that is empty, from its label prefix (conax…, seca…, griffin…,
// dgcrypt…). The cards hold test data only.
func simCardFor(system, label string) (simCard, error) {
	l := strings.ToLower(label)
	if system != "" {
		l = system
	}
	until := time.Date(time.Now().Year()+1, 12, 31, 0, 0, 0, 0, time.UTC)
	switch {
	case strings.HasPrefix(l, "conax"):
		return simCard{personality.ConaxATR(), &personality.Conax{Serial: 0x11223344, Shared: 0x00010203,
			Subscriptions: []personality.ConaxSubscription{{ID: 0x0001, Name: "DEMO BASIC", Start: until.AddDate(-2, 0, 0), End: until}}}}, nil
	case strings.HasPrefix(l, "seca"):
		return simCard{personality.SecaATR(7), &personality.Seca{Serial: [6]byte{0, 0, 0, 0x98, 0x76, 0x54},
			Providers: []personality.SecaProvider{{ID: 0, Name: "SECA"}, {ID: 0x0064, Name: "DEMO", End: until}}}}, nil
	case strings.HasPrefix(l, "griffin"):
		g := &personality.Griffin{CAIDLow: 0x01, Serial: [4]byte{0, 0, 0x30, 0x39}, Base: 0x30}
		return simCard{g.ATR(), g}, nil
	case strings.HasPrefix(l, "dgcrypt"):
		return simCard{personality.DGCryptATR(), &personality.DGCrypt{Serial: [7]byte{0, 0, 0, 0, 0, 0x12, 0x34}, Label: "DEMO"}}, nil
	}
	return simCard{}, fmt.Errorf("sim reader %q: set system = one of %s, or start the label with one of them", label, strings.Join(config.SimSystems, ", "))
}

// newSimSource builds a virtual slot with a simulated card on its card
// side and the real ISO 7816 stack with every card system on its host
// side.
func newSimSource(r config.Reader) (*cardSource, error) {
	sc, err := simCardFor(r.System, r.Label)
	if err != nil {
		return nil, err
	}
	slot, card := haltest.NewSlot(haltest.SlotOptions{Name: r.Label, Echo: true})
	_, zeroNS := sc.p.(*personality.DGCrypt) // DGCrypt cards number every T=1 block 0
	sim, err := cardsim.New(card, cardsim.Config{ATR: sc.atr, Personality: sc.p, ClockHz: slot.ClockHz(), T1ZeroNS: zeroNS})
	if err != nil {
		return nil, fmt.Errorf("sim reader %s: %w", r.Label, err)
	}
	systems := system.New(r.SystemOptions())
	rd, err := cardreader.New(slot, r.Options, system.CardSystems(systems)...)
	if err != nil {
		return nil, err
	}
	src := newCardSource(rd, systems)
	src.extra = func(ctx context.Context) { sim.Run(ctx) }
	src.closeSlot = func() { slot.Close() }
	src.sim = &simSlot{card: card}
	if m, ok := sc.p.(interface{ SetMode(personality.Mode) }); ok {
		src.sim.setMode = m.SetMode
	}
	return src, nil
}
