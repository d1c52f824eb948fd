package pins

import (
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// ioctlPin hides periph gpioioctl's quirks behind the documented
// gpio.PinIO semantics:
//   - Read on an output returns the level last driven; gpioioctl would
//     silently turn the line into an input with pull-up.
//   - WaitForEdge(-1) waits forever and WaitForEdge(0) only looks (for up to
//     1 ms); gpioioctl waits forever on 0 and returns at once on -1.
//
// The low glitch of the first Out is confined to Host.OpenOut.
type ioctlPin struct {
	gpio.PinIO
	mu     sync.Mutex
	output bool
	level  gpio.Level
}

func wrapIoctl(p gpio.PinIO) *ioctlPin { return &ioctlPin{PinIO: p} }

func (p *ioctlPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.PinIO.Out(l); err != nil {
		return err
	}
	p.output, p.level = true, l
	return nil
}

func (p *ioctlPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.PinIO.In(pull, edge); err != nil {
		return err
	}
	p.output = false
	return nil
}

func (p *ioctlPin) Read() gpio.Level {
	p.mu.Lock()
	if p.output {
		defer p.mu.Unlock()
		return p.level
	}
	p.mu.Unlock()
	return p.PinIO.Read()
}

func (p *ioctlPin) WaitForEdge(timeout time.Duration) bool {
	switch {
	case timeout < 0:
		timeout = 0 // gpioioctl: forever
	case timeout == 0:
		timeout = time.Millisecond // gpioioctl: a deadline already past never reads
	}
	return p.PinIO.WaitForEdge(timeout)
}

// Close releases the line request.
func (p *ioctlPin) Close() error {
	if c, ok := p.PinIO.(interface{ Close() }); ok {
		c.Close()
	}
	return nil
}
