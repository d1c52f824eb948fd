// Package system holds the card systems satd can serve with the subscriber's
// card alone: Conax (unpaired cards), Seca/Mediaguard 2, Griffin and
// DGCrypt. Each system recognises its cards from the ATR, reads the card's
// identity at init (CAID, provider idents, serial, subscriptions) and turns
// an ECM section into an even/odd control-word pair or a typed refusal.
//
// The commands are the ones real cards accept (the reference is OSCam's
// card readers); docs/cardsystems.md has the tables. Cards and ECMs that
// need host-side secrets (paired Conax cards, Seca 3 ECMs with nano 01,
// CWs that are still encrypted) are refused with ErrNotSupported or a
// NotSupported answer naming the reason; they are never half-served. Every
// CW pair goes through the reader's checksum policy (cardreader.CWPolicy)
// before it is Found. A card that hangs is reset through
// cardreader.ResetRequester.
//
// Use:
//
//	systems := system.New(system.Options{Policy: cardreader.FixBadCWs})
//	r, _ := cardreader.New(slot, opts, system.CardSystems(systems)...)
//	// once r is ready:
//	sys := system.ByName(systems, r.Stats().System)
//	id := sys.Identity()
//	ans, err := sys.ECM(r, ecm)                   // allocation-free after init
package system

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"satd.dev/satd/cardreader"
)

// Result is the outcome of an ECM.
type Result uint8

// ECM outcomes.
const (
	Found         Result = iota // CW holds the even and odd control words
	NotFound                    // the card answered without control words
	NotSubscribed               // the card has no entitlement for this ECM
	BadECM                      // the card or the host rejected the ECM bytes
	CardError                   // the card failed or answered outside its command set
	NotSupported                // the card or ECM needs host-side secrets satd does not hold
)

var resultNames = [...]string{"found", "not found", "not subscribed", "bad ECM", "card error", "not supported"}

// String returns the result name used in logs and the web form.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "result?"
}

// Answer is what a card system makes of one ECM.
type Answer struct {
	Result Result
	// CW is the even control word followed by the odd one. A half the card
	// did not send is left zero.
	CW [16]byte
	// Reason says why the answer is not Found; it is a constant string so
	// that answering does not allocate.
	Reason string
}

// Errors callers branch on.
var (
	// ErrNotSupported reports a card that belongs to a system satd knows
	// but cannot serve without host-side secrets.
	ErrNotSupported = errors.New("card not supported")
	// ErrCard reports an init answer that does not follow the command set.
	ErrCard = errors.New("unexpected card answer")
)

// Subscription is one entitlement the card reports.
type Subscription struct {
	Provider uint32    `json:"provider"`
	ID       uint16    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
}

// Identity is what a card system read from the card at init.
type Identity struct {
	System        string         `json:"system"`
	CAID          uint16         `json:"caid"`
	Providers     []uint32       `json:"providers"`
	Serial        string         `json:"serial"`
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
}

// Transmitter sends a command APDU and writes the response data followed
// by SW1 SW2 into resp. *cardreader.Reader and cardreader.Card are
// Transmitters.
type Transmitter interface {
	Transmit(cmd, resp []byte) (int, error)
}

// System is a card system: the cardreader identify/init hook plus identity
// and ECM processing. An instance belongs to one slot.
type System interface {
	cardreader.CardSystem
	// Identity returns what the last successful Init read.
	Identity() Identity
	// ECM sends the ECM section to the card and returns its answer. A
	// transport error is returned as err together with a CardError answer.
	// After Init it does not allocate.
	ECM(t Transmitter, ecm []byte) (Answer, error)
}

// Options are the per-reader settings of the card systems.
type Options struct {
	// Policy is what happens to a CW pair with a wrong checksum byte.
	Policy cardreader.CWPolicy
	// PIN is the Conax parental PIN (four ASCII digits) sent when the
	// card refuses an ECM for parental control; empty sends none.
	PIN string
}

// New returns fresh instances of every supported system in detection
// order, configured with o. The order is OSCam's (Conax, Seca, Griffin,
// DGCrypt, with the systems satd does not support left out): the first
// system whose Identify accepts the card wins.
func New(o Options) []System {
	return []System{NewConax(o), NewSeca(o), NewGriffin(o), NewDGCrypt(o)}
}

// All returns the systems of New with default options.
func All() []System { return New(Options{}) }

// CardSystems converts systems for cardreader.New.
func CardSystems(s []System) []cardreader.CardSystem {
	out := make([]cardreader.CardSystem, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// ByName returns the system called name, or nil.
func ByName(s []System, name string) System {
	for _, x := range s {
		if x.Name() == name {
			return x
		}
	}
	return nil
}

// identityBox guards an Identity written by Init and read by other
// goroutines.
type identityBox struct {
	mu sync.Mutex
	id Identity
}

func (b *identityBox) set(id Identity) {
	b.mu.Lock()
	b.id = id
	b.mu.Unlock()
}

// Identity returns a copy of the identity.
func (b *identityBox) Identity() Identity {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.id
	id.Providers = append([]uint32(nil), id.Providers...)
	id.Subscriptions = append([]Subscription(nil), id.Subscriptions...)
	return id
}

// sectionLen returns the length of an ECM section from its header, or an
// answer explaining why the bytes are no ECM section.
func sectionLen(ecm []byte) (int, bool) {
	if len(ecm) < 3 {
		return 0, false
	}
	n := 3 + (int(ecm[1]&0x0F)<<8 | int(ecm[2]))
	return n, n <= len(ecm)
}

// requestReset asks the reader behind t for a warm reset, when it can.
func requestReset(t Transmitter, reason string) {
	if r, ok := t.(cardreader.ResetRequester); ok {
		r.RequestReset(reason)
	}
}

// hangWatch counts status words a system cannot explain; after
// maxUnexplained in a row the card is taken to hang and reset.
type hangWatch struct{ n int }

const maxUnexplained = 3

// unexplained records one unexplained status word and asks for a reset on
// the third in a row.
func (h *hangWatch) unexplained(t Transmitter) {
	if h.n++; h.n >= maxUnexplained {
		h.n = 0
		requestReset(t, "the card answered unexplained status words three times in a row")
	}
}

// explained resets the count.
func (h *hangWatch) explained() { h.n = 0 }

// status maps an ECM status word with commonStatus and counts the ones it
// cannot explain.
func (h *hangWatch) status(t Transmitter, sw1, sw2 byte) Answer {
	a := commonStatus(sw1, sw2)
	if a.Result == CardError {
		h.unexplained(t)
	} else {
		h.explained()
	}
	return a
}

// found returns a Found answer for cw after the checksum policy: a pair
// the policy refuses is NotFound, never Found.
func found(p cardreader.CWPolicy, cw *[16]byte) Answer {
	if !p.Apply(cw) {
		return refuse(NotFound, "CW checksum wrong: refused (dropbadcws)")
	}
	return Answer{Result: Found, CW: *cw}
}

// refuse returns a non-Found answer.
func refuse(r Result, reason string) Answer { return Answer{Result: r, Reason: reason} }

// transportError turns a Transmit failure into a CardError answer.
func transportError(err error) (Answer, error) {
	return refuse(CardError, "card did not complete the command"), err
}

// statusError is an init status word that is not success.
func statusError(cmd string, sw1, sw2 byte) error {
	return fmt.Errorf("%w: %s answered %02X %02X", ErrCard, cmd, sw1, sw2)
}

// commonStatus maps the status words the systems share for ECM refusals
// (see docs/cardsystems.md).
func commonStatus(sw1, sw2 byte) Answer {
	switch {
	case sw1 == 0x69 && (sw2 == 0x82 || sw2 == 0x85):
		return refuse(NotSubscribed, "card reports no entitlement (69xx)")
	case sw1 == 0x67 || sw1 == 0x6A:
		return refuse(BadECM, "card rejected the ECM (67xx/6Axx)")
	}
	return refuse(CardError, "card answered an unexpected status word")
}

// be16 and be32 read big-endian integers.
func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func hexSerial(b []byte) string { return fmt.Sprintf("%X", b) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
