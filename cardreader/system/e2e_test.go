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

// TestSubscriptions checks that dates survive the card encodings.
func TestSubscriptions(t *testing.T) {
	for _, fx := range fixtures()[:2] {
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			subs := e.active(t).Identity().Subscriptions
			i := slices.IndexFunc(subs, func(s system.Subscription) bool { return s.End.Equal(end) })
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

// TestRefusals covers the cards and ECMs satd must refuse with a reason.
func TestRefusals(t *testing.T) {
	t.Run("paired conax at init", func(t *testing.T) {
		c := conaxCard()
		c.Paired = true
		withCard(t, personality.ConaxATR(), c, cardreader.StateFault, func(e *slotEnv) {
			st := e.reader.Stats()
			if !strings.Contains(st.LastError, "paired Conax card") || !strings.Contains(st.LastError, system.ErrNotSupported.Error()) {
				t.Errorf("last error %q does not name the pairing", st.LastError)
			}
		})
	})
	t.Run("paired conax from the ECM answer", func(t *testing.T) {
		c := conaxCard()
		c.WrapCWs = true
		fx := fixtures()[0]
		withCard(t, fx.atr, c, cardreader.StateReady, func(e *slotEnv) {
			a, err := e.active(t).ECM(e.reader, fx.ecm)
			if err != nil || a.Result != system.NotSupported || !strings.Contains(a.Reason, "paired") {
				t.Errorf("got %+v, %v; want not supported naming the pairing", a, err)
			}
		})
	})
	t.Run("seca nano 01", func(t *testing.T) {
		fx := fixtures()[1]
		withCard(t, fx.atr, fx.p, cardreader.StateReady, func(e *slotEnv) {
			for _, nano := range [][]byte{{0x01, 0x00}, {0x10, 0x01}} {
				ecm := section(0x00, 0x64, 0x00, 0x00, 0x03, nano[0], nano[1], 0x55, 0x66)
				a, err := e.active(t).ECM(e.reader, ecm)
				if err != nil || a.Result != system.NotSupported || !strings.Contains(a.Reason, "needs box key") {
					t.Errorf("nano % X: %+v, %v", nano, a, err)
				}
			}
			if n := fx.beh.ECMs(); n != 0 {
				t.Errorf("%d nano-01 ECMs reached the card", n)
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
// Conax and Seca, host stack and simulator together.
func TestECMAllocs(t *testing.T) {
	for _, fx := range fixtures()[:2] {
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
