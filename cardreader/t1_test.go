package cardreader_test

import (
	"bytes"
	"testing"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/cardsim"
	"satd.dev/satd/hal/haltest"
)

func TestT1Smoke(t *testing.T) {
	bubble(t, haltest.SlotOptions{Echo: true}, cardsim.Config{ATR: t1ATR(0x3B, 0x11, 254, false)}, opts(), func(e *env) {
		cmd := case4(10)
		resp := make([]byte, 300)
		n, err := e.reader.Transmit(cmd, resp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp[:n-2], cmd[5:15]) {
			t.Errorf("resp % X", resp[:n])
		}
		t.Logf("%+v", e.reader.Stats())
	})
}

var _ = cardreader.StateReady
