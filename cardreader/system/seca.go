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
	secaProviders = 0x16 // 7 bytes (at least 4): provider bitmap in bytes 2-3
	secaProvider  = 0x12 // 25 bytes per provider index (P1)
	secaToken     = 0x30 // answers 90 1A: the card wants a token first
	secaECM       = 0x3C // P1 provider index, P2 ECM byte 7, data ECM[8:]
	secaReadCW    = 0x3A // 16 bytes: even CW, odd CW
	secaMaxProvs  = 16
	secaMapTries  = 5 // reads of an empty provider map before giving up

	seca3 = 10 // ATR version of Seca 3 cards
)

// secaSignature is ATR bytes 10-13 of every Seca card.
var secaSignature = []byte{0x0E, 0x6C, 0xB6, 0xD6}

// secaTokenCmd is the token the card asks for with 90 1A.
var secaTokenCmd = []byte{secaCLA, secaToken, 0x00, 0x02, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF}

// secaFEDC are the idents of FE xx provider entries by card index.
var secaFEDC = [...]uint16{0x0000, 0x0068, 0x0065, 0x0068}

const (
	reasonSeca3        = "Seca 3 ECM needs the box session key"
	reasonSecaEncCW    = "CWs are still encrypted (nano-protected Seca ECM): needs the box session key"
	reasonSecaProvider = "the ECM's Seca provider is not on the card"
	reasonSecaNotSub   = "Seca card: not subscribed (93 02)"
	reasonSecaBadECM   = "Seca card rejected the ECM (96 00)"
	reasonSecaToken    = "Seca card asked for a token again (90 1A)"
	reasonSecaCW       = "Seca card did not hand out 16 CW bytes on C1 3A"
	reasonSecaECMLen   = "ECM section length does not fit a Seca C1 3C command"
)

// Seca is the Seca/Mediaguard 2 card system (T=0, CAID 0100).
type Seca struct {
	identityBox
	o       Options
	hang    hangWatch
	version int
	provID  [secaMaxProvs]uint16 // provider ident per card index
	provOK  [secaMaxProvs]bool
	cmd     [261]byte
	resp    [260]byte
}

var _ System = (*Seca)(nil)

// NewSeca returns a Seca system for one slot.
func NewSeca(o Options) *Seca { return &Seca{o: o} }

// Name returns "seca".
func (*Seca) Name() string { return "seca" }

// Identify accepts cards whose ATR bytes 10-13 are 0E 6C B6 D6.
func (*Seca) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	raw := c.ATR().Raw
	return len(raw) >= 14 && bytes.Equal(raw[10:14], secaSignature), nil
}

// SecaVersion returns the Seca generation from the low nibble of ATR byte
// 9: 7 is Seca 2, 10 is Seca 3.
func SecaVersion(atr []byte) int {
	if len(atr) < 10 {
		return 0
	}
	return int(atr[9] & 0x0F)
}

// Init reads the serial and the provider table.
func (x *Seca) Init(_ context.Context, c cardreader.Card) error {
	x.version = SecaVersion(c.ATR().Raw)
	id := Identity{System: "seca", CAID: 0x0100}
	b, err := x.read(c, secaSerial, 0, 8, 8)
	if err != nil {
		return err
	}
	id.Serial = hexSerial(b[2:8])
	var bitmap uint16
	for try := 0; bitmap == 0; try++ {
		if try == secaMapTries {
			return fmt.Errorf("%w: C1 16: provider map still empty after %d reads", ErrCard, secaMapTries)
		}
		if b, err = x.read(c, secaProviders, 0, 7, 4); err != nil {
			return err
		}
		bitmap = be16(b[2:4])
	}
	x.provOK = [secaMaxProvs]bool{}
	for i := range secaMaxProvs {
		if bitmap&(1<<i) == 0 {
			continue
		}
		if b, err = x.read(c, secaProvider, byte(i), 25, 25); err != nil {
			return err
		}
		prov := secaIdent(i, be16(b))
		x.provID[i], x.provOK[i] = prov, true
		id.Providers = append(id.Providers, uint32(prov))
		id.Subscriptions = append(id.Subscriptions, Subscription{
			Provider: uint32(prov), Name: strings.TrimRight(string(b[2:18]), " \x00"),
			End: SecaDate(be16(b[22:24])),
		})
	}
	x.hang.explained()
	x.set(id)
	return nil
}

// secaIdent returns the ident of the provider at card index i whose record
// says raw: FE xx entries are FEDC entries named by their index.
func secaIdent(i int, raw uint16) uint16 {
	if raw>>8 == 0xFE && i < len(secaFEDC) {
		return secaFEDC[i]
	}
	return raw
}

// read sends the case 2 command C1 ins p1 00 le and returns the data,
// which must hold at least min bytes.
func (x *Seca) read(c Transmitter, ins, p1, le byte, min int) ([]byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, ins, p1, 0, le
	n, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, fmt.Errorf("C1 %02X: %w", ins, err)
	}
	if sw1, sw2 := x.resp[n-2], x.resp[n-1]; sw1 != 0x90 || sw2 != 0 || n-2 < min {
		return nil, fmt.Errorf("%w: C1 %02X %02X answered %d bytes and %02X %02X, want %d bytes and 90 00", ErrCard, ins, p1, n-2, sw1, sw2, min)
	}
	return x.resp[:n-2], nil
}

// ECM sends C1 3C with the card's index of the ECM's provider (bytes 3-4)
// and ECM byte 7, answers a token request, and always reads the CWs with
// C1 3A afterwards (the card locks up otherwise).
func (x *Seca) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 10 || n-8 > 255 {
		return refuse(BadECM, reasonSecaECMLen), nil
	}
	if x.version == seca3 && ecm[5] == 0x01 {
		return refuse(NotSupported, reasonSeca3), nil
	}
	prov, idx := be16(ecm[3:5]), -1
	for i := range secaMaxProvs {
		if x.provOK[i] && x.provID[i] == prov {
			idx = i
			break
		}
	}
	if idx < 0 {
		return refuse(NotSubscribed, reasonSecaProvider), nil
	}
	sw1, sw2, err := x.sendECM(t, byte(idx), ecm[7], ecm[8:n])
	if err == nil && sw1 == 0x90 && sw2 == 0x1A {
		if sw1, sw2, err = x.transmitSW(t, secaTokenCmd); err == nil {
			sw1, sw2, err = x.sendECM(t, byte(idx), ecm[7], ecm[8:n])
		}
	}
	if err != nil {
		return transportError(err)
	}
	refusal, cardOK := x.ecmStatus(t, sw1, sw2)
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, secaReadCW, 0, 0, 16
	m, err := t.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return transportError(err)
	}
	if !cardOK {
		return refusal, nil // the CWs were read only to keep the card going
	}
	if m != 18 || x.resp[16] != 0x90 || x.resp[17] != 0 {
		x.hang.unexplained(t)
		return refuse(CardError, reasonSecaCW), nil
	}
	var cw [16]byte
	copy(cw[:], x.resp[:16])
	if ecm[5] != 0 && cardreader.BadCWChecksums(&cw) != 0 {
		// Nano-protected ECM: a wrong checksum means the card handed out
		// CWs still encrypted with the box key. Never "fix" those.
		return refuse(NotSupported, reasonSecaEncCW), nil
	}
	return found(x.o.Policy, &cw), nil
}

// ecmStatus decides from the C1 3C status word whether the card has CWs.
func (x *Seca) ecmStatus(t Transmitter, sw1, sw2 byte) (Answer, bool) {
	sw := uint16(sw1)<<8 | uint16(sw2)
	switch sw {
	case 0x9000, 0x9002, 0x9300, 0x9602:
		x.hang.explained()
		return Answer{}, true
	case 0x9302:
		x.hang.explained()
		return refuse(NotSubscribed, reasonSecaNotSub), false
	case 0x9600:
		x.hang.explained()
		return refuse(BadECM, reasonSecaBadECM), false
	case 0x901A:
		x.hang.explained()
		return refuse(CardError, reasonSecaToken), false
	}
	return x.hang.status(t, sw1, sw2), false
}

// sendECM sends C1 3C idx key len data.
func (x *Seca) sendECM(t Transmitter, idx, key byte, data []byte) (byte, byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = secaCLA, secaECM, idx, key, byte(len(data))
	copy(x.cmd[5:], data)
	return x.transmitSW(t, x.cmd[:5+len(data)])
}

// transmitSW sends cmd and returns the status word.
func (x *Seca) transmitSW(t Transmitter, cmd []byte) (byte, byte, error) {
	m, err := t.Transmit(cmd, x.resp[:])
	if err != nil {
		return 0, 0, err
	}
	return x.resp[m-2], x.resp[m-1], nil
}

// SecaDate decodes a Seca date (provider record bytes 22-23): year
// 1990 + bits 15-9, month bits 8-5, day bits 4-0.
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
