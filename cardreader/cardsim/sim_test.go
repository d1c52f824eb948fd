package cardsim

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

func TestEchoPersonality(t *testing.T) {
	resp := make([]byte, 260)
	tests := []struct {
		cmd  []byte
		want []byte
	}{
		{[]byte{0, 0x44, 0, 0}, []byte{0x90, 0}},
		{[]byte{0, 0xB0, 0, 5, 3}, []byte{5, 6, 7, 0x90, 0}},
		{[]byte{0, 0xDA, 0, 0, 2, 9, 8, 0}, []byte{9, 8, 0x90, 0}},
		{[]byte{0, 0xD6, 0, 0, 2, 9, 8}, []byte{0x90, 0}},
	}
	for _, tc := range tests {
		n := Echo{}.Respond(tc.cmd, resp)
		if string(resp[:n]) != string(tc.want) {
			t.Errorf("Respond(% X) = % X, want % X", tc.cmd, resp[:n], tc.want)
		}
	}
	if n := (Echo{FixedLen: 4}).Respond([]byte{0, 0xB0, 0, 0, 9}, resp); n != 6 {
		t.Errorf("FixedLen 4 gave %d bytes", n)
	}
}

func TestNewRejectsBadATR(t *testing.T) {
	_, card := haltest.NewSlot(haltest.SlotOptions{})
	if _, err := New(card, Config{ATR: []byte{0x3C, 0x00}}); err == nil {
		t.Error("ATR with TS 3C accepted")
	}
}

// TestInverseATROnTheLine checks the simulator's line model: an
// inverse-convention TS reaches a host at even parity as a raw 03 with a
// parity mark, and later bytes arrive clean once the host switches to odd.
func TestInverseATROnTheLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot, card := haltest.NewSlot(haltest.SlotOptions{})
		sim, err := New(card, Config{ATR: []byte{0x3F, 0x50, 0x11, 0x00}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sim.Run(ctx); close(done) }()
		defer func() { cancel(); slot.Close(); <-done }()
		if err := slot.Reset(ctx, hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		slot.SetReadDeadline(time.Now().Add(time.Second))
		var b [8]byte
		n, err := slot.Read(b[:])
		if n != 1 || b[0] != 0x03 || !errors.Is(err, hal.ErrParity) {
			t.Fatalf("TS: % X, %v; want raw 03 with a parity error", b[:n], err)
		}
		cfg := slot.Config()
		cfg.Parity = hal.ParityOdd
		slot.Configure(cfg)
		// A UART read returns what has arrived so far; the card may still be
		// sending, so read exactly the three remaining bytes.
		n, err = io.ReadFull(slot, b[:3])
		// 50 11 00 under the inverse transform: F5 77 FF.
		if err != nil || string(b[:n]) != "\xF5\x77\xFF" {
			t.Fatalf("rest of ATR: % X, %v", b[:n], err)
		}
	})
}
