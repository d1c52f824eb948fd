package cardreader

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
)

// Transport is an activated card as an APDU channel. There are two kinds:
// satd's own ISO 7816 engines (activation, PPS, T=0 and T=1) over a
// hal.Slot, and a reader that runs activation and the transmission protocol
// itself and exchanges whole APDUs (a CCID reader behind pcscd). The reader
// lifecycle and the card systems (through Card and Transmit) talk only to a
// Transport, so they run unchanged over either.
type Transport interface {
	// ATR is the card's answer to reset.
	ATR() *iso7816.ATR
	// Transmit sends a command APDU and writes the response data followed
	// by SW1 SW2 into resp, returning its length. A card pulled out fails
	// with an error wrapping hal.ErrNoCard.
	Transmit(cmd, resp []byte) (int, error)
	// Link describes the transmission parameters in force.
	Link() LinkInfo
}

// LinkInfo is what a Transport reports about its link for the status page.
type LinkInfo struct {
	Protocol int          // T=0 or T=1
	FIDI     iso7816.FIDI // speed in force (iso7816.DefaultFIDI when unknown)
	Baud     int          // character rate; 0 when the reader does not say
	F, D     int          // clock rate conversion and baud rate adjustment
	// Convention is "direct" or "inverse"; empty when the reader hides it.
	Convention string
	// ATRNote says what was wrong with an ATR accepted leniently.
	ATRNote string
}

// APDUSlot is a slot whose reader activates the card and runs the
// transmission protocol itself, so satd exchanges whole APDUs with it (a
// PC/SC reader). NewAPDU runs the reader lifecycle over it.
type APDUSlot interface {
	// Name is the slot's configured name, used in logs and errors.
	Name() string
	// Present reports whether a card is in the reader.
	Present() (bool, error)
	// Events delivers card insertions and removals.
	Events() <-chan hal.Event
	// Connect powers the card up (ColdReset) or resets a connected card
	// (WarmReset) and returns its transport. An absent card fails with an
	// error wrapping hal.ErrNoCard.
	Connect(ctx context.Context, kind hal.ResetKind) (Transport, error)
	// Deactivate releases and powers down the card.
	Deactivate(ctx context.Context) error
}

// driver is what the reader lifecycle drives: a hal.Slot with satd's ISO
// 7816 engines on top (isoDriver) or an APDUSlot (apduDriver).
type driver interface {
	Name() string
	Present() (bool, error)
	Events() <-chan hal.Event
	Deactivate(ctx context.Context) error
	// activate resets the card and returns its transport; noPPS keeps the
	// default speed.
	activate(ctx context.Context, r *Reader, kind hal.ResetKind, noPPS bool) (Transport, error)
}

// isoDriver runs satd's ISO 7816 engines over a hal.Slot.
type isoDriver struct{ hal.Slot }

func (d isoDriver) activate(ctx context.Context, r *Reader, kind hal.ResetKind, noPPS bool) (Transport, error) {
	a := activator{slot: d.Slot, opts: r.opts, removed: &r.removed, counters: &r.counters, stage: r.setState, edc: &r.edc}
	s, err := a.activate(ctx, kind, noPPS)
	if err != nil {
		return nil, err
	}
	if w, ok := s.port.link.(hal.WorkParamsSetter); ok {
		if err := w.SetWorkParams(s.workParams()); err != nil {
			return nil, fmt.Errorf("set work parameters: %w", err)
		}
	}
	return s, nil
}

// workParams are the negotiated parameters in elementary time units
// (ISO 7816-3 §10.2, §11.4): WWT = 960·D·WI, CWT = 11 + 2^CWI,
// BWT = 11 + 2^BWI·960·372·D/F.
func (s *session) workParams() hal.WorkParams {
	f, d := s.timing.F, s.timing.D
	if f <= 0 || d <= 0 {
		f, d = 372, 1
	}
	wi := s.atr.WI
	if wi <= 0 {
		wi = 10
	}
	return hal.WorkParams{
		Protocol: s.protocol, F: f, D: d,
		WWT: 960 * d * wi,
		CWT: 11 + 1<<(s.atr.CWI&15),
		BWT: 11 + (1<<(s.atr.BWI&15))*960*372*d/f,
		EGT: s.atr.N, // the driver takes N itself (255 = minimum guard time)
		CRC: s.atr.EDC == iso7816.EDCCRC,
	}
}

// Compile-time checks of the two transports.
var (
	_ Transport = (*session)(nil)
	_ Transport = (*apduSession)(nil)
)

// ATR returns the card's answer to reset.
func (s *session) ATR() *iso7816.ATR { return s.atr }

// Transmit runs one APDU through the negotiated protocol engine.
func (s *session) Transmit(cmd, resp []byte) (int, error) { return s.transmit(cmd, resp) }

// Link returns the negotiated parameters.
func (s *session) Link() LinkInfo {
	return LinkInfo{
		Protocol: s.protocol, FIDI: s.fidi, Baud: s.port.link.Config().Baud,
		F: s.timing.F, D: s.timing.D, Convention: s.atr.Convention.String(),
		ATRNote: s.atrNote,
	}
}

// apduDriver runs an APDUSlot.
type apduDriver struct{ APDUSlot }

func (d apduDriver) activate(ctx context.Context, r *Reader, kind hal.ResetKind, _ bool) (Transport, error) {
	if kind == hal.WarmReset {
		r.counters.WarmResets.Add(1)
	} else {
		r.counters.ColdResets.Add(1)
	}
	r.setState(StateATR)
	t, err := d.Connect(ctx, kind)
	if err != nil {
		if errors.Is(err, hal.ErrNoCard) {
			return nil, ErrCardRemoved
		}
		return nil, err
	}
	return &apduSession{t: t, removed: &r.removed}, nil
}

// apduSession maps an APDU reader's removal errors to ErrCardRemoved, as the
// ISO engines do, so the lifecycle treats both alike.
type apduSession struct {
	t       Transport
	removed *atomic.Bool
}

func (s *apduSession) ATR() *iso7816.ATR { return s.t.ATR() }
func (s *apduSession) Link() LinkInfo    { return s.t.Link() }

func (s *apduSession) Transmit(cmd, resp []byte) (int, error) {
	if s.removed.Load() {
		return 0, ErrCardRemoved
	}
	n, err := s.t.Transmit(cmd, resp)
	if err != nil && (errors.Is(err, hal.ErrNoCard) || s.removed.Load()) {
		return 0, ErrCardRemoved
	}
	return n, err
}
