package cardreader_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// bwt4 is BWT for BWI 4 at the default virtual clock.
var bwt4 = iso7816.InitialTiming(haltest.DefaultClockHz).BWT(4)

// exchange sends a case 4 command with n data bytes and checks the echo.
func exchange(t *testing.T, r *cardreader.Reader, n int) {
	t.Helper()
	cmd := case4(n)
	resp := make([]byte, 300)
	got, err := r.Transmit(cmd, resp)
	if err != nil {
		t.Fatalf("Transmit(%d bytes): %v; stats %+v", len(cmd), err, r.Stats())
	}
	if !bytes.Equal(resp[:got-2], cmd[5:5+n]) || resp[got-2] != 0x90 || resp[got-1] != 0 {
		t.Fatalf("response % X, want echo of % X + 90 00", resp[:got], cmd[5:5+n])
	}
}

func TestT1ChainingBothWays(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ifsc        byte
		ifsd        int
		crc         bool
		x25         bool
		minCardRBlk int64
	}{
		{"IFSC 32 IFSD 32", 32, 32, false, false, 8},
		{"IFSC 254 IFSD 254", 254, 254, false, false, 1},
		{"IFSC 32 IFSD 254 CRC ccid", 32, 254, true, false, 1},
		{"IFSC 254 IFSD 32 CRC x25", 254, 32, true, true, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			o.IFSD = tc.ifsd
			cfg := cardsim.Config{ATR: t1ATR(0x3B, 0x11, tc.ifsc, tc.crc)}
			if tc.x25 {
				o.T1CRC, cfg.CRC = "x25", 2
			}
			bubble(t, haltest.SlotOptions{Echo: true}, cfg, o, func(e *env) {
				exchange(t, e.reader, 255) // 261-byte command, 257-byte answer
				exchange(t, e.reader, 3)
				exchange(t, e.reader, 200)
				if want := int64(0); tc.ifsd != 32 && e.sim.C.LastIFSD.Load() != int64(tc.ifsd) {
					t.Errorf("card saw IFSD %d, want %d (%d)", e.sim.C.LastIFSD.Load(), tc.ifsd, want)
				}
				if got := e.sim.C.RBlocksIn.Load(); got < tc.minCardRBlk {
					t.Errorf("host acknowledged %d card chain blocks, want >= %d", got, tc.minCardRBlk)
				}
			})
		})
	}
}

func TestT1WTX(t *testing.T) {
	cfg := cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false), WTX: 3, Delay: 2 * bwt4}
	bubble(t, haltest.SlotOptions{Echo: true}, cfg, opts(), func(e *env) {
		start := time.Now()
		exchange(t, e.reader, 20)
		if el := time.Since(start); el < 2*bwt4 { // fake clock: bubble runs synctest
			t.Errorf("exchange took %v, card waited %v", el, 2*bwt4)
		}
		if e.sim.C.WTXResps.Load() != 1 || e.reader.Stats().WTX != 1 {
			t.Errorf("WTX responses %d, host WTX count %d", e.sim.C.WTXResps.Load(), e.reader.Stats().WTX)
		}
		if e.sim.C.Retransmits.Load() != 0 {
			t.Errorf("WTX should avoid timeouts, card retransmitted %d blocks", e.sim.C.Retransmits.Load())
		}
	})
}

func TestT1SlowCardWithoutWTXTimesOut(t *testing.T) {
	cfg := cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false), Delay: 2 * bwt4}
	bubble(t, haltest.SlotOptions{Echo: true}, cfg, opts(), func(e *env) {
		start := time.Now()
		exchange(t, e.reader, 20)     // BWT expires, R-block, card answers late
		if time.Since(start) < bwt4 { // fake clock: bubble runs synctest
			t.Error("no BWT timeout seen")
		}
	})
}

func TestT1Faults(t *testing.T) {
	for _, tc := range []struct {
		name           string
		faults         []cardsim.Fault
		minElapsed     time.Duration
		retransmits    int64
		resynchs       int64
		hostResynchs   uint64
		rBlocksAtLeast int64
	}{
		{"bad EDC answered with R(error)", []cardsim.Fault{cardsim.FaultBadEDC}, 0, 1, 0, 0, 1},
		{"parity-marked byte", []cardsim.Fault{cardsim.FaultParity}, 0, 1, 0, 0, 1},
		{"dropped byte (CWT)", []cardsim.Fault{cardsim.FaultDrop}, 0, 1, 0, 0, 1},
		{"lost block recovered by BWT", []cardsim.Fault{cardsim.FaultSilence}, bwt4, 1, 0, 0, 1},
		{"RESYNCH after repeated failures", []cardsim.Fault{cardsim.FaultBadEDC, cardsim.FaultBadEDC, cardsim.FaultBadEDC, cardsim.FaultBadEDC}, 0, 3, 1, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false)}, opts(), func(e *env) {
				exchange(t, e.reader, 10)
				e.sim.Inject(tc.faults...)
				start := time.Now()
				exchange(t, e.reader, 40)
				if el := time.Since(start); el < tc.minElapsed { // fake clock: bubble runs synctest
					t.Errorf("recovered after %v, expected a timeout of %v first", el, tc.minElapsed)
				}
				c := &e.sim.C
				if c.Retransmits.Load() != tc.retransmits || c.Resynchs.Load() != tc.resynchs || c.RBlocksIn.Load() < tc.rBlocksAtLeast {
					t.Errorf("card retransmits %d resynchs %d R-blocks %d; want %d, %d, >=%d",
						c.Retransmits.Load(), c.Resynchs.Load(), c.RBlocksIn.Load(), tc.retransmits, tc.resynchs, tc.rBlocksAtLeast)
				}
				if s := e.reader.Stats(); s.Resynchs != tc.hostResynchs || s.State != cardreader.StateReady {
					t.Errorf("host stats %+v", s)
				}
				exchange(t, e.reader, 5) // still in step afterwards
			})
		})
	}
}

func TestT1MuteCard(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false)}, opts(), func(e *env) {
		exchange(t, e.reader, 10)
		e.sim.SetMute(true)
		start := time.Now()
		_, err := e.reader.Transmit(case4(10), make([]byte, 300))
		el := time.Since(start) // fake clock: bubble runs synctest
		if !errors.Is(err, cardreader.ErrT1Dead) {
			t.Fatalf("err %v, want ErrT1Dead", err)
		}
		// 1 + 3 retries and 3 RESYNCH attempts, each one BWT plus slack.
		if limit := 8 * (bwt4 + 20*time.Millisecond); el > limit || el < 7*bwt4 {
			t.Errorf("gave up after %v, want 7 BWT..%v", el, limit)
		}
		e.sim.SetMute(false)
		time.Sleep(time.Second) // a warm reset follows at once, without the fault backoff
		e.ready()
		if s := e.reader.Stats(); s.Resynchs != 3 || s.WarmResets != 1 || s.ColdResets != 1 || !strings.Contains(s.LastError, "RESYNCH") {
			t.Errorf("stats %+v", s)
		}
		exchange(t, e.reader, 10)
	})
}

func TestT1RemovedMidBlock(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false)}, opts(), func(e *env) {
		e.sim.Inject(cardsim.FaultRemove)
		_, err := e.reader.Transmit(case4(100), make([]byte, 300))
		if !errors.Is(err, cardreader.ErrCardRemoved) || !errors.Is(err, hal.ErrNoCard) {
			t.Fatalf("err %v, want ErrCardRemoved", err)
		}
	})
}

// TestT1IFSD checks the S(IFS) offer after the ATR: by default the card's
// own IFSC when it is not 32 (OSCam), nothing for IFSC 32, and a refused or
// unanswered request leaves the card usable at IFSD 32.
func TestT1IFSD(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ifsc     byte
		ifsd     int
		mode     cardsim.IFSMode
		reqs     int64
		cardIFSD int64
		refused  uint64
	}{
		{"auto offers IFSC 128", 128, 0, cardsim.IFSConfirm, 1, 128, 0},
		{"auto with IFSC 32 sends nothing", 32, 0, cardsim.IFSConfirm, 0, 0, 0},
		{"configured 254", 32, 254, cardsim.IFSConfirm, 1, 254, 0},
		{"unanswered S(IFS)", 254, 0, cardsim.IFSIgnore, 4, 0, 1},
		{"refused S(IFS)", 254, 254, cardsim.IFSRefuse, 4, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			o.IFSD = tc.ifsd
			cfg := cardsim.Config{ATR: t1ATR(0x3B, 0x11, tc.ifsc, false), IFS: tc.mode}
			bubble(t, haltest.SlotOptions{Echo: true}, cfg, o, func(e *env) {
				exchange(t, e.reader, 200) // chained both ways at IFSD 32 when refused
				c := &e.sim.C
				if c.IFSReqs.Load() != tc.reqs || c.LastIFSD.Load() != tc.cardIFSD {
					t.Errorf("card saw %d S(IFS) requests, IFSD %d; want %d, %d", c.IFSReqs.Load(), c.LastIFSD.Load(), tc.reqs, tc.cardIFSD)
				}
				if s := e.reader.Stats(); s.IFSRefused != tc.refused || s.ColdResets != 1 {
					t.Errorf("stats %+v, want %d refused S(IFS) and one cold reset", s, tc.refused)
				}
			})
		})
	}
}
