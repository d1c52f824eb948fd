// Package sysfsgpio drives GPIO lines through the legacy /sys/class/gpio
// interface behind periph's gpio.PinIO. It exists because periph's own
// sysfs driver refuses to load without a working GPIO character device, and
// receiver vendor kernels (3.14–4.19) often have none. Out on an input
// writes "high"/"low" to direction, so the line never glitches; edges are
// waited for with poll(POLLPRI) on value.
package sysfsgpio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// DefaultRoot is where the kernel exposes the sysfs GPIO interface.
const DefaultRoot = "/sys/class/gpio"

// ExportWait bounds how long Open waits for a freshly exported line's files
// to appear (udev may also need to fix their permissions).
var ExportWait = time.Second

// ErrNoPull reports a pull-up or pull-down request: sysfs has no bias
// control, so the board must provide the resistor.
var ErrNoPull = errors.New("sysfs gpio has no pull-up/pull-down control")

// Pin is one GPIO line driven through sysfs. Its methods are safe for
// concurrent use, except that one goroutine at a time may WaitForEdge.
type Pin struct {
	root, dir string
	num       int
	name      string

	mu     sync.Mutex
	fd     int // value file
	haltR  int
	haltW  int
	output bool
	level  gpio.Level
	edge   gpio.Edge
	pull   gpio.Pull
	closed bool
}

var _ gpio.PinIO = (*Pin)(nil)

// Open exports line num under root (DefaultRoot when empty) if needed,
// resets active_low to 0 (satd handles polarity itself) and opens value.
func Open(root string, num int) (*Pin, error) {
	if root == "" {
		root = DefaultRoot
	}
	if num < 0 {
		return nil, fmt.Errorf("sysfs gpio %d: line number must not be negative", num)
	}
	p := &Pin{root: root, num: num, name: "GPIO" + strconv.Itoa(num), fd: -1, haltR: -1, haltW: -1}
	p.dir = filepath.Join(root, "gpio"+strconv.Itoa(num))
	if err := p.export(); err != nil {
		return nil, err
	}
	if err := p.open(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pin) export() error {
	if _, err := os.Stat(filepath.Join(p.dir, "value")); err == nil {
		return nil
	}
	if err := p.writeAttr("../export", strconv.Itoa(p.num)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	deadline := time.Now().Add(ExportWait)
	for {
		f, err := os.OpenFile(filepath.Join(p.dir, "direction"), os.O_WRONLY, 0)
		if err == nil {
			f.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sysfs gpio %d: exported but %s not writable after %v: %w", p.num, p.dir, ExportWait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Pin) open() error {
	if err := p.writeAttr("active_low", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dir, err := os.ReadFile(filepath.Join(p.dir, "direction"))
	if err != nil {
		return fmt.Errorf("sysfs gpio %d: %w", p.num, err)
	}
	p.output = len(dir) >= 3 && string(dir[:3]) == "out"
	p.fd, err = unix.Open(filepath.Join(p.dir, "value"), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sysfs gpio %d: open value: %w", p.num, err)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("sysfs gpio %d: halt pipe: %w", p.num, err)
	}
	p.haltR, p.haltW = fds[0], fds[1]
	if p.output {
		p.level, err = p.readValue()
	}
	return err
}

func (p *Pin) writeAttr(attr, v string) error {
	path := filepath.Join(p.dir, attr)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysfs gpio %d: %w", p.num, err)
	}
	defer f.Close()
	if _, err := f.WriteString(v); err != nil {
		return fmt.Errorf("sysfs gpio %d: write %q to %s: %w", p.num, v, path, err)
	}
	return nil
}

func (p *Pin) readValue() (gpio.Level, error) {
	var b [2]byte
	n, err := unix.Pread(p.fd, b[:], 0)
	if err != nil {
		return gpio.Low, fmt.Errorf("sysfs gpio %d: read value: %w", p.num, err)
	}
	if n == 0 {
		return gpio.Low, fmt.Errorf("sysfs gpio %d: value file is empty", p.num)
	}
	return b[0] == '1', nil
}

// Close releases the file descriptors; the line stays exported and keeps
// its level.
func (p *Pin) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for _, fd := range []int{p.fd, p.haltR, p.haltW} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return nil
}

// String returns the line name and its directory.
func (p *Pin) String() string { return p.name + "(" + p.dir + ")" }

// Name returns "GPIO<n>" like periph's sysfs driver.
func (p *Pin) Name() string { return p.name }

// Number returns the global sysfs line number.
func (p *Pin) Number() int { return p.num }

// Function returns "In/High"-style text.
func (p *Pin) Function() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output {
		return "Out/" + p.level.String()
	}
	return "In"
}

// Halt interrupts a pending WaitForEdge.
func (p *Pin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	unix.Write(p.haltW, []byte{0})
	return nil
}

// In makes the line an input and sets the edge to watch. Pull must be
// PullNoChange or Float.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	if pull != gpio.PullNoChange && pull != gpio.Float {
		return fmt.Errorf("sysfs gpio %d: %s: %w", p.num, pull, ErrNoPull)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writeAttr("direction", "in"); err != nil {
		return err
	}
	p.output, p.pull = false, pull
	es := map[gpio.Edge]string{gpio.NoEdge: "none", gpio.RisingEdge: "rising", gpio.FallingEdge: "falling", gpio.BothEdges: "both"}[edge]
	if es == "" {
		return fmt.Errorf("sysfs gpio %d: unknown edge %v", p.num, edge)
	}
	if err := p.writeAttr("edge", es); err != nil {
		if edge != gpio.NoEdge {
			return fmt.Errorf("%w (the line cannot interrupt; poll it instead)", err)
		}
	}
	p.edge = edge
	_, err := p.readValue() // consume a stale edge
	return err
}

// Read returns the level; for an output it is the level last driven.
func (p *Pin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output || p.closed {
		return p.level
	}
	l, err := p.readValue()
	if err != nil {
		return gpio.Low
	}
	return l
}

// WaitForEdge waits for the edge set with In. timeout -1 waits forever;
// otherwise it is rounded up to whole milliseconds.
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	if p.closed || p.edge == gpio.NoEdge || p.output {
		p.mu.Unlock()
		return false
	}
	fd, haltR := p.fd, p.haltR
	p.mu.Unlock()
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI | unix.POLLERR}, {Fd: int32(haltR), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return false
		}
		if fds[1].Revents != 0 {
			var b [16]byte
			unix.Read(haltR, b[:])
			return false
		}
		var b [2]byte
		unix.Pread(fd, b[:], 0)
		return true
	}
}

// Pull returns the pull given to In (sysfs cannot change it).
func (p *Pin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull returns gpio.PullNoChange: sysfs cannot tell.
func (p *Pin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// Out drives the line. An input becomes an output by writing "high" or
// "low" to direction, which sets direction and level in one step.
func (p *Pin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("sysfs gpio %d: %w", p.num, os.ErrClosed)
	}
	if !p.output {
		v := "low"
		if l {
			v = "high"
		}
		if err := p.writeAttr("direction", v); err != nil {
			return err
		}
		p.output, p.level, p.edge = true, l, gpio.NoEdge
		return nil
	}
	b := [1]byte{'0'}
	if l {
		b[0] = '1'
	}
	if _, err := unix.Pwrite(p.fd, b[:], 0); err != nil {
		return fmt.Errorf("sysfs gpio %d: write value: %w", p.num, err)
	}
	p.level = l
	return nil
}

// PWM is not supported by sysfs GPIO.
func (p *Pin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("sysfs gpio %d: PWM not supported", p.num)
}
