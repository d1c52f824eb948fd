package config

import (
	"fmt"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/hal/slot"
	"slices"
	"strings"
)

// Reader is one card reader: a slot with a card, a simulated card, or a
// constant-CW file. Its keys are OSCam's oscam.server [reader] keys where
// OSCam has them.
type Reader struct {
	Label    string `toml:"label" comment:"unique name of the reader (OSCam: label)"`
	Enable   bool   `toml:"enable" comment:"use this reader (OSCam: enable)"`
	Protocol string `toml:"protocol" comment:"internal (receiver slot: /dev/sciN of the kernel smartcard driver, or UART and GPIO lines), mouse (Phoenix/Smartmouse serial reader), pcsc (any PC/SC reader through pcscd; device = reader name or index), constcw (control words from a file) or sim (simulated card, demo and tests)"`
	System   string `toml:"system" comment:"sim readers: the simulated card system, conax, seca, griffin or dgcrypt (test data only); empty = taken from the label's prefix"`
	Local    bool   `toml:"local" comment:"count as a local card for preferlocalcards even if not a physical slot (internal, mouse and pcsc readers always are)"`
	PIN      string `toml:"pin" secret:"true" comment:"Conax parental PIN, four digits, sent when the card refuses an ECM for parental control (OSCam: pincode); empty sends none"`

	slot.Config
	balancer.ReaderConfig
	cardreader.Options
}

// IsLocal reports whether the reader counts as a local card for the balancer.
func (r *Reader) IsLocal() bool {
	return r.Local || r.Protocol == "internal" || r.Protocol == "mouse" || r.Protocol == "pcsc"
}

// SystemOptions returns the card-system settings of the reader.
func (r *Reader) SystemOptions() system.Options {
	return system.Options{Policy: r.CWPolicy(), PIN: r.PIN}
}

// Protocols are the accepted reader protocols.
var Protocols = []string{"internal", "mouse", "pcsc", "constcw", "sim"}

// SimSystems are the card systems a sim reader can simulate.
var SimSystems = []string{"conax", "seca", "griffin", "dgcrypt"}

// DefaultReader returns the defaults of a [[reader]] table.
func DefaultReader() Reader {
	return Reader{Enable: true, ReaderConfig: balancer.DefaultReaderConfig(), Options: cardreader.DefaultOptions(), Config: slot.DefaultConfig()}
}

// Validate reports every problem of one [[reader]] table.
func (r *Reader) Validate(report func(key, msg string)) {
	if !IsLabel(r.Label) {
		report("label", fmt.Sprintf("%q must be 1-32 letters, digits, '_', '.' or '-'", r.Label))
	}
	ok := false
	for _, p := range Protocols {
		ok = ok || p == r.Protocol
	}
	if r.System != "" && !slices.Contains(SimSystems, r.System) {
		report("system", fmt.Sprintf("%q is not one of %s", r.System, strings.Join(SimSystems, ", ")))
	}
	if r.System != "" && r.Protocol != "sim" {
		report("system", "only sim readers take a system; real cards are identified from their ATR")
	}
	if r.PIN != "" && !isPIN(r.PIN) {
		report("pin", "must be four digits (or empty for none)")
	}
	r.Config.Protocol = r.Protocol // the slot's wiring is the reader's protocol
	if r.Enable {
		// A disabled reader may be a slot still to be described.
		r.Config.Validate(report)
	}
	r.ReaderConfig.Validate(report)
	r.Options.Validate(report)
	if !ok {
		report("protocol", fmt.Sprintf("%q is not one of %s", r.Protocol, strings.Join(Protocols, ", ")))
	}
	if r.Protocol == "sim" && !SimInBuild {
		report("protocol", fmt.Sprintf("%q: %v", r.Protocol, ErrNotInBuild))
	}
	if r.Protocol == "pcsc" && strings.HasPrefix(r.Device, "/") {
		report("device", fmt.Sprintf("%q: a pcsc reader's device is the reader's name or index in pcscd's list (e.g. 0), not a path", r.Device))
	}
}
