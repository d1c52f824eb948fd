// Package system holds the card systems satd can serve with the subscriber's
// card alone: Conax (unpaired cards), Seca/Mediaguard 2, Griffin and
// DGCrypt. Each system recognises its cards from the ATR, reads the card's
// identity at init (CAID, provider idents, serial, subscriptions) and turns
// an ECM section into an even/odd control-word pair or a typed refusal.
//
// Cards that need host-side secrets (paired Conax cards, Seca 3 ECMs with
// nano 01) are recognised and refused with ErrNotSupported or a
// NotSupported answer naming the reason; they are never half-served. The
// byte layouts are documented in docs/cardsystems.md.
//
// Use:
//
//	systems := system.All()                       // fixed detection order
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

// All returns fresh instances of every supported system in detection
// order. The order is OSCam's (Conax, Seca, Griffin, DGCrypt, with the
// systems satd does not support left out): the first system whose Identify
// accepts the card wins.
func All() []System {
	return []System{NewConax(), NewSeca(), NewGriffin(), NewDGCrypt()}
}

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
