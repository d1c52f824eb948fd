package slot

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/pins"
)

// PinMap names the GPIO lines of an internal slot. Each value is a line
// address understood by pins.ParseAddr ("gpiochip0:17", "45" for sysfs, or
// a device-tree line name), with a leading "!" when the board inverts the
// signal between SoC and chip.
type PinMap struct {
	CMDVCC  string `toml:"cmdvcc" comment:"CMDVCC line of the TDA8024 (CMDVCCN on TDA8035); the chip pin is active low, a leading ! means an inverter sits in between"`
	RST     string `toml:"rst" comment:"RSTIN line (high releases the card from reset)"`
	OFF     string `toml:"off" comment:"OFF/OFFN or PRES line: high = card present while idle, falls on removal or fault while active"`
	VSel    string `toml:"vsel" comment:"5V/3V select line (high = 5 V); empty if strapped"`
	ClkDiv1 string `toml:"clkdiv1" comment:"CLKDIV1 line; empty if strapped"`
	ClkDiv2 string `toml:"clkdiv2" comment:"CLKDIV2 line; empty if strapped"`
}

// merge fills the empty fields of m from base.
func (m PinMap) merge(base PinMap) PinMap {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return PinMap{pick(m.CMDVCC, base.CMDVCC), pick(m.RST, base.RST), pick(m.OFF, base.OFF),
		pick(m.VSel, base.VSel), pick(m.ClkDiv1, base.ClkDiv1), pick(m.ClkDiv2, base.ClkDiv2)}
}

// Board is a known receiver's slot wiring.
type Board struct {
	Chip   string
	Device string
	Pins   PinMap
	// SCIIoctl marks a board whose slots belong to the kernel smartcard
	// driver (/dev/sciN) and names its ioctl variant: "s" or "0x64".
	SCIIoctl string
	// SCIClock is what the driver's fs parameter means: "mhz" (the card
	// clock in MHz) or "pll" (divider of the 27 MHz system clock).
	SCIClock string
}

// Validate reports the problems of a board profile: its chip and the
// syntax of its line addresses (which lines a slot needs is checked with
// the slot).
func (b Board) Validate(report func(key, msg string)) {
	if _, ok := chipMinActivation[b.Chip]; b.Chip != "" && !ok {
		report("chip", fmt.Sprintf("%q: want tda8024 or tda8035", b.Chip))
	}
	b.Pins.checkSyntax(report)
	b.validateSCI(report)
}

// checkSyntax reports every line address of m that does not parse.
func (m PinMap) checkSyntax(report func(key, msg string)) {
	for _, l := range m.lines() {
		if l.v == "" {
			continue
		}
		if _, err := pins.ParseAddr(strings.TrimPrefix(l.v, "!")); err != nil {
			report(l.key, err.Error())
		}
	}
}

// pinLine is one line of a PinMap with its configuration key.
type pinLine struct{ key, v string }

func (m PinMap) lines() []pinLine {
	return []pinLine{{"pins.cmdvcc", m.CMDVCC}, {"pins.rst", m.RST}, {"pins.off", m.OFF},
		{"pins.vsel", m.VSel}, {"pins.clkdiv1", m.ClkDiv1}, {"pins.clkdiv2", m.ClkDiv2}}
}

// Boards holds the built-in board profiles selectable with `board =
// "name"`: the enigma2 receiver families whose slots belong to the kernel
// smartcard driver (device, ioctl variant, meaning of fs), as OSCam's
// internal reader drives them. A reader's second slot sets device =
// "/dev/sci1". GPIO wirings are not built in: an image maintainer names a
// receiver's wiring once in a [[board]] table of the configuration
// (docs/slots.md), which the configuration layer hands over in
// Config.Profile.
var Boards = map[string]Board{
	// Vu+ (Solo, Duo, Uno, Ultimo, Zero and the 4K models).
	"vuplus": {Device: "/dev/sci0", SCIIoctl: "s", SCIClock: "mhz"},
	// Dreambox DM800/DM8000/DM7020HD/DM900/DM920: fs divides the 27 MHz
	// system clock.
	"dreambox": {Device: "/dev/sci0", SCIIoctl: "s", SCIClock: "pll"},
	// GigaBlue (Quad, UE, Trio 4K …).
	"gigablue": {Device: "/dev/sci0", SCIIoctl: "s", SCIClock: "mhz"},
	// Zgemma (H-series, i55) and other HiSilicon/Broadcom clones.
	"zgemma": {Device: "/dev/sci0", SCIIoctl: "s", SCIClock: "mhz"},
	// Octagon (SF4008, SF8008 …).
	"octagon": {Device: "/dev/sci0", SCIIoctl: "s", SCIClock: "mhz"},
}

// Config describes one slot; it is embedded flat into each [[reader]]
// table of the satd configuration, next to the reader's own options.
type Config struct {
	// Protocol is the wiring, "internal" or "mouse". It is the reader's own
	// protocol key, so the embedding table owns it: copy it here before
	// Validate and Open. Other protocols have no slot.
	Protocol       string `toml:"-"`
	Device         string `toml:"device" comment:"serial device of the card I/O line, e.g. /dev/ttyS1 or /dev/ttyUSB0"`
	Board          string `toml:"board" comment:"board profile naming the GPIO lines of a known receiver; pins.* entries override it"`
	Chip           string `toml:"chip" comment:"interface chip of an internal slot: tda8024 or tda8035; empty = the board profile's, else tda8024"`
	Detect         string `toml:"detect" comment:"mouse readers: modem line showing card presence, cd, dsr, cts, ring or none; a leading ! inverts it (OSCam)"`
	Reset          string `toml:"reset" comment:"mouse readers: modem line holding the card in reset when asserted, rts or dtr; a leading ! inverts it (Smartmouse jumper)"`
	Mhz            int    `toml:"mhz" comment:"card clock f in units of 10 kHz, as OSCam: 357 and 358 mean 3.5712 MHz and 368 3.6864 MHz (exactly 9600 baud at F=372 and F=384), others mhz x 10 kHz; sets the initial baud f/372"`
	ClkDiv         int    `toml:"clkdiv" comment:"internal slots: clock divider 1, 2, 4 or 8 set on the CLKDIV lines; 0 leaves them alone"`
	Voltage        string `toml:"voltage" comment:"card supply of an internal slot: 5 or 3 (volts)"`
	Echo           string `toml:"echo" comment:"single-wire echo: auto detects it at each cold reset, on or off force it"`
	GPIO           string `toml:"gpio" comment:"GPIO backend: auto (character device on Linux >= 5.10, else sysfs), chardev or sysfs"`
	ActivationMs   int    `toml:"activation_ms" comment:"internal slots: milliseconds from CMDVCC to RST high"`
	ResetMs        int    `toml:"reset_ms" comment:"milliseconds RST is held low for a warm reset, and for every reset of a mouse reader"`
	DeactivationMs int    `toml:"deactivation_ms" comment:"internal slots: milliseconds waited after power-off before the next activation"`
	DebounceMs     int    `toml:"debounce_ms" comment:"card-detect debounce in milliseconds"`
	PollMs         int    `toml:"poll_ms" comment:"card-detect polling period in milliseconds when the line cannot interrupt"`
	Pins           PinMap `toml:"pins" comment:"GPIO lines of an internal slot"`
	// Profile is the board named by Board when the configuration defines
	// it; the zero Board means "look Board up in Boards".
	Profile Board `toml:"-"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Protocol:       "internal",
		Detect:         "cd",
		Reset:          "rts",
		Mhz:            357,
		Voltage:        "5",
		Echo:           "auto",
		GPIO:           string(pins.Auto),
		ActivationMs:   10,
		ResetMs:        50,
		DeactivationMs: 100,
		DebounceMs:     int(pins.DefaultDebounce / time.Millisecond),
		PollMs:         int(pins.DefaultPoll / time.Millisecond),
	}
}

// chipMinActivation is the interface chip's own activation time before the
// card clock runs (spec §3.2): TDA8024 t5 ≈ 175 µs (sleep >= 1 ms), TDA8035
// 3.1 ms crystal start + 320 µs.
var chipMinActivation = map[string]time.Duration{
	"tda8024": time.Millisecond,
	"tda8035": 3500 * time.Microsecond,
}

// ClockHz returns the card clock in hertz. As in OSCam, 357/358 stand for
// the 3.5712 MHz crystal (372 x 9600) and 368 for 3.6864 MHz (384 x 9600),
// so that the default speed is exactly 9600 baud.
func (c Config) ClockHz() int {
	switch c.Mhz {
	case 357, 358:
		return 372 * 9600
	case 368:
		return 384 * 9600
	}
	return c.Mhz * 10_000
}

// board returns the profile named by Board: the configuration's own, or a
// built-in one.
func (c Config) board() (Board, bool) {
	if c.Profile != (Board{}) {
		return c.Profile, true
	}
	b, ok := Boards[c.Board]
	return b, ok
}

// chip returns the interface chip in force: the slot's own, the board's,
// or the TDA8024, the most common.
func (c Config) chip() string {
	if c.Chip != "" {
		return c.Chip
	}
	if b, _ := c.board(); b.Chip != "" {
		return b.Chip
	}
	return "tda8024"
}

// resolvedPins returns the pin map after applying the board profile.
func (c Config) resolvedPins() PinMap {
	b, _ := c.board()
	return c.Pins.merge(b.Pins)
}

// Validate reports every problem of c (keys relative to the reader table).
// It reports nothing for protocols other than internal and mouse, whose
// readers have no slot.
func (c Config) Validate(report func(key, msg string)) {
	if c.Protocol != "internal" && c.Protocol != "mouse" {
		return
	}
	b, ok := c.board()
	if c.Board != "" && !ok {
		report("board", fmt.Sprintf("unknown board %q; built in: %s; define it in a [[board]] table or describe the lines with pins.*", c.Board, knownBoards()))
	}
	if c.Device == "" && b.Device == "" {
		report("device", "missing: the serial device of the slot, e.g. /dev/ttyS1")
	}
	if c.Mhz < 100 || c.Mhz > 2000 {
		report("mhz", fmt.Sprintf("%d: the card clock must be 100..2000 (1 to 20 MHz)", c.Mhz))
	}
	if c.Echo != "auto" && c.Echo != "on" && c.Echo != "off" {
		report("echo", fmt.Sprintf("%q: want auto, on or off", c.Echo))
	}
	if !pins.Backend(c.GPIO).Valid() {
		report("gpio", fmt.Sprintf("%q: want auto, chardev or sysfs", c.GPIO))
	}
	if c.ResetMs < 1 || c.ResetMs > 1000 {
		report("reset_ms", fmt.Sprintf("%d: want 1..1000 (RST must stay low >= 400 clocks)", c.ResetMs))
	}
	if c.DebounceMs < 1 || c.DebounceMs > 500 {
		report("debounce_ms", fmt.Sprintf("%d: want 1..500", c.DebounceMs))
	}
	if c.PollMs < 5 || c.PollMs > 5000 {
		report("poll_ms", fmt.Sprintf("%d: want 5..5000", c.PollMs))
	}
	if c.SCI() {
		c.validateSCI(report)
		return
	}
	c.checkDeviceKind(report)
	if c.Protocol == "internal" {
		c.validateInternal(report)
		return
	}
	if _, _, err := modemBit(c.Detect, true); err != nil {
		report("detect", err.Error())
	}
	if _, _, err := modemBit(c.Reset, false); err != nil {
		report("reset", err.Error())
	}
}

func (c Config) validateInternal(report func(key, msg string)) {
	chip := c.chip()
	minAct, ok := chipMinActivation[chip]
	if !ok {
		report("chip", fmt.Sprintf("%q: want tda8024 or tda8035", chip))
	} else if min := minAct + 400*time.Second/time.Duration(max(c.ClockHz(), 1)); time.Duration(c.ActivationMs)*time.Millisecond < min || c.ActivationMs > 1000 {
		report("activation_ms", fmt.Sprintf("%d: want %v..1000 ms for %s (chip start-up plus 400 clocks)", c.ActivationMs, min.Round(time.Millisecond)+time.Millisecond, chip))
	}
	if c.DeactivationMs < 100 || c.DeactivationMs > 5000 {
		report("deactivation_ms", fmt.Sprintf("%d: want 100..5000 (the chip needs up to 100 ms to power down)", c.DeactivationMs))
	}
	if c.Voltage != "5" && c.Voltage != "3" {
		report("voltage", fmt.Sprintf("%q: want 5 or 3", c.Voltage))
	}
	_, needDiv := clkDivLevels[c.ClkDiv]
	if !needDiv && c.ClkDiv != 0 {
		report("clkdiv", fmt.Sprintf("%d: want 0, 1, 2, 4 or 8", c.ClkDiv))
	}
	required := map[string]bool{"pins.cmdvcc": true, "pins.rst": true, "pins.off": true, "pins.clkdiv1": needDiv, "pins.clkdiv2": needDiv}
	p := c.resolvedPins()
	for _, l := range p.lines() {
		if l.v == "" && required[l.key] {
			report(l.key, "missing: a GPIO line address such as gpiochip0:17, 45 (sysfs number) or a line name")
		}
	}
	p.checkSyntax(report)
}

func knownBoards() string {
	if len(Boards) == 0 {
		return "none yet"
	}
	var n []string
	for k := range Boards {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// timing converts the millisecond options.
func (c Config) timing() (Timing, error) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return Timing{Activation: ms(c.ActivationMs), ResetHold: ms(c.ResetMs), Deactivation: ms(c.DeactivationMs),
		Debounce: ms(c.DebounceMs), Poll: ms(c.PollMs)}, nil
}

func (c Config) echoMode() Echo {
	switch c.Echo {
	case "on":
		return EchoOn
	case "off":
		return EchoOff
	}
	return EchoAuto
}

func (c Config) voltage() hal.Voltage {
	if c.Voltage == "3" {
		return hal.Volt3
	}
	return hal.Volt5
}

// Modem status and control bits (TIOCM_*), identical on every Linux arch.
const (
	ModemDTR = 0x002
	ModemRTS = 0x004
	ModemCTS = 0x020
	ModemCD  = 0x040
	ModemRI  = 0x080
	ModemDSR = 0x100
)

// modemBit parses "[!]name" for a presence (status) or reset (control)
// line. bit 0 means none.
func modemBit(s string, status bool) (bit int, invert bool, err error) {
	invert = strings.HasPrefix(s, "!")
	name := strings.TrimPrefix(s, "!")
	names := map[string]int{"rts": ModemRTS, "dtr": ModemDTR}
	want := "rts or dtr"
	if status {
		names = map[string]int{"cd": ModemCD, "dsr": ModemDSR, "cts": ModemCTS, "ring": ModemRI, "none": 0}
		want = "cd, dsr, cts, ring or none"
	}
	bit, ok := names[name]
	if !ok {
		return 0, false, fmt.Errorf("%q: want %s, optionally preceded by !", s, want)
	}
	return bit, invert, nil
}
