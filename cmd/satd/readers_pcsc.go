package main

import (
	"os"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/pcsc"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cmd/satd/config"
)

// newPCSCSource follows a PC/SC reader through pcscd and runs every card
// system on it over APDUs. device selects the reader by name or index
// (empty = the first); pcscd's socket is the one libpcsclite uses
// (PCSCLITE_CSOCK_NAME, else /run/pcscd/pcscd.comm). A missing daemon or
// reader leaves the reader absent until it appears.
func newPCSCSource(e env, r config.Reader) (readerSource, error) {
	sel := r.Device
	if sel == "" {
		sel = "0"
	}
	s := pcsc.Open(r.Label, pcsc.Config{Socket: os.Getenv("PCSCLITE_CSOCK_NAME"), Reader: sel})
	systems := system.All()
	rd, err := cardreader.NewAPDU(s, r.Options, system.CardSystems(systems)...)
	if err != nil {
		s.Close()
		return nil, err
	}
	e.log.Info("pcsc reader", "reader", r.Label, "device", sel)
	src := newCardSource(rd, systems)
	src.closeSlot = func() { s.Close() }
	src.slotErr = s.Err
	return src, nil
}
