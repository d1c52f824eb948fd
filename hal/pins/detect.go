package pins

import (
	"context"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Default card-detect timings.
const (
	// DefaultDebounce is how long a new level must hold before it counts,
	// as the TDA8024 box drivers do for the OFF pin.
	DefaultDebounce = 8 * time.Millisecond
	// DefaultPoll is the polling period when the line cannot interrupt, and
	// the safety re-check period when it can.
	DefaultPoll = 50 * time.Millisecond
)

// Detector watches a card-detect (or OFF) input and reports debounced
// level changes. It uses edges when the line supports them and falls back
// to polling otherwise.
type Detector struct {
	Pin      gpio.PinIn
	Debounce time.Duration // DefaultDebounce when zero
	Poll     time.Duration // DefaultPoll when zero
	edges    bool
}

// Start configures the pin (both edges, else plain input for polling) and
// returns the level it reads now. Call Run afterwards.
func (d *Detector) Start() (gpio.Level, error) {
	if d.Debounce <= 0 {
		d.Debounce = DefaultDebounce
	}
	if d.Poll <= 0 {
		d.Poll = DefaultPoll
	}
	d.edges = d.Pin.In(gpio.PullNoChange, gpio.BothEdges) == nil
	if !d.edges {
		if err := d.Pin.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
			return gpio.Low, err
		}
	}
	return d.Pin.Read(), nil
}

// EdgeDriven reports whether Start could enable edge interrupts.
func (d *Detector) EdgeDriven() bool { return d.edges }

// Run reports every debounced change away from stable until ctx ends.
// report runs in Run's goroutine.
func (d *Detector) Run(ctx context.Context, stable gpio.Level, report func(gpio.Level)) {
	stop := context.AfterFunc(ctx, func() { d.Pin.Halt() })
	defer stop()
	for ctx.Err() == nil {
		if d.edges {
			d.Pin.WaitForEdge(d.Poll)
		} else if Sleep(ctx, d.Poll) != nil {
			return
		}
		if d.Pin.Read() == stable {
			continue
		}
		// Let the contact settle, then trust only a level that held.
		if Sleep(ctx, d.Debounce) != nil {
			return
		}
		if l := d.Pin.Read(); l != stable {
			stable = l
			report(l)
		}
	}
}

// Sleep waits for d or until ctx ends, and returns ctx's error then. It
// uses a timer, so it runs on the fake clock of a testing/synctest bubble.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
