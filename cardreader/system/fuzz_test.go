package system_test

import (
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim/personality"
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
