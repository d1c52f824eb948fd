package system

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"satd.dev/satd/cardreader"
)

// Seca command bytes (class C1).
const (
	secaCLA       = 0xC1
	secaSerial    = 0x0E // 8 bytes: serial in bytes 2-7
	secaProviders = 0x16 // 7 bytes: bytes 0-1 bitmap of provider indexes
	secaProvider  = 0x12 // 25 bytes per provider index (P1)
	secaECM       = 0x3C // P1 provider index, P2 key number, data ECM[8:]
	secaReadCW    = 0x3A // 16 bytes: even CW, odd CW
	secaMaxProvs  = 16
)

// secaSignature is ATR bytes 10-13 of every Seca card.
var secaSignature = []byte{0x0E, 0x6C, 0xB6, 0xD6}

// Seca is the Seca/Mediaguard 2 card system (T=0, CAID 0100). Seca 3 ECMs
// that carry nano 01 need the box key and are refused.
type Seca struct {
	identityBox
	nprov  int
	provID [secaMaxProvs]uint16 // provider ident per card index
	provOK [secaMaxProvs]bool
	cmd    [261]byte
	resp   [260]byte
}

var _ System = (*Seca)(nil)

// NewSeca returns a Seca system for one slot.
func NewSeca() *Seca { return &Seca{} }

// Name returns "seca".
func (*Seca) Name() string { return "seca" }

// Identify accepts cards whose ATR bytes 10-13 are 0E 6C B6 D6.
func (*Seca) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	raw := c.ATR().Raw
	return len(raw) >= 14 && bytes.Equal(raw[10:14], secaSignature), nil
}

// SecaVersion returns the Seca generation from the ATR version byte (raw
// byte 9): 7 is Seca 2, 10 is Seca 3.
func SecaVersion(atr []byte) int {
	if len(atr) < 10 {
		return 0
	}
	return int(atr[9])
}

// Init reads the serial and the provider table.
func (x *Seca) Init(_ context.Context, c cardreader.Card) error {
	id := Identity{System: "seca", CAID: 0x0100}
	b, err := x.read(c, secaSerial, 0, 8)
	if err != nil {
		return err
	}
	id.Serial = hexSerial(b[2:8])
	if b, err = x.read(c, secaProviders, 0, 7); err != nil {
		return err
	}
	bitmap := be16(b)
	x.provOK = [secaMaxProvs]bool{}
	x.nprov = 0
	for i := range secaMaxProvs {
		if bitmap&(1<<i) == 0 {
			continue
		}
		if b, err = x.read(c, secaProvider, byte(i), 25); err != nil {
			return err
		}
		prov := be16(b)
		x.provID[i], x.provOK[i] = prov, true
		x.nprov++
		id.Providers = append(id.Providers, uint32(prov))
		id.Subscriptions = append(id.Subscriptions, Subscription{
			Provider: uint32(prov), Name: strings.TrimRight(string(b[2:18]), " \x00"),
			End: SecaDate(be16(b[22:24])),
		})
	}
	x.set(id)
	return nil
}

// read sends the case 2 command C1 ins p1 00 le and returns the data.
func (x *Seca) read(c Transmitter, ins, p1, le byte) ([]byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, ins, p1, 0, le
	n, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, fmt.Errorf("C1 %02X: %w", ins, err)
	}
	if sw1, sw2 := x.resp[n-2], x.resp[n-1]; sw1 != 0x90 || sw2 != 0 || n-2 != int(le) {
		return nil, fmt.Errorf("%w: C1 %02X answered %d bytes and %02X %02X, want %d bytes and 90 00", ErrCard, ins, n-2, sw1, sw2, le)
	}
	return x.resp[:n-2], nil
}

// ECM sends C1 3C with the card's index of the ECM's provider (bytes 3-4)
// and the key number (byte 7), then reads the CWs with C1 3A.
func (x *Seca) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 10 || n-8 > 255 {
		return refuse(BadECM, "ECM section length does not fit a Seca C1 3C command"), nil
	}
	if ecm[8] == 0x01 || (ecm[8] == 0x10 && ecm[9] == 0x01) {
		return refuse(NotSupported, "Seca 3 ECM with nano 01: not supported (needs box key)"), nil
	}
	prov, idx := be16(ecm[3:5]), -1
	for i := range secaMaxProvs {
		if x.provOK[i] && x.provID[i] == prov {
			idx = i
			break
		}
	}
	if idx < 0 {
		return refuse(NotSubscribed, "the ECM's Seca provider is not on the card"), nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, secaECM, byte(idx), ecm[7], byte(n-8)
	copy(x.cmd[5:], ecm[8:n])
	m, err := t.Transmit(x.cmd[:5+n-8], x.resp[:])
	if err != nil {
		return transportError(err)
	}
	switch sw1, sw2 := x.resp[m-2], x.resp[m-1]; {
	case sw1 == 0x93 && sw2 == 0x02:
		return refuse(NotSubscribed, "Seca card: not subscribed (93 02)"), nil
	case sw1 == 0x96 && sw2 == 0x00:
		return refuse(BadECM, "Seca card rejected the ECM (96 00)"), nil
	case sw1 != 0x90 || sw2 != 0:
		return commonStatus(sw1, sw2), nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, secaReadCW, 0, 0, 16
	if m, err = t.Transmit(x.cmd[:5], x.resp[:]); err != nil {
		return transportError(err)
	}
	if m != 18 || x.resp[16] != 0x90 || x.resp[17] != 0 {
		return refuse(CardError, "Seca card did not hand out 16 CW bytes on C1 3A"), nil
	}
	var a Answer
	copy(a.CW[:], x.resp[:16])
	return a, nil
}

// SecaDate decodes a Seca date: year 1990 + bits 15-9, month bits 8-5, day
// bits 4-0.
func SecaDate(v uint16) time.Time {
	m, d := int(v>>5&0x0F), int(v&0x1F)
	if m < 1 || m > 12 || d < 1 {
		return time.Time{}
	}
	return time.Date(1990+int(v>>9), time.Month(m), d, 0, 0, 0, 0, time.UTC)
}

// SecaDateBytes encodes t as a Seca date.
func SecaDateBytes(t time.Time) uint16 {
	return uint16(t.Year()-1990)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
}
