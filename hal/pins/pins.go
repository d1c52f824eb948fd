// Package pins opens the GPIO lines of a card slot on whatever the kernel
// offers: periph's gpioioctl (GPIO v2 character device, Linux >= 5.10) with
// its quirks wrapped away, or satd's own sysfs backend on older vendor
// kernels. It also holds the debounced card-detect watcher.
package pins

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/gpio"
)

// Backend names a GPIO access method.
type Backend string

// Backends.
const (
	// Auto uses the character device when it works, else sysfs.
	Auto Backend = "auto"
	// Chardev is periph's gpioioctl (GPIO v2 uAPI, Linux >= 5.10).
	Chardev Backend = "chardev"
	// Sysfs is /sys/class/gpio.
	Sysfs Backend = "sysfs"
)

// Valid reports whether b is a known backend name.
func (b Backend) Valid() bool { return b == Auto || b == Chardev || b == Sysfs || b == "" }

// Addr is a parsed line address: a character-device chip and offset
// ("gpiochip1:17" or "chip1:17"), a global sysfs number ("45"), or a line
// name from the device tree ("CARD_VCC").
type Addr struct {
	Chip   int // -1 unless a chip was given
	Offset int // chip offset, or global number when Chip < 0 and Name == ""
	Name   string
}

// ParseAddr parses a line address as described for Addr.
func ParseAddr(s string) (Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Addr{}, fmt.Errorf("empty GPIO line address")
	}
	if c, off, ok := strings.Cut(s, ":"); ok {
		c = strings.TrimPrefix(strings.TrimPrefix(c, "gpio"), "chip")
		chip, err1 := strconv.Atoi(c)
		o, err2 := strconv.Atoi(off)
		if err1 != nil || err2 != nil || chip < 0 || o < 0 {
			return Addr{}, fmt.Errorf("GPIO line %q: want chipN:offset with non-negative numbers", s)
		}
		return Addr{Chip: chip, Offset: o}, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return Addr{}, fmt.Errorf("GPIO line %q: number must not be negative", s)
		}
		return Addr{Chip: -1, Offset: n}, nil
	}
	return Addr{Chip: -1, Name: s}, nil
}

func (a Addr) String() string {
	switch {
	case a.Name != "":
		return a.Name
	case a.Chip >= 0:
		return "gpiochip" + strconv.Itoa(a.Chip) + ":" + strconv.Itoa(a.Offset)
	}
	return strconv.Itoa(a.Offset)
}

// Host opens GPIO lines through one backend, chosen once.
type Host struct {
	backend Backend
	reason  string
	sysfs   string
	log     *slog.Logger
	opened  map[string]bool
}

// OpenOut opens a line as an output already driving initial. With sysfs
// the switch to output and the level are one write, so the line never
// glitches; with the character device periph first drives the line low for
// microseconds, so OpenOut does it once, here, at startup, and logs it when
// the safe level is high.
func (h *Host) OpenOut(addr string, initial gpio.Level) (gpio.PinIO, error) {
	p, err := h.open(addr)
	if err != nil {
		return nil, err
	}
	if h.backend == Chardev && initial == gpio.High {
		h.log.Warn("gpio: chardev output is driven low for a few microseconds before going high (periph gpioioctl); use gpio = \"sysfs\" if the chip reacts to that", "line", addr)
	}
	if err := p.Out(initial); err != nil {
		return nil, fmt.Errorf("gpio %s: drive %v: %w", addr, initial, err)
	}
	return p, nil
}

// OpenIn opens a line as an input without edge detection; the card-detect
// watcher enables edges itself.
func (h *Host) OpenIn(addr string) (gpio.PinIO, error) {
	p, err := h.open(addr)
	if err != nil {
		return nil, err
	}
	if err := p.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
		return nil, fmt.Errorf("gpio %s: set input: %w", addr, err)
	}
	return p, nil
}

func (h *Host) open(addr string) (gpio.PinIO, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	key := a.String()
	if h.opened[key] {
		return nil, fmt.Errorf("gpio %s: line used twice in the configuration", addr)
	}
	var p gpio.PinIO
	switch h.backend {
	case Sysfs:
		p, err = openSysfs(h.sysfs, a)
	default:
		p, err = openChardev(a)
	}
	if err != nil {
		return nil, err
	}
	h.opened[key] = true
	return p, nil
}

// Backend returns the backend in use.
func (h *Host) Backend() Backend { return h.backend }

// Reason returns why the backend was chosen, as logged.
func (h *Host) Reason() string { return h.reason }
