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
	dgcryptCLA        = 0x81
	dgcryptSessionKey = 0xD0 // 16-byte XOR mask for the CWs
	dgcryptSerial     = 0xD1 // serial in bytes 0-7
	dgcryptLabel      = 0xD2 // ASCII card label
	dgcryptCWTag      = 0x72
	dgcryptCAID       = 0x4ABF
)

var dgcryptATRPrefix = []byte{0x3B, 0xE9, 0x00, 0x00, 0x81, 0x31, 0xC3, 0x45}

// DGCrypt is the DGCrypt card system (T=1, CAID 4ABF): the card hands out
// the XOR session key that masks its CWs.
type DGCrypt struct {
	identityBox
	key  [16]byte
	cmd  [262]byte
	resp [260]byte
}

var _ System = (*DGCrypt)(nil)

// NewDGCrypt returns a DGCrypt system for one slot.
func NewDGCrypt() *DGCrypt { return &DGCrypt{} }

// Name returns "dgcrypt".
func (*DGCrypt) Name() string { return "dgcrypt" }

// Identify accepts ATRs starting 3B E9 00 00 81 31 C3 45.
func (*DGCrypt) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	return bytes.HasPrefix(c.ATR().Raw, dgcryptATRPrefix), nil
}

// Init reads the session key, the serial and the label.
func (x *DGCrypt) Init(_ context.Context, c cardreader.Card) error {
	id := Identity{System: "dgcrypt", CAID: dgcryptCAID, Providers: []uint32{0}}
	b, err := x.read(c, dgcryptSessionKey)
	if err != nil {
		return err
	}
	copy(x.key[:], b)
	if b, err = x.read(c, dgcryptSerial); err != nil {
		return err
	}
	id.Serial = hexSerial(b[:8])
	if b, err = x.read(c, dgcryptLabel); err != nil {
		return err
	}
	if s := strings.TrimRight(string(b), " \x00"); s != "" {
		id.Subscriptions = []Subscription{{Name: s}}
	}
	x.set(id)
	return nil
}

// read sends 81 ins 00 01 10 and returns the 16 data bytes.
func (x *DGCrypt) read(c Transmitter, ins byte) ([]byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = dgcryptCLA, ins, 0, 1, 16
	n, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, fmt.Errorf("81 %02X: %w", ins, err)
	}
	if n != 18 || x.resp[16] != 0x90 || x.resp[17] != 0 {
		return nil, fmt.Errorf("%w: 81 %02X answered %d bytes and %02X %02X, want 16 bytes and 90 00", ErrCard, ins, n-2, x.resp[n-2], x.resp[n-1])
	}
	return x.resp[:16], nil
}

// ECM sends the section with its first three bytes replaced by 80 EA 80
// (so ECM bytes 3 and 4 are P2 and Lc) and unmasks the 16 CW bytes after
// tag 72 with the session key.
func (x *DGCrypt) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 6 || int(ecm[4]) != n-5 {
		return refuse(BadECM, "DGCrypt ECM byte 4 must be the length of the rest of the section"), nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2] = 0x80, 0xEA, 0x80
	copy(x.cmd[3:], ecm[3:n])
	x.cmd[n] = 0 // Le
	m, err := t.Transmit(x.cmd[:n+1], x.resp[:])
	if err != nil {
		return transportError(err)
	}
	if sw1, sw2 := x.resp[m-2], x.resp[m-1]; sw1 != 0x90 || sw2 != 0 {
		return commonStatus(sw1, sw2), nil
	}
	if m != 19 || x.resp[0] != dgcryptCWTag {
		return refuse(CardError, "DGCrypt answer is not tag 72 with 16 CW bytes"), nil
	}
	var a Answer
	for i := range a.CW {
		a.CW[i] = x.resp[1+i] ^ x.key[i]
	}
	return a, nil
}
