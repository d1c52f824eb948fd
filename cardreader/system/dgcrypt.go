package system

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"satd.dev/satd/cardreader"
)

// DGCrypt command bytes (class 81, T=1).
const (
	dgcryptCLA    = 0x81
	dgcryptKey    = 0xD0 // 81 D0 00 01 08: the 8-byte CW mask
	dgcryptSerial = 0xD1 // 81 D1 00 01 10: serial in bytes 1..7
	dgcryptLabel  = 0xD2 // 81 D2 00 01 10: ASCII card label
	dgcryptCWTag  = 0x72
	dgcryptCAID   = 0x4ABF
)

var dgcryptATRPrefix = []byte{0x3B, 0xE9, 0x00, 0x00, 0x81, 0x31, 0xC3, 0x45}

const (
	reasonDGCryptLen    = "ECM section too short for a DGCrypt 80 EA command"
	reasonDGCryptAnswer = "DGCrypt answer is not tag 72 with 16 CW bytes"
)

// DGCrypt is the DGCrypt card system (T=1, CAID 4ABF): the card hands out
// the 8-byte key that masks both halves of its CWs.
type DGCrypt struct {
	identityBox
	o    Options
	hang hangWatch
	key  [8]byte
	cmd  [262]byte
	resp [260]byte
}

var _ System = (*DGCrypt)(nil)
var _ cardreader.T1Quirker = (*DGCrypt)(nil)

// NewDGCrypt returns a DGCrypt system for one slot.
func NewDGCrypt(o Options) *DGCrypt { return &DGCrypt{o: o} }

// Name returns "dgcrypt".
func (*DGCrypt) Name() string { return "dgcrypt" }

// T1Quirks turns on N(S) = 0 in every I-block: DGCrypt cards are known to
// work that way.
func (*DGCrypt) T1Quirks() cardreader.T1Quirks { return cardreader.T1Quirks{ZeroNS: true} }

// Identify accepts ATRs starting 3B E9 00 00 81 31 C3 45.
func (*DGCrypt) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	return bytes.HasPrefix(c.ATR().Raw, dgcryptATRPrefix), nil
}

// Init reads the CW mask, the serial and the label.
func (x *DGCrypt) Init(_ context.Context, c cardreader.Card) error {
	id := Identity{System: "dgcrypt", CAID: dgcryptCAID, Providers: []uint32{0}}
	b, err := x.read(c, dgcryptKey, 8)
	if err != nil {
		return err
	}
	copy(x.key[:], b)
	if b, err = x.read(c, dgcryptSerial, 16); err != nil {
		return err
	}
	id.Serial = hexSerial(b[1:8])
	if b, err = x.read(c, dgcryptLabel, 16); err != nil {
		return err
	}
	if s := strings.TrimRight(string(b), " \x00"); s != "" {
		id.Subscriptions = []Subscription{{Name: s}}
	}
	x.hang.explained()
	x.set(id)
	return nil
}

// read sends 81 ins 00 01 le and returns the le data bytes.
func (x *DGCrypt) read(c Transmitter, ins, le byte) ([]byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = dgcryptCLA, ins, 0, 1, le
	n, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, fmt.Errorf("81 %02X: %w", ins, err)
	}
	if n-2 < int(le) || x.resp[n-2] != 0x90 || x.resp[n-1] != 0 {
		return nil, fmt.Errorf("%w: 81 %02X answered %d bytes and %02X %02X, want %d bytes and 90 00", ErrCard, ins, n-2, x.resp[n-2], x.resp[n-1], le)
	}
	return x.resp[:le], nil
}

// ECM sends the section with its first three bytes replaced by 80 EA 80,
// section[2]+3 bytes long and without Le, and unmasks the 16 CW bytes
// after tag 72 with the 8-byte key (the same key for both halves).
func (x *DGCrypt) ECM(t Transmitter, ecm []byte) (Answer, error) {
	if len(ecm) < 3 {
		return refuse(BadECM, reasonDGCryptLen), nil
	}
	n := int(ecm[2]) + 3
	if n < 5 || n > len(ecm) {
		return refuse(BadECM, reasonDGCryptLen), nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2] = 0x80, 0xEA, 0x80
	copy(x.cmd[3:], ecm[3:n])
	m, err := t.Transmit(x.cmd[:n], x.resp[:])
	if err != nil {
		return transportError(err)
	}
	if sw1, sw2 := x.resp[m-2], x.resp[m-1]; sw1 != 0x90 || sw2 != 0 {
		return x.hang.status(t, sw1, sw2), nil
	}
	x.hang.explained()
	if m-2 < 17 || x.resp[0] != dgcryptCWTag {
		return refuse(CardError, reasonDGCryptAnswer), nil
	}
	var cw [16]byte
	for i := range cw {
		cw[i] = x.resp[1+i] ^ x.key[i%8]
	}
	return found(x.o.Policy, &cw), nil
}
