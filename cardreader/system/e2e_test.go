package system_test

import (
	"slices"
	"strings"
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/system"
)

// TestEndToEnd identifies, initialises and asks each simulated card for an
// ECM through the real ISO 7816 stack.
func TestEndToEnd(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) {
			withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
				st := e.reader.Stats()
				if st.System != fx.name || st.Protocol != fx.protocol {
					t.Fatalf("system %q protocol T=%d, want %q T=%d", st.System, st.Protocol, fx.name, fx.protocol)
				}
				sys := e.active(t)
				id := sys.Identity()
				if id.CAID != fx.caid || !slices.Equal(id.Providers, fx.provs) || id.Serial != fx.serial {
					t.Errorf("identity %+v, want CAID %04X providers %X serial %s", id, fx.caid, fx.provs, fx.serial)
				}
				a, err := sys.ECM(e.reader, fx.ecm)
				if err != nil || a.Result != system.Found {
					t.Fatalf("ECM: %+v, %v", a, err)
				}
				if want := personality.ExpectedCW(fx.name, fx.ecm); a.CW != want {
					t.Errorf("CW % X, want % X", a.CW, want)
				}
			})
		})
	}
}

// TestSubscriptions checks that dates survive the card encodings (Conax,
// Seca).
func TestSubscriptions(t *testing.T) {
	for _, fx := range fixtures()[:2] {
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			subs := e.active(t).Identity().Subscriptions
			i := slices.IndexFunc(subs, func(s system.Subscription) bool { return s.End.Equal(end) && strings.HasPrefix(s.Name, "TEST") })
			if i < 0 || !strings.HasPrefix(subs[i].Name, "TEST") {
				t.Errorf("%s subscriptions %+v lack one ending %v", fx.name, subs, end)
			}
		})
	}
}

// TestECMModes checks the typed refusals the simulated cards can give.
func TestECMModes(t *testing.T) {
	modes := []struct {
		mode personality.Mode
		want system.Result
	}{
		{personality.NotSubscribed, system.NotSubscribed},
		{personality.BadECM, system.BadECM},
		{personality.CardError, system.CardError},
	}
	for _, fx := range fixtures() {
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			for _, m := range modes {
				fx.beh.SetMode(m.mode)
				a, err := e.active(t).ECM(e.reader, fx.ecm)
				if err != nil || a.Result != m.want || a.Reason == "" {
					t.Errorf("%s mode %d: %+v, %v; want %v with a reason", fx.name, m.mode, a, err, m.want)
				}
			}
			fx.beh.SetMode(personality.Normal)
			if a, _ := e.active(t).ECM(e.reader, fx.ecm); a.Result != system.Found {
				t.Errorf("%s back to normal: %+v", fx.name, a)
			}
		})
	}
}

// TestRefusals covers the cards and ECMs satd must refuse with a reason,
// through the real ISO 7816 stack.
func TestRefusals(t *testing.T) {
	cx := fixtures()[0]
	for _, tc := range []struct {
		mode   personality.Mode
		reason string
	}{{personality.RSA, "RSA-paired"}, {personality.Wrapped, "3DES-paired"}} {
		t.Run("conax "+tc.reason, func(t *testing.T) {
			c := conaxCard()
			c.SetMode(tc.mode)
			withCard(t, cx.atr, c, cardreader.StateReady, func(e *slotEnv) {
				a, err := e.active(t).ECM(e.reader, cx.ecm)
				if err != nil || a.Result != system.NotSupported || !strings.Contains(a.Reason, tc.reason) {
					t.Errorf("got %+v, %v; want not supported naming %q", a, err, tc.reason)
				}
			})
		})
	}
	t.Run("seca 3 ECM with byte 5 = 01 is not sent", func(t *testing.T) {
		se := secaCard()
		withCard(t, personality.SecaATR(10), se, cardreader.StateReady, func(e *slotEnv) {
			ecm := section(0x00, 0x64, 0x01, 0x00, 0x03, 0x10, 0x01, 0x55, 0x66)
			a, err := e.active(t).ECM(e.reader, ecm)
			if err != nil || a.Result != system.NotSupported || !strings.Contains(a.Reason, "box session key") {
				t.Errorf("%+v, %v", a, err)
			}
			if n := se.ECMs(); n != 0 {
				t.Errorf("%d Seca 3 nano-01 ECMs reached the card", n)
			}
		})
	})
	t.Run("unknown ATR", func(t *testing.T) {
		withCard(t, []byte{0x3B, 0x02, 0x14, 0x50}, cardsim.Echo{}, cardreader.StateFault, func(e *slotEnv) {
			st := e.reader.Stats()
			if !strings.Contains(st.LastError, cardreader.ErrUnknownCard.Error()) || st.System != "" {
				t.Errorf("stats %+v; want a fault naming the unknown card", st)
			}
		})
	})
}

// TestConaxHangReset: a Conax card answering 90 11 is warm-reset and
// initialised again, and the next ECM is answered.
func TestConaxHangReset(t *testing.T) {
	fx := fixtures()[0]
	c := conaxCard()
	withCard(t, fx.atr, c, cardreader.StateReady, func(e *slotEnv) {
		c.SetMode(personality.Hang)
		a, err := e.active(t).ECM(e.reader, fx.ecm)
		if err != nil || a.Result != system.CardError || !strings.Contains(a.Reason, "90 11") {
			t.Fatalf("hanging card: %+v, %v", a, err)
		}
		c.SetMode(personality.Normal)
		e.waitCardReset(t, 1)
		st := e.reader.Stats()
		if st.WarmResets != 1 || c.Resets() != 2 || st.Faults != 0 {
			t.Errorf("stats %+v, card resets %d; want one warm reset after the cold one, no fault", st, c.Resets())
		}
		a, err = e.active(t).ECM(e.reader, fx.ecm)
		if err != nil || a.Result != system.Found || a.CW != personality.ExpectedCW("conax", fx.ecm) {
			t.Errorf("after the reset: %+v, %v", a, err)
		}
	})
}

// TestConaxPIN: with a pin the parental refusal is answered with DD C8 and
// the ECM is sent again; without one it stays a refusal.
func TestConaxPIN(t *testing.T) {
	fx := fixtures()[0]
	for _, pin := range []string{"", "1234"} {
		c := conaxCard()
		c.PIN = "1234"
		c.SetMode(personality.Parental)
		withCardOpts(t, fx.atr, c, system.Options{PIN: pin}, cardreader.StateReady, func(e *slotEnv) {
			a, err := e.active(t).ECM(e.reader, fx.ecm)
			if want := map[string]system.Result{"": system.NotSubscribed, "1234": system.Found}[pin]; err != nil || a.Result != want {
				t.Errorf("pin %q: %+v, %v; want %v", pin, a, err, want)
			}
		})
	}
}

// TestSecaReadAfterRefusal: after 93 02 satd still reads C1 3A, so the
// card does not lock up and the next ECM is answered; a token request is
// answered and the ECM sent again.
func TestSecaReadAfterRefusal(t *testing.T) {
	fx := fixtures()[1]
	se := secaCard()
	withCard(t, fx.atr, se, cardreader.StateReady, func(e *slotEnv) {
		for _, step := range []struct {
			mode personality.Mode
			want system.Result
		}{{personality.NotSubscribed, system.NotSubscribed}, {personality.BadECM, system.BadECM}, {personality.Token, system.Found}, {personality.Normal, system.Found}} {
			se.SetMode(step.mode)
			a, err := e.active(t).ECM(e.reader, fx.ecm)
			if err != nil || a.Result != step.want || (a.Result == system.Found && a.CW != personality.ExpectedCW("seca", fx.ecm)) {
				t.Errorf("mode %d: %+v, %v; want %v", step.mode, a, err, step.want)
			}
		}
	})
}

// TestCWPolicy: a CW with a wrong checksum byte is fixed by default and
// refused with dropbadcws, for every system through the real stack.
func TestCWPolicy(t *testing.T) {
	for _, fx := range fixtures() {
		for _, policy := range []cardreader.CWPolicy{cardreader.FixBadCWs, cardreader.DropBadCWs} {
			fx := fixtures()[slices.IndexFunc(fixtures(), func(f fixture) bool { return f.name == fx.name })]
			fx.beh.SetMode(personality.BadChecksum)
			withCardOpts(t, fx.atr, fx.p, system.Options{Policy: policy}, cardreader.StateReady, func(e *slotEnv) {
				a, err := e.active(t).ECM(e.reader, fx.ecm)
				switch {
				case err != nil:
					t.Errorf("%s: %v", fx.name, err)
				case policy == cardreader.FixBadCWs && (a.Result != system.Found || a.CW != personality.ExpectedCW(fx.name, fx.ecm)):
					t.Errorf("%s: %+v; want the fixed CW % X", fx.name, a, personality.ExpectedCW(fx.name, fx.ecm))
				case policy == cardreader.DropBadCWs && (a.Result != system.NotFound || !strings.Contains(a.Reason, "dropbadcws")):
					t.Errorf("%s with dropbadcws: %+v; want not found", fx.name, a)
				}
			})
		}
	}
}

// TestDGCryptZeroNS: the DGCrypt system runs the T=1 link with N(S) = 0,
// so a card numbering every block 0 needs no recovery.
func TestDGCryptZeroNS(t *testing.T) {
	fx := fixtures()[3]
	withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
		for range 3 {
			if a, err := e.active(t).ECM(e.reader, fx.ecm); err != nil || a.Result != system.Found {
				t.Fatalf("%+v, %v", a, err)
			}
		}
		if n := e.sim.C.Resynchs.Load() + e.sim.C.Retransmits.Load(); n != 0 {
			t.Errorf("%d RESYNCHs/retransmissions", n)
		}
	})
}

// TestECMBadInput checks host-side ECM checks for every system.
func TestECMBadInput(t *testing.T) {
	for _, fx := range fixtures() {
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			for _, ecm := range [][]byte{nil, {0x80}, {0x80, 0x70, 0x40, 1, 2}} {
				a, err := e.active(t).ECM(e.reader, ecm)
				if err != nil || a.Result != system.BadECM {
					t.Errorf("%s ECM % X: %+v, %v", fx.name, ecm, a, err)
				}
			}
		})
	}
}

// TestECMAllocs proves ECM processing after init allocates nothing for
// every system, host stack and simulator together.
func TestECMAllocs(t *testing.T) {
	for _, fx := range fixtures() {
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			sys := e.active(t)
			allocs := testing.AllocsPerRun(50, func() {
				if a, err := sys.ECM(e.reader, fx.ecm); err != nil || a.Result != system.Found {
					t.Fatal(a, err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: %v allocations per ECM", fx.name, allocs)
			}
		})
	}
}
