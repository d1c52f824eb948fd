package pins

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3/gpioioctl"

	"satd.dev/satd/hal/sysfsgpio"
)

// env is what backend selection looks at; tests replace it.
type env struct {
	release   string
	arch      string
	chips     []string
	sysfsRoot string
	// initChardev loads periph's gpioioctl driver.
	initChardev func() error
}

func realEnv() env {
	var u unix.Utsname
	rel := "unknown"
	if unix.Uname(&u) == nil {
		rel = unix.ByteSliceToString(u.Release[:])
	}
	chips, _ := filepath.Glob("/dev/gpiochip*")
	return env{release: rel, arch: runtime.GOARCH, chips: chips, sysfsRoot: sysfsgpio.DefaultRoot, initChardev: initPeriph}
}

var periphOnce struct {
	sync.Once
	err error
}

func initPeriph() error {
	periphOnce.Do(func() {
		if _, err := driverreg.Init(); err != nil {
			periphOnce.err = err
			return
		}
		if len(gpioioctl.Chips) == 0 {
			periphOnce.err = errors.New("periph gpioioctl loaded no chip")
		}
	})
	return periphOnce.err
}

// NewHost chooses the backend (b may be Auto or empty) and logs one line
// saying which one is in use and why. log nil means slog.Default().
func NewHost(b Backend, log *slog.Logger) (*Host, error) {
	return newHost(b, realEnv(), log)
}

func newHost(b Backend, e env, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.Default()
	}
	if !b.Valid() {
		return nil, fmt.Errorf("gpio backend %q: want auto, chardev or sysfs", b)
	}
	h := &Host{sysfs: e.sysfsRoot, log: log, opened: map[string]bool{}}
	switch b {
	case Chardev:
		if err := e.initChardev(); err != nil {
			return nil, fmt.Errorf("gpio backend chardev: %w", err)
		}
		h.backend, h.reason = Chardev, "configured"
	case Sysfs:
		h.backend, h.reason = Sysfs, "configured"
	default:
		h.backend, h.reason = choose(e)
	}
	if h.backend == Sysfs {
		if _, err := os.Stat(filepath.Join(e.sysfsRoot, "export")); err != nil {
			return nil, fmt.Errorf("no usable GPIO backend (%s), and sysfs GPIO is missing: %w", h.reason, err)
		}
	}
	log.Info("gpio backend selected", "backend", string(h.backend), "reason", h.reason, "kernel", e.release)
	return h, nil
}

// choose picks the backend for Auto and says why.
func choose(e env) (Backend, string) {
	maj, min, ok := kernelVersion(e.release)
	switch {
	case !ok:
		return Sysfs, "kernel release " + strconv.Quote(e.release) + " not understood"
	case maj < 5 || maj == 5 && min < 10:
		return Sysfs, fmt.Sprintf("kernel %d.%d < 5.10 has no usable GPIO v2 character device", maj, min)
	case len(e.chips) == 0:
		return Sysfs, "no /dev/gpiochip* device"
	case strings.HasPrefix(e.arch, "mips"):
		return Sysfs, "periph gpioioctl encodes ioctl numbers wrongly on MIPS"
	}
	if err := e.initChardev(); err != nil {
		return Sysfs, "gpiochip unusable: " + err.Error()
	}
	return Chardev, fmt.Sprintf("kernel %d.%d with %d gpiochip device(s)", maj, min, len(e.chips))
}

// kernelVersion parses "4.9.0-xyz" into 4, 9.
func kernelVersion(rel string) (major, minor int, ok bool) {
	f := strings.FieldsFunc(rel, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(f[0])
	minor, err2 := strconv.Atoi(f[1])
	return major, minor, err1 == nil && err2 == nil
}

func openSysfs(root string, a Addr) (gpio.PinIO, error) {
	if a.Chip >= 0 || a.Name != "" {
		return nil, fmt.Errorf("gpio %s: the sysfs backend needs a global line number (see /sys/class/gpio/gpiochip*/base)", a)
	}
	p, err := sysfsgpio.Open(root, a.Offset)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func openChardev(a Addr) (gpio.PinIO, error) {
	if a.Name != "" {
		p := gpioreg.ByName(a.Name)
		if p == nil {
			return nil, fmt.Errorf("gpio %s: no line with that name", a)
		}
		return wrapIoctl(p), nil
	}
	if a.Chip < 0 {
		return nil, fmt.Errorf("gpio %s: the chardev backend needs gpiochipN:offset or a line name", a)
	}
	want := "gpiochip" + strconv.Itoa(a.Chip)
	for _, c := range gpioioctl.Chips {
		if c.Name() != want {
			continue
		}
		if a.Offset >= c.LineCount() {
			return nil, fmt.Errorf("gpio %s: %s has %d lines", a, want, c.LineCount())
		}
		return wrapIoctl(c.ByNumber(a.Offset)), nil
	}
	return nil, fmt.Errorf("gpio %s: no chip %s", a, want)
}

// NewSysfsHost returns a Host using the sysfs backend rooted at root (a
// fake tree in tests, or a non-standard mount).
func NewSysfsHost(root string, log *slog.Logger) (*Host, error) {
	e := realEnv()
	e.sysfsRoot = root
	return newHost(Sysfs, e, log)
}
