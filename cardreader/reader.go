package cardreader

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
)

// State is a reader's lifecycle state.
type State uint8

// Lifecycle states, in the order a card goes through them.
const (
	StateAbsent     State = iota // no card in the slot
	StateActivating              // resetting the card
	StateATR                     // reading the answer to reset
	StatePPS                     // negotiating protocol and speed
	StateIdentify                // asking the card systems who the card is
	StateInit                    // card-system initialisation
	StateReady                   // answering APDUs
	StateFault                   // deactivated, waiting to retry
	StateStopped                 // Run has returned
)

var stateNames = [...]string{"absent", "activating", "atr", "pps", "identify", "init", "ready", "fault", "stopped"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state?"
}

// MarshalText encodes the state name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Card is the APDU channel a card system uses during identification and
// initialisation.
type Card interface {
	ATR() *iso7816.ATR
	// Transmit sends a command APDU and writes data and SW1 SW2 into resp.
	Transmit(cmd, resp []byte) (int, error)
}

// CardSystem is a card-system personality (cardreader/system/...): it
// recognises its cards and initialises them once the link is up.
type CardSystem interface {
	Name() string
	// Identify reports whether the card belongs to this system; it may send
	// APDUs.
	Identify(ctx context.Context, c Card) (bool, error)
	// Init runs the system's start-up exchange (serial numbers, …).
	Init(ctx context.Context, c Card) error
}

// T1Quirks are departures from ISO 7816-3 T=1 that the cards of one card
// system are known to need.
type T1Quirks struct {
	// ZeroNS sends every I-block with N(S) = 0 and does not check the
	// card's N(S) (DGCrypt cards work this way).
	ZeroNS bool
}

// T1Quirker is implemented by card systems whose cards need T1Quirks. The
// reader applies them to a T=1 card once Identify accepted it, before Init.
type T1Quirker interface {
	T1Quirks() T1Quirks
}

// Stats is a snapshot of a reader for the web form and metrics.
type Stats struct {
	Name       string    `json:"name"`
	State      State     `json:"state"`
	Since      time.Time `json:"since"`
	ATR        string    `json:"atr,omitempty"`
	Protocol   int       `json:"protocol"`
	Baud       int       `json:"baud"`
	ClockHz    int       `json:"clock_hz"`
	F          int       `json:"f"`
	D          int       `json:"d"`
	Convention string    `json:"convention,omitempty"`
	// ATRNote says what was wrong with an ATR accepted leniently (cut
	// short by a gap, bad TCK, …).
	ATRNote  string `json:"atr_note,omitempty"`
	System   string `json:"system,omitempty"`
	Defaults bool   `json:"default_speed_fallback"`

	Exchanges   uint64 `json:"exchanges"`
	Errors      uint64 `json:"errors"`
	ColdResets  uint64 `json:"cold_resets"`
	WarmResets  uint64 `json:"warm_resets"`
	Removals    uint64 `json:"removals"`
	Retransmits uint64 `json:"t1_retransmits"`
	Resynchs    uint64 `json:"t1_resynchs"`
	WTX         uint64 `json:"t1_wtx"`
	PPSFailures uint64 `json:"pps_failures"`
	IFSRefused  uint64 `json:"t1_ifs_refused"`
	Faults      uint64 `json:"faults"`
	// CardResets counts the warm resets card systems asked for
	// (RequestReset), each followed by a new card-system init.
	CardResets uint64 `json:"card_resets"`

	// LastError is the last error with its cause chain; LastErrorState is
	// the state it happened in.
	LastError      string    `json:"last_error,omitempty"`
	LastErrorState State     `json:"last_error_state"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}

// Reader runs the lifecycle of one slot: absent → activating → ATR → PPS →
// identify → init → ready, and fault with capped exponential backoff.
// Create it with New, run Run in a goroutine, send APDUs with Transmit.
type Reader struct {
	dev     driver
	opts    Options
	systems []CardSystem

	removed  atomic.Bool
	resetReq atomic.Bool // a card system asked for a reset not yet done
	state    atomic.Uint32
	counters Counters
	wake     chan struct{} // card-detect edges
	faults   chan error    // errors from Transmit that need a reset

	// cardSem serialises use of the card. A channel rather than a mutex:
	// waiting on it is durable for testing/synctest bubbles.
	cardSem chan struct{}
	sess    Transport // the activated card, nil when none
	consec  int       // consecutive soft command errors
	edc     edcMemo   // T=1 CRC variant that worked for the card

	mu       sync.Mutex // guards the fields below
	stats    Stats
	changed  chan struct{} // closed and replaced on every state change
	defaults bool          // stay at default speed for this card
}

// New returns a reader for slot. Card systems are tried in order during
// identification; without any the card is ready after activation.
func New(slot hal.Slot, opts Options, systems ...CardSystem) (*Reader, error) {
	r, err := newReader(isoDriver{slot}, opts, systems)
	if err != nil {
		return nil, err
	}
	r.stats.ClockHz = slot.ClockHz()
	return r, nil
}

// NewAPDU returns a reader for a slot whose reader runs the transmission
// protocol itself (PC/SC). The lifecycle and the card systems are the same
// as with New; the ISO 7816 options that concern activation, PPS and the
// T=0/T=1 engines do not apply.
func NewAPDU(slot APDUSlot, opts Options, systems ...CardSystem) (*Reader, error) {
	return newReader(apduDriver{slot}, opts, systems)
}

func newReader(dev driver, opts Options, systems []CardSystem) (*Reader, error) {
	var problems []string
	opts.Validate(func(key, msg string) { problems = append(problems, key+": "+msg) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("reader %s: %s", dev.Name(), strings.Join(problems, "; "))
	}
	r := &Reader{
		dev: dev, opts: opts, systems: systems,
		wake: make(chan struct{}, 1), faults: make(chan error, 1), changed: make(chan struct{}),
		cardSem: make(chan struct{}, 1),
	}
	r.stats.Name = dev.Name()
	r.stats.Since = time.Now()
	return r, nil
}

// Name returns the slot name.
func (r *Reader) Name() string { return r.dev.Name() }

// State returns the current state.
func (r *Reader) State() State { return State(r.state.Load()) }

// Stats returns a snapshot of the reader.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	s := r.stats
	r.mu.Unlock()
	c := &r.counters
	s.Exchanges, s.Errors = c.Exchanges.Load(), c.Errors.Load()
	s.ColdResets, s.WarmResets, s.Removals = c.ColdResets.Load(), c.WarmResets.Load(), c.Removals.Load()
	s.Retransmits, s.Resynchs, s.WTX = c.Retransmits.Load(), c.Resynchs.Load(), c.WTX.Load()
	s.PPSFailures, s.Faults = c.PPSFailures.Load(), c.Faults.Load()
	s.IFSRefused = c.IFSRefusals.Load()
	s.CardResets = c.CardResets.Load()
	// The state is read after the counters: a reset is counted after the
	// reader left Ready (bringUp), so a snapshot that shows the count
	// raised and Ready shows the Ready that came after that reset.
	s.State = r.State()
	return s
}

// Changed returns a channel closed at the next state change.
func (r *Reader) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// WaitState blocks until the reader is in state s or ctx ends.
func (r *Reader) WaitState(ctx context.Context, s State) error {
	for {
		ch := r.Changed()
		if r.State() == s {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("reader %s: waiting for %s in state %s: %w", r.Name(), s, r.State(), ctx.Err())
		}
	}
}

func (r *Reader) setState(s State) {
	r.mu.Lock()
	r.state.Store(uint32(s))
	r.stats.Since = time.Now()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *Reader) recordError(err error) {
	r.mu.Lock()
	r.stats.LastError = err.Error()
	r.stats.LastErrorState = r.State()
	r.stats.LastErrorAt = time.Now()
	r.mu.Unlock()
}

// Transmit sends a command APDU to the ready card and writes the response
// data and SW1 SW2 into resp, returning its length. It does not allocate.
// A card pulled out mid-command fails with ErrCardRemoved.
func (r *Reader) Transmit(cmd, resp []byte) (int, error) {
	if r.State() != StateReady || r.resetReq.Load() {
		return 0, ErrNotReady
	}
	r.lockCard()
	defer r.unlockCard()
	if r.State() != StateReady || r.sess == nil {
		return 0, ErrNotReady
	}
	return r.transmitLocked(cmd, resp)
}

func (r *Reader) transmitLocked(cmd, resp []byte) (int, error) {
	r.counters.Exchanges.Add(1)
	n, err := r.sess.Transmit(cmd, resp)
	if err == nil {
		r.consec = 0
		return n, nil
	}
	r.counters.Errors.Add(1)
	if r.removed.Load() {
		err = ErrCardRemoved
	}
	r.recordError(err)
	if r.needsReset(err) {
		select {
		case r.faults <- err:
		default:
		}
	}
	return 0, err
}

// needsReset decides whether a command error leaves the card in an unknown
// state: mute cards, dead T=1 links and line faults do at once, other
// protocol errors after three in a row.
func (r *Reader) needsReset(err error) bool {
	switch {
	case errors.Is(err, ErrCardRemoved), errors.Is(err, ErrAPDU), errors.Is(err, ErrAborted):
		return false
	case errors.Is(err, ErrMute), errors.Is(err, ErrT1Dead), errors.Is(err, hal.ErrFault), errors.Is(err, hal.ErrEcho),
		errors.Is(err, hal.ErrNACK): // the card still waits for the refused character
		return true
	}
	r.consec++
	return r.consec >= 3
}

// ResetRequester is implemented by the card channels handed to card
// systems (*Reader, and the Card of Identify and Init): a card system calls
// RequestReset when the card's answers show that it hangs (Conax 90 11,
// status words that make no sense).
type ResetRequester interface {
	RequestReset(reason string)
}

var _ ResetRequester = (*Reader)(nil)

// RequestReset asks the lifecycle for a warm reset of the card followed by
// a new card-system init; commands fail with ErrNotReady until the card is
// ready again. The reset is counted in Stats.CardResets and reason becomes
// the last error.
func (r *Reader) RequestReset(reason string) {
	if r.resetReq.Swap(true) {
		return // one reset at a time
	}
	select {
	case r.faults <- fmt.Errorf("%w: %s", ErrResetRequested, reason):
	default: // a fault is pending anyway: the card is reset for it
	}
}

func (r *Reader) lockCard()   { r.cardSem <- struct{}{} }
func (r *Reader) unlockCard() { <-r.cardSem }

// Run drives the lifecycle until ctx ends; it deactivates the card before
// returning ctx's error.
func (r *Reader) Run(ctx context.Context) error {
	go r.watchEvents(ctx)
	defer func() {
		r.lockCard()
		r.sess = nil
		r.unlockCard()
		r.dev.Deactivate(context.WithoutCancel(ctx))
		r.setState(StateStopped)
	}()
	backoff := time.Duration(r.opts.BackoffMin)
	for ctx.Err() == nil {
		present, err := r.dev.Present()
		if err != nil {
			return fmt.Errorf("reader %s: card detect: %w", r.Name(), err)
		}
		if !present {
			r.setState(StateAbsent)
			r.waitWake(ctx, 0)
			continue
		}
		r.removed.Store(false)
		err = r.bringUp(ctx, hal.ColdReset, nil)
		for err == nil {
			backoff = time.Duration(r.opts.BackoffMin)
			err = r.serve(ctx)
			counter := r.warmResetCounter(err)
			if ctx.Err() != nil || r.removed.Load() || counter == nil {
				break
			}
			r.recordError(err)
			err = r.bringUp(ctx, hal.WarmReset, counter)
		}
		if ctx.Err() != nil {
			break
		}
		if r.removed.Load() || errors.Is(err, ErrCardRemoved) {
			r.deactivate(ctx)
			r.setState(StateAbsent)
			continue
		}
		r.fault(ctx, err)
		r.waitWake(ctx, backoff)
		backoff = min(2*backoff, time.Duration(r.opts.BackoffMax))
	}
	return ctx.Err()
}

// warmResetCounter reports whether err from serve is answered with a warm
// reset rather than a fault by returning the counter that counts it, or
// nil.
func (r *Reader) warmResetCounter(err error) *atomic.Uint64 {
	switch {
	case errors.Is(err, ErrResetRequested):
		return &r.counters.CardResets
	case errors.Is(err, ErrT1Dead):
		// ISO 7816-3 §11.6: after failed RESYNCHs comes a warm reset.
		return &r.counters.Faults
	}
	return nil
}

// watchEvents turns card-detect edges into the removal flag and wake-ups.
func (r *Reader) watchEvents(ctx context.Context) {
	events := r.dev.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == hal.CardRemoved {
				r.removed.Store(true)
				r.counters.Removals.Add(1)
				r.mu.Lock()
				r.defaults = false
				r.mu.Unlock()
			}
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
	}
}

// waitWake waits for a card-detect edge, ctx, or d (0: no timeout).
func (r *Reader) waitWake(ctx context.Context, d time.Duration) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-timeout:
	}
}

// bringUp activates the card with a reset of kind and runs the card-system
// hooks. It adds one to counted (when not nil) once the reader has left
// Ready, so that a reader seen Ready with the count raised has come back
// from that reset rather than not yet begun it.
func (r *Reader) bringUp(ctx context.Context, kind hal.ResetKind, counted *atomic.Uint64) error {
	r.lockCard()
	defer r.unlockCard()
	r.sess = nil
	r.resetReq.Store(false)
	r.setState(StateActivating)
	if counted != nil {
		counted.Add(1)
	}
	r.mu.Lock()
	noPPS := r.defaults
	r.mu.Unlock()
	s, err := r.dev.activate(ctx, r, kind, noPPS)
	if err != nil {
		return err
	}
	r.sess = s
	r.publishSession(s)
	if err := r.identify(ctx); err != nil {
		if s.Link().FIDI != iso7816.DefaultFIDI && !r.opts.Deprecated {
			r.mu.Lock()
			r.defaults = true // next try at the default speed (OSCam's deprecated fallback)
			r.mu.Unlock()
		}
		return err
	}
	r.consec = 0
	r.setState(StateReady)
	return nil
}

// publishSession copies the negotiated parameters into the stats.
func (r *Reader) publishSession(s Transport) {
	l := s.Link()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.ATR = strings.ToUpper(hex.EncodeToString(s.ATR().Raw))
	r.stats.Protocol = l.Protocol
	r.stats.Baud = l.Baud
	r.stats.F, r.stats.D = l.F, l.D
	r.stats.Convention = l.Convention
	r.stats.ATRNote = l.ATRNote
	r.stats.Defaults = r.defaults
	r.stats.System = ""
}

// identify runs the card systems: the first that recognises the card is
// initialised.
func (r *Reader) identify(ctx context.Context) error {
	if len(r.systems) == 0 {
		return nil
	}
	if err := sleepCtx(ctx, time.Duration(r.opts.InitDelay)); err != nil {
		return err
	}
	r.setState(StateIdentify)
	c := lockedCard{r}
	for _, sys := range r.systems {
		ok, err := sys.Identify(ctx, c)
		if err != nil {
			return fmt.Errorf("identify %s: %w", sys.Name(), err)
		}
		if !ok {
			continue
		}
		if q, ok := sys.(T1Quirker); ok {
			// Quirks concern satd's own T=1 engine; an APDU reader runs its own.
			if s, iso := r.sess.(*session); iso && s.protocol == 1 {
				s.t1.zeroNS = q.T1Quirks().ZeroNS
			}
		}
		r.setState(StateInit)
		if err := sys.Init(ctx, c); err != nil {
			return fmt.Errorf("init %s: %w", sys.Name(), err)
		}
		r.mu.Lock()
		r.stats.System = sys.Name()
		r.mu.Unlock()
		return nil
	}
	return ErrUnknownCard
}

// lockedCard is the Card handed to card systems while bringUp holds the
// card.
type lockedCard struct{ r *Reader }

func (c lockedCard) ATR() *iso7816.ATR { return c.r.sess.ATR() }
func (c lockedCard) Transmit(cmd, resp []byte) (int, error) {
	return c.r.transmitLocked(cmd, resp)
}
func (c lockedCard) RequestReset(reason string) { c.r.RequestReset(reason) }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// serve waits while the card is ready, until removal, a fault reported by
// Transmit, or ctx.
func (r *Reader) serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
			if r.removed.Load() {
				return ErrCardRemoved
			}
			if ok, err := r.dev.Present(); err == nil && !ok {
				return ErrCardRemoved
			}
		case err := <-r.faults:
			return err
		}
	}
}

// fault records err, deactivates the card and enters StateFault.
func (r *Reader) fault(ctx context.Context, err error) {
	if err == nil {
		err = errors.New("unknown fault")
	}
	r.counters.Faults.Add(1)
	r.counters.Errors.Add(1)
	r.recordError(err)
	r.deactivate(ctx)
	r.setState(StateFault)
}

func (r *Reader) deactivate(ctx context.Context) {
	r.lockCard()
	r.sess = nil
	r.unlockCard()
	select { // a fault reported for the old session is moot now
	case <-r.faults:
	default:
	}
	r.dev.Deactivate(ctx)
}
