package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"satd.dev/satd/balancer"
)

// TestReaderAverageAtEveryMode: the reader's average ECM time on Status
// comes from the reader's own answers, so it shows at every lb_mode (the
// balancer keeps no statistics at lb_mode 0, like OSCam, which left the
// column "–" there).
func TestReaderAverageAtEveryMode(t *testing.T) {
	for mode := range 5 {
		t.Run(fmt.Sprintf("lb_mode %d", mode), func(t *testing.T) {
			d := startRigMode(t, mode)
			solveOne(t, d, byte(mode), balancer.Found)
			st := daemonStatus{d}.Status()
			card := st.Readers[1]
			if card.Label != "card1" || card.ECMOK != 1 || card.AvgTime <= 0 {
				t.Fatalf("reader %s: ok %d avg %v", card.Label, card.ECMOK, card.AvgTime)
			}
			var b bytes.Buffer
			if err := json.NewEncoder(&b).Encode(st.Readers[1]); err != nil || !strings.Contains(b.String(), `"avg_time_ns":`) {
				t.Errorf("status JSON %s %v", b.String(), err)
			}
		})
	}
}
