package cardreader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal/haltest"
)

// countingSystem accepts every card, counts inits and notes when the
// first card-system call came.
type countingSystem struct {
	inits atomic.Int64
	first atomic.Int64 // UnixNano of the first Identify
}

func (*countingSystem) Name() string { return "counting" }
func (s *countingSystem) Identify(context.Context, cardreader.Card) (bool, error) {
	s.first.CompareAndSwap(0, time.Now().UnixNano())
	return true, nil
}
func (s *countingSystem) Init(context.Context, cardreader.Card) error {
	s.inits.Add(1)
	return nil
}

// TestInitDelay measures, on the fake clock, the time from starting the
// reader to the first card-system call: init_delay is added to it.
func TestInitDelay(t *testing.T) {
	var base time.Duration
	for _, d := range []time.Duration{0, time.Second, 2500 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			o := opts()
			o.InitDelay = cardreader.Duration(d)
			sys := &countingSystem{}
			start := time.Now()
			e, stop := setup(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0)}, o, sys)
			defer stop()
			e.ready()
			took := time.Duration(sys.first.Load() - start.UnixNano())
			if d == 0 {
				base = took
			}
			if took-base != d {
				t.Errorf("init_delay %v: first command after %v, %v without delay", d, took, base)
			}
		})
	}
	if base >= 100*time.Millisecond {
		t.Errorf("without init_delay the first command came after %v", base)
	}
}

// TestRequestReset: a card system's reset request warm-resets the card,
// runs init again and is counted; commands fail meanwhile.
func TestRequestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := &countingSystem{}
		e, stop := setup(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0)}, opts(), sys)
		defer stop()
		e.ready()
		e.reader.RequestReset("card hangs (test)")
		if _, err := e.reader.Transmit(case4(3), make([]byte, 64)); !errors.Is(err, cardreader.ErrNotReady) {
			t.Errorf("Transmit during the requested reset: %v, want ErrNotReady", err)
		}
		for {
			ch := e.reader.Changed()
			if st := e.reader.Stats(); st.CardResets == 1 && st.State == cardreader.StateReady {
				break
			}
			<-ch
		}
		st := e.reader.Stats()
		if sys.inits.Load() != 2 || st.WarmResets != 1 || st.ColdResets != 1 || st.Faults != 0 || e.sim.C.Resets.Load() != 2 {
			t.Errorf("inits %d, stats %+v, card resets %d; want 2 inits after 1 cold and 1 warm reset, no fault",
				sys.inits.Load(), st, e.sim.C.Resets.Load())
		}
		exchange(t, e.reader, 5)
	})
}

// TestRequestResetCountedWhenLeavingReady: a reader seen Ready with its
// reset count raised has come back from that reset. The reset waits for a
// command in flight; meanwhile the count must not show a reset that has
// not begun (a test or a status page would take the old session for the
// new one, and its commands fail with ErrNotReady).
func TestRequestResetCountedWhenLeavingReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := &countingSystem{}
		cfg := cardsim.Config{ATR: t0ATR(0x3B, 0x11, 0), Delay: 200 * time.Millisecond}
		e, stop := setup(t, haltest.SlotOptions{Echo: true}, cfg, opts(), sys)
		defer stop()
		e.ready()
		inFlight := make(chan error, 1)
		go func() {
			_, err := e.reader.Transmit(case4(3), make([]byte, 64))
			inFlight <- err
		}()
		synctest.Wait() // the command holds the card, the card is slow
		e.reader.RequestReset("card hangs (test)")
		synctest.Wait() // the lifecycle waits for the card
		if st := e.reader.Stats(); st.CardResets != 0 || st.State != cardreader.StateReady {
			t.Errorf("with the reset waiting for a command: %d card resets in state %s, want 0 in ready", st.CardResets, st.State)
		}
		if err := <-inFlight; err != nil {
			t.Errorf("command in flight: %v", err)
		}
		for {
			ch := e.reader.Changed()
			if st := e.reader.Stats(); st.CardResets == 1 && st.State == cardreader.StateReady {
				break
			}
			<-ch
		}
		exchange(t, e.reader, 5)
	})
}
