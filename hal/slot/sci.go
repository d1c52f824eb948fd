package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"satd.dev/satd/hal/sci"
)

// IsSCIDevice reports whether path names a slot of the kernel smartcard
// driver (/dev/sci0, /dev/sci1, …).
func IsSCIDevice(path string) bool {
	n, ok := strings.CutPrefix(filepath.Base(path), "sci")
	if !ok || n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// device returns the slot's device: its own, else its board's.
func (c Config) device() string {
	if c.Device != "" {
		return c.Device
	}
	b, _ := c.board()
	return b.Device
}

// SCI reports whether c is a slot of the kernel smartcard driver: an
// internal reader whose device is named sciN, or whose board says so.
// Such a slot needs no GPIO lines: the driver owns the interface chip.
func (c Config) SCI() bool {
	if c.Protocol != "internal" {
		return false
	}
	b, _ := c.board()
	return b.SCIIoctl != "" || IsSCIDevice(c.device())
}

// validateSCI checks the device path and the board's sci settings.
func (c Config) validateSCI(report func(key, msg string)) {
	d := c.device()
	switch {
	case d == "":
		return // reported as missing already
	case !strings.HasPrefix(d, "/dev/") || !IsSCIDevice(d):
		report("device", fmt.Sprintf("%q is not a kernel smartcard device: internal slots of the sci driver are /dev/sci0, /dev/sci1, …", d))
		return
	}
	c.checkDeviceKind(report)
}

// checkDeviceKind refuses a device path that exists but is no character
// device (a regular file, a directory). A missing path is accepted: the
// configuration may be written for another machine.
func (c Config) checkDeviceKind(report func(key, msg string)) {
	d := c.device()
	if d == "" {
		return
	}
	fi, err := os.Stat(d)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		report("device", fmt.Sprintf("%q: %v", d, err))
	case fi.Mode()&fs.ModeCharDevice == 0:
		report("device", fmt.Sprintf("%q is a %s, not a character device: give the slot's device, e.g. /dev/sci0 or /dev/ttyUSB0", d, sci.FileKind(fi.Mode())))
	}
}

// validateSCI checks a board's sci settings.
func (b Board) validateSCI(report func(key, msg string)) {
	if _, err := sci.ParseVariant(b.SCIIoctl); err != nil {
		report("sci_ioctl", fmt.Sprintf("%q: want s (magic 's', modern drivers) or 0x64 (older boxes)", b.SCIIoctl))
	}
	if _, err := sci.ParseClock(b.SCIClock); err != nil {
		report("sci_clock", fmt.Sprintf("%q: want mhz (fs = card clock in MHz) or pll (fs = divider of the 27 MHz system clock)", b.SCIClock))
	}
	if b.SCIClock != "" && b.SCIIoctl == "" {
		report("sci_clock", "set on a board without sci_ioctl: only kernel smartcard (sci) boards have it")
	}
}

// sciConfig is the sci backend's configuration for the slot.
func (c Config) sciConfig(name string) (sci.Config, error) {
	b, _ := c.board()
	v, err := sci.ParseVariant(b.SCIIoctl)
	if err != nil {
		return sci.Config{}, err
	}
	clk, err := sci.ParseClock(b.SCIClock)
	if err != nil {
		return sci.Config{}, err
	}
	t, err := c.timing()
	if err != nil {
		return sci.Config{}, err
	}
	return sci.Config{Name: name, Variant: v, Clock: clk, ClockHz: c.ClockHz(), Poll: t.Poll}, nil
}
