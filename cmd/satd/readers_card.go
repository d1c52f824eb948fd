package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/system"
)

// cardSource is a card in a slot (receiver slot, serial reader or a
// simulated card) run by the ISO 7816 stack with every card system.
type cardSource struct {
	reader  *cardreader.Reader
	systems []system.System
	active  atomic.Pointer[activeSystem]
	// extra runs alongside the reader (the simulator of a sim slot).
	extra func(ctx context.Context)
	// closeSlot releases the slot after the reader stopped.
	closeSlot func()
	// slotErr says why the slot shows no card when its reader is out of
	// reach (pcscd down, no such PC/SC reader); nil for other slots.
	slotErr func() error
	// sim is the card side of a sim reader's virtual slot (nil for a real
	// slot; see readers_sim.go).
	sim *simSlot
}

type activeSystem struct{ system.System }

func newCardSource(r *cardreader.Reader, systems []system.System) *cardSource {
	return &cardSource{reader: r, systems: systems}
}

// run drives the reader lifecycle and republishes eligibility on every
// state change: a ready card advertises the CAID and providers its card
// system read.
func (c *cardSource) run(ctx context.Context, publish func(balancer.Status)) {
	var wg sync.WaitGroup
	if c.extra != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.extra(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.reader.Run(ctx) }()
	for ctx.Err() == nil {
		ch := c.reader.Changed()
		c.update(publish)
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	c.update(publish)
	if c.closeSlot != nil {
		// The reader deactivates the card on its way out; wait for it
		// before closing the slot under the simulator.
		// Take the channel before looking at the state: the other order
		// misses a change to Stopped that lands in between.
		for {
			ch := c.reader.Changed()
			if c.reader.State() == cardreader.StateStopped {
				break
			}
			<-ch
		}
		c.closeSlot()
	}
	wg.Wait()
}

func (c *cardSource) update(publish func(balancer.Status)) {
	st := c.reader.Stats()
	if st.State != cardreader.StateReady {
		c.active.Store(nil)
		publish(balancer.Status{})
		return
	}
	sys := system.ByName(c.systems, st.System)
	if sys == nil {
		c.active.Store(nil)
		publish(balancer.Status{})
		return
	}
	id := sys.Identity()
	c.active.Store(&activeSystem{sys})
	publish(balancer.Status{Present: true, CAIDs: []uint16{id.CAID}, Providers: id.Providers})
}

// solve sends the ECM to the card's system; the reader serialises card
// access.
func (c *cardSource) solve(req *balancer.Request) (balancer.Result, [16]byte, string) {
	a := c.active.Load()
	if a == nil {
		return balancer.NotFound, [16]byte{}, "card not ready"
	}
	ans, err := a.ECM(c.reader, req.ECM)
	if err != nil {
		return balancer.NotFound, [16]byte{}, ans.Reason + ": " + err.Error()
	}
	return resultFor(ans), ans.CW, ans.Reason
}

func (c *cardSource) describe(s *ReaderStatus) {
	st := c.reader.Stats()
	s.State, s.ATR, s.CardProtocol, s.Baud, s.System = st.State.String(), st.ATR, st.Protocol, st.Baud, st.System
	s.CardResets = st.CardResets
	if st.LastError != "" && (st.State == cardreader.StateFault || s.LastError == "") {
		s.LastError = st.LastError
	}
	s.Note = cardNote(st)
	if c.slotErr != nil && st.State == cardreader.StateAbsent {
		if err := c.slotErr(); err != nil {
			s.LastError = err.Error()
		}
	}
	if a := c.active.Load(); a != nil {
		id := a.Identity()
		s.Serial, s.Subscriptions = id.Serial, id.Subscriptions
	}
}

// cardNote sums up what the card stack tolerated on this card.
func cardNote(st cardreader.Stats) string {
	note := ""
	if st.ATRNote != "" {
		note = "ATR " + st.ATRNote
	}
	if st.IFSRefused > 0 {
		if note != "" {
			note += "; "
		}
		note += fmt.Sprintf("S(IFS) refused %d times, IFSD 32", st.IFSRefused)
	}
	return note
}

// systemName is the card system in use, or "" before one is identified.
func (c *cardSource) systemName() string {
	if a := c.active.Load(); a != nil {
		return a.Name()
	}
	return ""
}
