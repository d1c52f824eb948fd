package config

import (
	"fmt"

	"satd.dev/satd/hal/slot"
)

// Board is a [[board]] table: the slot wiring of a receiver model, named
// once and used by readers with board = "name" (their own device, chip and
// pins.* entries override it).
type Board struct {
	Name   string      `toml:"name" comment:"profile name that readers give in their board key, e.g. the receiver model"`
	Chip   string      `toml:"chip" comment:"interface chip of the slots: tda8024 or tda8035; empty = tda8024"`
	Device string      `toml:"device" comment:"serial device of the card I/O line when all slots of the board share one"`
	Pins   slot.PinMap `toml:"pins" comment:"GPIO lines of the slot (a reader's pins.* entries override single lines)"`
	// Boards of the kernel smartcard driver (/dev/sciN) need no pins.
	SCIIoctl string `toml:"sci_ioctl" comment:"slots of the kernel smartcard driver (/dev/sciN): ioctl variant, s (modern drivers) or 0x64 (older boxes); empty = not an sci board"`
	SCIClock string `toml:"sci_clock" comment:"sci boards: what the driver's fs parameter is, mhz (card clock in MHz) or pll (divider of the 27 MHz system clock)"`
}

// Validate reports every problem of one [[board]] table.
func (b *Board) Validate(report func(key, msg string)) {
	if !IsLabel(b.Name) {
		report("name", fmt.Sprintf("%q must be 1-32 letters, digits, '_', '.' or '-'", b.Name))
	}
	if _, builtIn := slot.Boards[b.Name]; builtIn {
		report("name", fmt.Sprintf("%q is a built-in board profile; choose another name", b.Name))
	}
	b.profile().Validate(report)
}

func (b *Board) profile() slot.Board {
	return slot.Board{Chip: b.Chip, Device: b.Device, Pins: b.Pins, SCIIoctl: b.SCIIoctl, SCIClock: b.SCIClock}
}

// validateBoards checks the [[board]] tables and hands each reader the
// profile its board key names.
func (c *Config) validateBoards(rep reporter) {
	names := map[string]int{}
	for i := range c.Boards {
		prefix := fmt.Sprintf("board[%d]", i)
		c.Boards[i].Validate(rep.section(prefix))
		if j, dup := names[c.Boards[i].Name]; dup {
			rep.section(prefix)("name", fmt.Sprintf("%q is already the name of board[%d]", c.Boards[i].Name, j))
			continue
		}
		names[c.Boards[i].Name] = i
	}
	for i := range c.Readers {
		r := &c.Readers[i]
		r.Profile = slot.Board{}
		if j, ok := names[r.Board]; ok && r.Board != "" {
			r.Profile = c.Boards[j].profile()
		}
	}
}
