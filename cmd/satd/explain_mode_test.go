package main

import (
	"strings"
	"testing"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cmd/satd/web"
)

// TestDecisionsKeepTheirMode: two decisions with an lb_mode change between
// them (made through the daemon's apply, as a save from the form does)
// each show the mode in force when they were made, reader by reader.
func TestDecisionsKeepTheirMode(t *testing.T) {
	d := startRigMode(t, 0)
	decide := func(sid uint16) {
		t.Helper()
		ecm := []byte{0x80, 0x70, 0x10}
		for i := range 16 {
			ecm = append(ecm, byte(i*7)+byte(sid))
		}
		got := make(answers, 1)
		if err := d.balancer().Submit(&balancer.ECM{CAID: 0x0B00, SrvID: sid, Len: uint16(len(ecm)), Data: ecm, Client: got}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(time.Minute): // a hang guard, not a timing check
			t.Fatal("hung: no answer")
		}
	}
	decide(1)
	cfg, err := cloneForTest(d.config())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Balancer.LBMode = 1
	for _, r := range d.apply(cfg, d.log.component("main")) {
		if r.Component == "balancer" && r.Outcome != web.Applied {
			t.Fatalf("lb_mode change: %+v", r)
		}
	}
	decide(2)

	modes := map[string]string{}
	for _, dc := range (balancerView{d}).Decisions() {
		modes[dc.Service] = dc.Mode
		if len(dc.Why) != 2 {
			t.Errorf("%s: %d reader rows, want one per reader: %+v", dc.Service, len(dc.Why), dc.Why)
		}
		if dc.Mode == "0" && !strings.Contains(dc.Explanation, "lb_mode 0") {
			t.Errorf("%s under lb_mode 0 explains %q", dc.Service, dc.Explanation)
		}
	}
	if modes["0B00@000000:0001"] != "0" || modes["0B00@000000:0002"] != "1" {
		t.Errorf("decision modes %v, want service 1 at lb_mode 0 and service 2 at lb_mode 1", modes)
	}
}
