package cardreader_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
)

// fakeAPDUSlot is an APDU reader holding a card that answers every command
// with its INS byte and 90 00.
type fakeAPDUSlot struct {
	mu      sync.Mutex
	present bool
	events  chan hal.Event
	connect int
}

func (s *fakeAPDUSlot) Name() string             { return "apdu" }
func (s *fakeAPDUSlot) Events() <-chan hal.Event { return s.events }
func (s *fakeAPDUSlot) Deactivate(context.Context) error {
	return nil
}

func (s *fakeAPDUSlot) Present() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.present, nil
}

func (s *fakeAPDUSlot) set(present bool) {
	s.mu.Lock()
	s.present = present
	s.mu.Unlock()
	kind := hal.CardRemoved
	if present {
		kind = hal.CardInserted
	}
	s.events <- hal.Event{Kind: kind, At: time.Now()}
}

func (s *fakeAPDUSlot) Connect(ctx context.Context, kind hal.ResetKind) (cardreader.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.present {
		return nil, fmt.Errorf("connect: %w", hal.ErrNoCard)
	}
	s.connect++
	atr, err := iso7816.ParseATR([]byte{0x3B, 0x02, 0x12, 0x34}, iso7816.Lenient)
	if err != nil {
		return nil, err
	}
	return &fakeTransport{slot: s, atr: atr}, nil
}

type fakeTransport struct {
	slot *fakeAPDUSlot
	atr  *iso7816.ATR
}

func (t *fakeTransport) ATR() *iso7816.ATR { return t.atr }
func (t *fakeTransport) Link() cardreader.LinkInfo {
	return cardreader.LinkInfo{Protocol: 1, FIDI: iso7816.DefaultFIDI}
}

func (t *fakeTransport) Transmit(cmd, resp []byte) (int, error) {
	if ok, _ := t.slot.Present(); !ok {
		return 0, fmt.Errorf("transmit: %w", hal.ErrNoCard)
	}
	resp[0], resp[1], resp[2] = cmd[1], 0x90, 0x00
	return 3, nil
}

// TestAPDUReaderLifecycle runs the reader lifecycle and a card system over
// an APDU slot: ready after insertion, APDUs through the transport, absent
// after removal, ready again after re-insertion.
func TestAPDUReaderLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot := &fakeAPDUSlot{present: true, events: make(chan hal.Event, 4)}
		sys := &testSystem{hist: 0x12}
		r, err := cardreader.NewAPDU(slot, cardreader.DefaultOptions(), sys)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		wait := func(s cardreader.State) {
			t.Helper()
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			defer wcancel()
			if err := r.WaitState(wctx, s); err != nil {
				t.Fatal(err)
			}
		}
		wait(cardreader.StateReady)
		resp := make([]byte, 8)
		if n, err := r.Transmit([]byte{0x80, 0xCA, 0, 0, 0}, resp); err != nil || n != 3 || resp[0] != 0xCA {
			t.Fatalf("transmit: % X, %v", resp[:n], err)
		}
		st := r.Stats()
		if st.System != "testsys" || st.ATR != "3B021234" || st.Protocol != 1 {
			t.Errorf("stats %+v", st)
		}
		slot.set(false)
		wait(cardreader.StateAbsent)
		if _, err := r.Transmit([]byte{0x80, 0xCA, 0, 0, 0}, resp); !errors.Is(err, cardreader.ErrNotReady) {
			t.Errorf("transmit without card: %v", err)
		}
		slot.set(true)
		wait(cardreader.StateReady)
		if slot.connect != 2 || r.Stats().Removals != 1 {
			t.Errorf("%d connects, %d removals; want 2 and 1", slot.connect, r.Stats().Removals)
		}
		cancel()
		<-done
	})
}
