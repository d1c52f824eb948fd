package haltest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Change is one entry of a Recorder's history.
type Change struct {
	// At is time.Now() when the change happened (the synctest clock
	// inside a bubble).
	At time.Time
	// Level is the line level after the change.
	Level gpio.Level
	// Output says whether the line was driven by the host (Out) rather than
	// from outside (Set) or by turning it into an input (In).
	Output bool
	// Seq orders changes across all recorders of the process, so tests can
	// check the order of changes that happen at the same synctest instant.
	Seq uint64
}

var changeSeq atomic.Uint64

func newChange(l gpio.Level, output bool) Change {
	return Change{At: time.Now(), Level: l, Output: output, Seq: changeSeq.Add(1)}
}

// Recorder is a gpio.PinIO fake that keeps the history of every level and
// direction change with timestamps, so tests can assert the order of line
// changes and the delays between them. Out drives the line; Set drives it
// from outside (a card-detect switch, a chip's OFF output) and wakes
// WaitForEdge when the configured edge matches. Unlike periph's gpioioctl,
// Read on an output returns the driven level and WaitForEdge(-1) waits
// forever. Create it inside the synctest bubble that uses it.
type Recorder struct {
	name string
	num  int

	mu      sync.Mutex
	level   gpio.Level
	output  bool
	pull    gpio.Pull
	edge    gpio.Edge
	history []Change
	outErr  error
	inErr   error
	edges   chan struct{}
	halt    chan struct{}
}

var _ gpio.PinIO = (*Recorder)(nil)

// NewRecorder returns an input line at level initial, with empty history.
func NewRecorder(name string, num int, initial gpio.Level) *Recorder {
	return &Recorder{
		name:  name,
		num:   num,
		level: initial,
		edges: make(chan struct{}, 64),
		halt:  make(chan struct{}, 1),
	}
}

// History returns a copy of all changes so far.
func (r *Recorder) History() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.history...)
}

// ClearHistory forgets the recorded changes.
func (r *Recorder) ClearHistory() {
	r.mu.Lock()
	r.history = r.history[:0]
	r.mu.Unlock()
}

// FailOut makes later Out calls fail with err (nil to stop).
func (r *Recorder) FailOut(err error) {
	r.mu.Lock()
	r.outErr = err
	r.mu.Unlock()
}

// FailIn makes later In calls fail with err (nil to stop), for example to
// simulate a line without edge support.
func (r *Recorder) FailIn(err error) {
	r.mu.Lock()
	r.inErr = err
	r.mu.Unlock()
}

// IsOutput reports whether the line is configured as an output.
func (r *Recorder) IsOutput() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output
}

// Level returns the current level without the side effects of Read.
func (r *Recorder) Level() gpio.Level {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.level
}

// Set drives an input line from outside. It records the change and signals
// WaitForEdge when the edge matches the one configured with In.
func (r *Recorder) Set(l gpio.Level) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l == r.level {
		return
	}
	r.level = l
	r.history = append(r.history, newChange(l, false))
	if !r.output && (r.edge == gpio.BothEdges || (r.edge == gpio.RisingEdge) == bool(l)) && r.edge != gpio.NoEdge {
		select {
		case r.edges <- struct{}{}:
		default:
		}
	}
}

// String returns the line name.
func (r *Recorder) String() string { return r.name }

// Name returns the line name.
func (r *Recorder) Name() string { return r.name }

// Number returns the line number.
func (r *Recorder) Number() int { return r.num }

// Function returns "In/High"-style text like periph's pins.
func (r *Recorder) Function() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.output {
		return "Out/" + r.level.String()
	}
	return "In/" + r.level.String()
}

// Halt interrupts a pending WaitForEdge.
func (r *Recorder) Halt() error {
	select {
	case r.halt <- struct{}{}:
	default:
	}
	return nil
}

// In turns the line into an input and drops pending edges.
func (r *Recorder) In(pull gpio.Pull, edge gpio.Edge) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inErr != nil {
		return r.inErr
	}
	if r.output {
		r.history = append(r.history, newChange(r.level, false))
	}
	r.output, r.pull, r.edge = false, pull, edge
	for len(r.edges) > 0 {
		<-r.edges
	}
	return nil
}

// Read returns the line level.
func (r *Recorder) Read() gpio.Level { return r.Level() }

// WaitForEdge waits for an edge set with Set; timeout -1 waits forever.
func (r *Recorder) WaitForEdge(timeout time.Duration) bool {
	r.mu.Lock()
	edge := r.edge
	r.mu.Unlock()
	if edge == gpio.NoEdge {
		return false
	}
	var tc <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-r.edges:
		return true
	case <-tc:
	case <-r.halt:
	}
	return false
}

// Pull returns the pull set with In.
func (r *Recorder) Pull() gpio.Pull {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pull
}

// DefaultPull returns gpio.PullNoChange.
func (r *Recorder) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// Out drives the line and records the change if the level or direction
// changed.
func (r *Recorder) Out(l gpio.Level) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outErr != nil {
		return r.outErr
	}
	if r.output && r.level == l {
		return nil
	}
	r.output, r.level = true, l
	r.history = append(r.history, newChange(l, true))
	return nil
}

// PWM is not supported.
func (r *Recorder) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("haltest: recorder has no PWM")
}

// Timeline merges the histories of several recorders into one readable
// line per change, "+1.5ms cmdvcc=Low", relative to start; handy in test
// failure messages.
func Timeline(start time.Time, rs ...*Recorder) string {
	type ev struct {
		c    Change
		name string
	}
	var all []ev
	for _, r := range rs {
		for _, c := range r.History() {
			all = append(all, ev{c, r.name})
		}
	}
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].c.Seq < all[j-1].c.Seq; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	var b strings.Builder
	for _, e := range all {
		fmt.Fprintf(&b, "+%v %s=%v\n", e.c.At.Sub(start), e.name, e.c.Level)
	}
	return b.String()
}
