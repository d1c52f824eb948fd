package main

import (
	"testing"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/web"
)

// readerByName returns the status of the labelled reader.
func readerByName(t *testing.T, d *daemon, label string) ReaderStatus {
	t.Helper()
	for _, s := range d.readers() {
		if s.Label == label {
			return s
		}
	}
	t.Fatalf("no reader %s", label)
	return ReaderStatus{}
}

// withReader returns a copy of the configuration in force with edit
// applied to the labelled reader (nil edit: the reader removed).
func withReader(d *daemon, label string, edit func(*config.Reader)) *config.Config {
	next := *d.config()
	next.Readers = nil
	for _, r := range d.config().Readers {
		if r.Label == label {
			if edit == nil {
				continue
			}
			edit(&r)
		}
		next.Readers = append(next.Readers, r)
	}
	return &next
}

// TestDisableReaderLive: a reader disabled (or removed) in the applied
// configuration is no longer asked by the balancer at once, without a
// restart; enabled again, it is asked again.
func TestDisableReaderLive(t *testing.T) {
	d := startRig(t)
	solveOne(t, d, 0, balancer.Found)
	for _, tc := range []struct {
		name    string
		edit    func(*config.Reader)
		outcome web.Outcome
		want    balancer.Result
	}{
		{"disabled", func(r *config.Reader) { r.Enable = false }, web.Applied, balancer.NotFound},
		{"enabled again", func(r *config.Reader) { r.Enable = true }, web.Applied, balancer.Found},
		{"removed", nil, web.RestartNeeded, balancer.NotFound},
	} {
		res := d.apply(withReader(d, "card1", tc.edit), d.log.component("main"))
		for _, c := range res {
			if c.Component == "readers" && c.Outcome != tc.outcome {
				t.Errorf("%s: readers %s (%s), want %s", tc.name, c.Outcome, c.Reason, tc.outcome)
			}
		}
		before := readerByName(t, d, "card1").ECMs
		solveOne(t, d, byte(len(tc.name)), tc.want)
		asked := readerByName(t, d, "card1").ECMs > before
		if asked != (tc.want == balancer.Found) {
			t.Errorf("%s: card1 asked %v", tc.name, asked)
		}
		if st := readerByName(t, d, "card1"); (st.State == "disabled") == (tc.want == balancer.Found) {
			t.Errorf("%s: card1 state %q", tc.name, st.State)
		}
	}
}

// TestRestartAndResetReader: the reader list's restart opens the reader
// anew (a new card source that answers again); reset zeroes its counters.
func TestRestartAndResetReader(t *testing.T) {
	d := startRig(t)
	solveOne(t, d, 0, balancer.Found)
	rc := readerControl{d}
	u, err := d.readersPart().unit("card1")
	if err != nil {
		t.Fatal(err)
	}
	old := u.source()
	if err := rc.Restart("card1"); err != nil {
		t.Fatal(err)
	}
	if u.source() == old {
		t.Fatalf("restart kept the old card source")
	}
	waitReady(t, d, "card1")
	solveOne(t, d, 1, balancer.Found)
	if err := rc.Restart("nobody"); err == nil {
		t.Errorf("restart of an unknown reader accepted")
	}
	if err := rc.ResetCounters("card1"); err != nil {
		t.Fatal(err)
	}
	if st := readerByName(t, d, "card1"); st.ECMs+st.Found+st.NotFound != 0 {
		t.Errorf("after reset: %+v", st)
	}
}
