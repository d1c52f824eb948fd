package main

import (
	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/system"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/hal/slot"
)

// newSlotSource opens the receiver slot (kernel smartcard device or UART
// and GPIO lines) or serial reader of an internal or mouse reader and puts
// the ISO 7816 stack with every card system on it. A
// slot that cannot be opened (no such device, GPIO line busy) leaves the
// reader absent with the reason, rather than stopping the daemon.
func newSlotSource(e env, r config.Reader) (readerSource, error) {
	sc := r.Config
	sc.Protocol = r.Protocol
	s, err := slot.OpenAny(r.Label, sc, e.log)
	if err != nil {
		e.log.Error("reader slot cannot be opened; the reader stays absent", "reader", r.Label, "err", err)
		return noSlotSource{why: err.Error()}, nil
	}
	systems := system.New(r.SystemOptions())
	rd, err := cardreader.New(s, r.Options, system.CardSystems(systems)...)
	if err != nil {
		s.Close()
		return nil, err
	}
	src := newCardSource(rd, systems)
	src.closeSlot = func() { s.Close() }
	return src, nil
}
