package system_test

import (
	"context"
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/system"
)

// answerer is a Transmitter that answers every command with resp.
type answerer struct{ resp []byte }

func (a answerer) Transmit(cmd, resp []byte) (int, error) { return copy(resp, a.resp), nil }

// FuzzECM feeds arbitrary ECM bytes and card answers to every system: no
// panic, and Found only with a card answer.
func FuzzECM(f *testing.F) {
	for _, fx := range fixtures() {
		f.Add(fx.ecm, []byte{0x90, 0x00})
	}
	f.Add([]byte{0x80, 0x70, 0x05, 1, 2, 3, 4, 5}, []byte{0x98, 0x04})
	f.Add([]byte{0x80, 0x70, 0x02, 0, 0}, []byte{0x25, 0x0D, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00})
	f.Fuzz(func(t *testing.T, ecm, answer []byte) {
		if len(answer) < 2 || len(answer) > 258 {
			return
		}
		for _, sys := range system.All() {
			a, err := sys.ECM(answerer{answer}, ecm)
			if err != nil || (a.Result != system.Found && a.Reason == "") {
				t.Fatalf("%s: %+v %v", sys.Name(), a, err)
			}
		}
	})
}

// TestConaxReadRounds makes the card hand out its answer in several 98 xx
// rounds.
func TestConaxReadRounds(t *testing.T) {
	c := conaxCard()
	c.Chunk = 16
	fx := fixtures()[0]
	withCard(t, fx.atr, c, cardreader.StateReady, func(e *slotEnv) {
		a, err := e.active(t).ECM(e.reader, fx.ecm)
		if err != nil || a.Result != system.Found || a.CW != personality.ExpectedCW("conax", fx.ecm) {
			t.Errorf("%+v %v", a, err)
		}
	})
}

// fuzzCard answers every command with the same bytes and has the ATR of
// one of the fixtures.
type fuzzCard struct {
	answerer
	atr *iso7816.ATR
}

func (c fuzzCard) ATR() *iso7816.ATR { return c.atr }

// FuzzInit feeds arbitrary card answers to every system's Init: no panic,
// and either an error or an identity with the system's name.
func FuzzInit(f *testing.F) {
	f.Add([]byte{0x98, 0x0B})
	f.Add([]byte{0x90, 0x03})
	f.Add([]byte{0x22, 0x09, 0x23, 0x07, 0, 0, 0, 1, 2, 3, 4, 0x98, 0x0B})
	f.Add([]byte{0x32, 0x08, 0x01, 0x01, 0x30, 0x02, 0x61, 0x41, 0x01, 0x00, 0x90, 0x00})
	f.Add([]byte{0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x90, 0x00})
	f.Fuzz(func(t *testing.T, answer []byte) {
		if len(answer) < 2 || len(answer) > 258 {
			return
		}
		for _, fx := range fixtures() {
			atr, err := iso7816.ParseATR(fx.atr, iso7816.Lenient)
			if err != nil {
				t.Fatal(err)
			}
			sys := system.ByName(system.All(), fx.name)
			if err := sys.Init(context.Background(), fuzzCard{answerer{answer}, atr}); err == nil && sys.Identity().System != fx.name {
				t.Fatalf("%s: identity %+v", fx.name, sys.Identity())
			}
		}
	})
}
