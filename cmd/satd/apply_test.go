package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/web"
)

// TestApplyOutcomes runs the daemon's apply over real components: a reader
// added waits for a restart and says which; a stream port in use fails the
// stream component with the bind error; the balancer applies.
func TestApplyOutcomes(t *testing.T) {
	d := startRig(t)
	streamCfg := *d.cfg
	streamCfg.Stream.Enabled, streamCfg.Stream.Listen = true, "127.0.0.1:0"
	sc, err := buildStream(env{cfg: &streamCfg, log: d.log.component("stream"), daemon: d})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d.addPart("stream", sc) // stopped with the daemon

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	next := streamCfg
	next.Readers = append(append(next.Readers[:0:0], streamCfg.Readers...), readerCfg("extra", "constcw"))
	next.Readers[0].Enable = false
	next.Stream.Listen = busy.Addr().String()
	res := d.apply(&next, d.log.component("main"))
	got := map[string]web.ComponentResult{}
	for _, r := range res {
		got[r.Component] = r
	}
	for _, tc := range []struct {
		part    string
		outcome web.Outcome
		reason  []string
	}{
		{"readers", web.RestartNeeded, []string{"reader extra added"}},
		{"stream", web.Failed, []string{"listen tcp " + busy.Addr().String(), "address already in use"}},
		{"balancer", web.Applied, nil},
	} {
		r := got[tc.part]
		if r.Outcome != tc.outcome {
			t.Errorf("%s: %q (%s), want %q", tc.part, r.Outcome, r.Reason, tc.outcome)
		}
		for _, want := range tc.reason {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("%s: reason %q lacks %q", tc.part, r.Reason, want)
			}
		}
	}
	// The disabled reader is out of the balancer at once, not at the restart.
	if strings.Contains(got["readers"].Reason, "fixed") || d.readers()[0].State != "disabled" {
		t.Errorf("reader fixed: %q, state %q", got["readers"].Reason, d.readers()[0].State)
	}
}
