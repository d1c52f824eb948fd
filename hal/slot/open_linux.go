package slot

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal/pins"
	"satd.dev/satd/hal/uart"
)

// Open opens the slot described by c, which the caller has validated: it
// opens the serial device, opens the GPIO lines (internal) or uses the
// modem lines (mouse), drives everything idle and starts card detection.
// Close releases it all. log nil means slog.Default().
func Open(name string, c Config, log *slog.Logger) (*Slot, error) {
	return open(name, c, log, func() (*pins.Host, error) { return pins.NewHost(pins.Backend(c.GPIO), log) })
}

func open(name string, c Config, log *slog.Logger, newHost func() (*pins.Host, error)) (*Slot, error) {
	if c.Protocol != "internal" && c.Protocol != "mouse" {
		return nil, fmt.Errorf("slot %s: protocol %q has no card slot (want internal or mouse)", name, c.Protocol)
	}
	var problems []string
	c.Validate(func(k, msg string) { problems = append(problems, k+": "+msg) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("slot %s: %s", name, strings.Join(problems, "; "))
	}
	b, _ := c.board()
	if c.Device == "" {
		c.Device = b.Device
	}
	c.Chip = c.chip()
	tm, err := c.timing()
	if err != nil {
		return nil, err
	}
	port, err := uart.Open(c.Device)
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", name, err)
	}
	o := Options{Name: name, ClockHz: c.ClockHz(), Timing: tm, Echo: c.echoMode(), Voltage: c.voltage(), ClkDiv: c.ClkDiv}
	if c.Protocol == "mouse" {
		o.Lines = mouseLines(c, port)
	} else {
		host, err := newHost()
		if err == nil {
			o.Lines, err = internalLines(c, host)
		}
		if err != nil {
			port.Close()
			return nil, fmt.Errorf("slot %s: %w", name, err)
		}
	}
	s, err := New(o, port)
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("slot %s on %s: %w", name, c.Device, err)
	}
	return s, nil
}

// mouseLines maps reset and detect to modem lines. Reset "rts" means RTS
// asserted holds the card in reset, so RST high (released) is RTS clear.
func mouseLines(c Config, port modemPort) Lines {
	rbit, rinv, _ := modemBit(c.Reset, false)
	l := Lines{RST: Line{Pin: &modemPin{port: port, bit: rbit, name: modemNames[rbit]}, Invert: !rinv}}
	if dbit, dinv, _ := modemBit(c.Detect, true); dbit != 0 {
		l.Detect = Line{Pin: &modemPin{port: port, bit: dbit, name: modemNames[dbit]}, Invert: dinv}
	}
	return l
}

// internalLines opens the GPIO lines in their idle levels. A leading "!"
// in an address means an inverter between SoC and chip; CMDVCC is active
// low at the chip, so its Line is inverted unless the board inverts it.
func internalLines(c Config, host *pins.Host) (Lines, error) {
	p := c.resolvedPins()
	var l Lines
	var errs []error
	out := func(addr string, chipActiveLow, idle bool) Line {
		if addr == "" {
			return Line{}
		}
		bang := strings.HasPrefix(addr, "!")
		line := Line{Invert: bang != chipActiveLow}
		pin, err := host.OpenOut(strings.TrimPrefix(addr, "!"), gpio.Level(idle != line.Invert))
		if err != nil {
			errs = append(errs, err)
			return Line{}
		}
		line.Pin = pin
		return line
	}
	div := clkDivLevels[c.ClkDiv]
	l.VCC = out(p.CMDVCC, true, false)
	l.RST = out(p.RST, false, false)
	l.VSel = out(p.VSel, false, c.Voltage == "5")
	if c.ClkDiv != 0 {
		l.ClkDiv1 = out(p.ClkDiv1, false, div[0])
		l.ClkDiv2 = out(p.ClkDiv2, false, div[1])
	}
	in, err := host.OpenIn(strings.TrimPrefix(p.OFF, "!"))
	if err != nil {
		errs = append(errs, err)
	}
	l.Detect = Line{Pin: in, Invert: strings.HasPrefix(p.OFF, "!")}
	if len(errs) > 0 {
		closeLines(l)
		return Lines{}, errors.Join(errs...)
	}
	return l, nil
}
