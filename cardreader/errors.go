// Package cardreader turns a hal slot into a card that answers APDUs: ISO
// 7816-3 activation (ATR, convention, PPS), the T=0 and T=1 transmission
// protocols with their timing and error recovery, and a per-slot reader
// lifecycle that reactivates cards with capped exponential backoff.
//
// Pure encodings live in cardreader/iso7816 and cardreader/t1; the card
// simulator used by tests and demo mode lives in cardreader/cardsim.
//
// Use:
//
//	r, err := cardreader.New(slot, opts, systems...) // opts: DefaultOptions, then TOML
//	go r.Run(ctx)                                    // lifecycle until ctx ends
//	n, err := r.Transmit(cmd, resp)                  // APDU when r.State() == StateReady
//	st := r.Stats()                                  // snapshot for web and metrics
//
// A reader whose hardware runs the transmission protocol itself (PC/SC) is
// an APDUSlot, run with NewAPDU: the lifecycle and the card systems see the
// same Card and Transmit either way (see Transport).
//
// Transmit fails with ErrNotReady unless the card is ready and with
// ErrCardRemoved when the card is pulled out mid-command; WaitState and
// Changed let callers follow state changes.
package cardreader

import (
	"errors"
	"fmt"

	"satd.dev/satd/hal"
)

// Errors callers branch on.
var (
	// ErrCardRemoved aborts a command whose card was pulled out; it also
	// matches hal.ErrNoCard.
	ErrCardRemoved = fmt.Errorf("cardreader: card removed during command: %w", hal.ErrNoCard)
	// ErrMute reports a card that did not answer within the waiting time.
	ErrMute = errors.New("cardreader: card did not answer in time")
	// ErrProtocol reports a card answer that breaks the transmission
	// protocol (unknown procedure byte, invalid block, …).
	ErrProtocol = errors.New("cardreader: protocol error")
	// ErrT1Dead reports a T=1 card that did not recover through
	// retransmission and S(RESYNCH); the reader resets it.
	ErrT1Dead = errors.New("cardreader: T=1 link not recoverable")
	// ErrAborted reports a chain the card aborted with S(ABORT).
	ErrAborted = errors.New("cardreader: card aborted the chain")
	// ErrNotReady reports a command sent to a reader without a ready card.
	ErrNotReady = errors.New("cardreader: card not ready")
	// ErrAPDU reports a malformed command APDU or a response buffer that is
	// too small.
	ErrAPDU = errors.New("cardreader: bad APDU or buffer")
	// ErrNoATR reports a card that did not answer the reset.
	ErrNoATR = errors.New("cardreader: no answer to reset")
	// ErrResetRequested reports that a card system asked for a warm reset
	// because the card's answers show it hangs (RequestReset).
	ErrResetRequested = errors.New("cardreader: card system asked for a card reset")
	// ErrUnknownCard reports that no card system recognised the card.
	ErrUnknownCard = errors.New("cardreader: no card system recognised the card")
)
