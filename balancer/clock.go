package balancer

import (
	"sync"
	"time"
)

// Time is monotonic time in milliseconds since the clock's origin.
type Time int64

// Clock is the Dispatcher's time source.
type Clock interface {
	// Now returns monotonic milliseconds since the origin.
	Now() Time
	// Origin is the wall-clock time of Now() == 0; it is used only to
	// convert the stats file's unix seconds.
	Origin() time.Time
}

// RealClock is a Clock on the process's monotonic clock.
type RealClock struct{ start time.Time }

// NewRealClock returns a clock whose origin is now.
func NewRealClock() *RealClock { return &RealClock{start: time.Now()} }

// Now returns milliseconds since the origin (monotonic).
func (c *RealClock) Now() Time { return Time(time.Since(c.start) / time.Millisecond) }

// Origin returns the wall time of the origin.
func (c *RealClock) Origin() time.Time { return c.start }

// VirtualClock is a Clock that only moves when Set is called.
type VirtualClock struct {
	mu     sync.Mutex
	now    Time
	origin time.Time
}

// NewVirtualClock returns a clock at 0 whose origin is the given wall time.
func NewVirtualClock(origin time.Time) *VirtualClock { return &VirtualClock{origin: origin} }

// Now returns the virtual time.
func (c *VirtualClock) Now() Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t; it never goes backwards.
func (c *VirtualClock) Set(t Time) {
	c.mu.Lock()
	if t > c.now {
		c.now = t
	}
	c.mu.Unlock()
}

// Origin returns the wall time of virtual time 0.
func (c *VirtualClock) Origin() time.Time { return c.origin }

var (
	_ Clock = (*RealClock)(nil)
	_ Clock = (*VirtualClock)(nil)
)
