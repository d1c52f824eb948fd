// Package memtrim returns the Go heap's retained free pages to the kernel
// once the daemon goes quiet after a burst of work.
//
// The runtime keeps pages freed by the garbage collector for reuse and its
// background scavenger gives them back slowly (it aims at about 10 % above
// the heap goal, over minutes). After a connect storm or a listener ramp the
// relay's heap holds megabytes of such pages — head buffers, handshake
// goroutine stacks, auth requests — that nothing will need until the next
// storm, on a receiver with 256 MB shared with the TV stack. The trimmer
// watches the allocation rate and, when it has been low for one interval
// after at least Min bytes were allocated since the last trim (garbage the
// collector may not have visited yet: a heap under its 4 MiB minimum goal is
// not collected at all) or while Min bytes sit free in the heap, forces a
// collection and returns the free pages at once (debug.FreeOSMemory). In
// steady state (the fan-out and the ECM path allocate nothing) it does
// nothing.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy says when a trim is due.
type Policy struct {
	Every    time.Duration // sampling interval
	Quiet    uint64        // at most this many bytes allocated in one interval counts as quiet
	Min      uint64        // free or newly allocated heap bytes worth a trim
	Interval time.Duration // at least this long between two trims
}

// Default is the daemon's policy: sample every second, quiet below 256 KiB
// allocated per second, trim from 256 KiB free or allocated since the last
// trim, at most every 10 s (a trim is one collection of a heap of a few
// MiB: about a millisecond of CPU).
var Default = Policy{Every: time.Second, Quiet: 256 << 10, Min: 256 << 10, Interval: 10 * time.Second}

// Sample is what the policy looks at.
type Sample struct {
	Allocs uint64 // cumulative bytes allocated
	Free   uint64 // heap bytes free and not yet returned to the kernel
}

// state is the trimmer's memory between samples.
type state struct {
	prev     Sample
	havePrev bool
	last     time.Time
	trimmed  uint64 // Allocs at the last trim
}

// due reports whether a trim is due at now given sample s.
func (p Policy) due(st *state, s Sample, now time.Time) bool {
	quiet := st.havePrev && s.Allocs-st.prev.Allocs <= p.Quiet
	if !st.havePrev {
		st.trimmed = s.Allocs
	}
	st.prev, st.havePrev = s, true
	worth := s.Free >= p.Min || s.Allocs-st.trimmed >= p.Min
	if !quiet || !worth || (!st.last.IsZero() && now.Sub(st.last) < p.Interval) {
		return false
	}
	st.last, st.trimmed = now, s.Allocs
	return true
}

var names = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/free:bytes"}

// read samples the runtime.
func read(ms []metrics.Sample) Sample {
	metrics.Read(ms)
	var s Sample
	if ms[0].Value.Kind() == metrics.KindUint64 {
		s.Allocs = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindUint64 {
		s.Free = ms[1].Value.Uint64()
	}
	return s
}

// Run trims by policy p until ctx ends.
func Run(ctx context.Context, p Policy) {
	ms := make([]metrics.Sample, len(names))
	for i, n := range names {
		ms[i].Name = n
	}
	var st state
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if p.due(&st, read(ms), now) {
				debug.FreeOSMemory()
			}
		}
	}
}
