package haltest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/hal"
)

var atr = []byte{0x3B, 0x02, 0x14, 0x50}

func TestResetDeliversATRAtInitialFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot, card := NewSlot(SlotOptions{ActivationDelay: 5 * time.Millisecond})
		card.OnSignal(func(s Signal) {
			if s.Kind == SignalColdReset {
				if _, err := card.Write(atr); err != nil {
					t.Errorf("card write: %v", err)
				}
			}
		})
		start := time.Now()
		if err := slot.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 5*time.Millisecond {
			t.Errorf("reset took %v, want the 5ms activation delay", got)
		}
		want := hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2}
		if got := slot.Config(); got != want {
			t.Errorf("config after reset %+v, want %+v", got, want)
		}
		slot.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 32)
		n, err := slot.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], atr) {
			t.Fatalf("read % x, %v; want % x", buf[:n], err, atr)
		}
		s, ok := card.NextSignal()
		if !ok || s.Kind != SignalColdReset || s.Config != want {
			t.Errorf("signal %+v %v", s, ok)
		}
		if card.Resets() != 1 || !card.Active() || !card.Powered() {
			t.Errorf("card state resets=%d active=%v", card.Resets(), card.Active())
		}
	})
}

func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot, _ := NewSlot(SlotOptions{})
		if err := slot.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		slot.SetReadDeadline(start.Add(10 * time.Millisecond))
		n, err := slot.Read(make([]byte, 4))
		if n != 0 || !errors.Is(err, hal.ErrTimeout) {
			t.Fatalf("read %d, %v; want ErrTimeout", n, err)
		}
		if got := time.Since(start); got != 10*time.Millisecond {
			t.Errorf("timed out after %v, want 10ms", got)
		}
	})
}

func TestMarkedBytesEndARead(t *testing.T) {
	slot, card := NewSlot(SlotOptions{})
	if err := slot.Reset(context.Background(), hal.ColdReset); err != nil {
		t.Fatal(err)
	}
	card.Write([]byte{0x3B, 0x00})
	card.WriteMarked(0x03, hal.ErrParity)
	card.WriteMarked(0x04, hal.ErrFraming)
	card.Write([]byte{0x11})
	if err := card.WriteMarked(1, errors.New("x")); err == nil {
		t.Error("WriteMarked accepted a mark that is not a line error")
	}
	steps := []struct {
		want []byte
		err  error
	}{
		{[]byte{0x3B, 0x00}, nil},
		{[]byte{0x03}, hal.ErrParity},
		{[]byte{0x04}, hal.ErrFraming},
		{[]byte{0x11}, nil},
	}
	buf := make([]byte, 16)
	for i, s := range steps {
		n, err := slot.Read(buf)
		if !bytes.Equal(buf[:n], s.want) || !errors.Is(err, s.err) || (s.err == nil && err != nil) {
			t.Errorf("read %d: % x, %v; want % x, %v", i, buf[:n], err, s.want, s.err)
		}
	}
}

func TestRemovalFailsPendingRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot, card := NewSlot(SlotOptions{})
		if err := slot.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := slot.Read(make([]byte, 1)) // no deadline
			done <- err
		}()
		time.Sleep(3 * time.Millisecond)
		card.Remove()
		if err := <-done; !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("pending read: %v, want ErrNoCard", err)
		}
		if ev := <-slot.Events(); ev.Kind != hal.CardRemoved {
			t.Errorf("event %v", ev.Kind)
		}
		if err := slot.Reset(context.Background(), hal.ColdReset); !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("reset of empty slot: %v", err)
		}
		if p, _ := slot.Present(); p {
			t.Error("present after removal")
		}
		card.Insert()
		if ev := <-slot.Events(); ev.Kind != hal.CardInserted {
			t.Errorf("event %v", ev.Kind)
		}
		card.Fault()
		if ev := <-slot.Events(); ev.Kind != hal.ChipFault {
			t.Errorf("event %v", ev.Kind)
		}
		if _, err := slot.Read(make([]byte, 1)); !errors.Is(err, hal.ErrFault) {
			t.Errorf("read after fault: %v", err)
		}
		if err := slot.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Errorf("reset after fault: %v", err)
		}
		slot.Close()
		if _, ok := <-slot.Events(); ok {
			t.Error("events open after Close")
		}
	})
}

func TestPacingAndSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slot, card := NewSlot(SlotOptions{})
		if err := slot.Reset(context.Background(), hal.WarmReset); err == nil {
			t.Error("warm reset of an unpowered card succeeded")
		}
		ctx := context.Background()
		slot.Reset(ctx, hal.ColdReset)
		cfg := slot.Config()
		cfg.GuardETU = 3
		slot.Configure(cfg)
		got := make(chan time.Time, 8)
		go func() {
			b := make([]byte, 1)
			for {
				if _, err := card.Read(b); err != nil {
					if errors.Is(err, ErrSignal) {
						s, _ := card.NextSignal()
						if s.Kind == SignalWarmReset {
							close(got)
							return
						}
						continue
					}
					t.Errorf("card read: %v", err)
					return
				}
				got <- time.Now()
			}
		}()
		start := time.Now()
		if _, err := slot.Write([]byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		wantGap := time.Duration(12+3) * cfg.ETU()
		for i := 0; i < 3; i++ {
			at := <-got
			if want := start.Add(time.Duration(i) * wantGap); !at.Equal(want) {
				t.Errorf("byte %d at +%v, want +%v", i, at.Sub(start), want.Sub(start))
			}
		}
		if err := slot.Reset(ctx, hal.WarmReset); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-got; ok {
			t.Error("card saw a byte instead of the warm reset")
		}
	})
}

func TestEchoFault(t *testing.T) {
	slot, card := NewSlot(SlotOptions{Echo: true})
	slot.Reset(context.Background(), hal.ColdReset)
	if _, err := slot.Write([]byte{0xA0, 0xA4}); err != nil {
		t.Fatalf("perfect echo: %v", err)
	}
	card.SetEchoFault(func(b byte) (byte, bool) { return b ^ 1, b == 0xA4 })
	if n, err := slot.Write([]byte{0xA0}); n != 1 || !errors.Is(err, hal.ErrEcho) {
		t.Errorf("missing echo: %d, %v", n, err)
	}
	if _, err := slot.Write([]byte{0xA4}); !errors.Is(err, hal.ErrEcho) {
		t.Errorf("corrupt echo: %v", err)
	}
	cfg := slot.Config()
	cfg.Baud = 0
	if err := slot.Configure(cfg); err == nil {
		t.Error("baud 0 accepted")
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	slot, card := NewSlot(SlotOptions{})
	slot.Reset(context.Background(), hal.ColdReset)
	card.NextSignal()
	cmd := []byte{0xA0, 0xA4, 0x00, 0x00, 0x02}
	buf := make([]byte, 16)
	slot.SetReadDeadline(time.Now().Add(time.Hour))
	card.SetReadDeadline(time.Now().Add(time.Hour))
	allocs := testing.AllocsPerRun(200, func() {
		slot.Write(cmd)
		if n, err := card.Read(buf); n != len(cmd) || err != nil {
			t.Fatalf("card read %d %v", n, err)
		}
		card.Write(cmd[:1])
		if n, err := slot.Read(buf); n != 1 || err != nil {
			t.Fatalf("host read %d %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per exchange, want 0", allocs)
	}
}
