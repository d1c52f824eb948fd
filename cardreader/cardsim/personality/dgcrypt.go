package personality

import (
	"satd.dev/satd/cardreader/cardsim"
)

// DGCrypt is a simulated DGCrypt card speaking T=1. Its CW mask ("session
// key") is test data derived from the serial.
type DGCrypt struct {
	Behaviour
	Serial [8]byte
	Label  string

	buf [32]byte
}

var _ cardsim.Personality = (*DGCrypt)(nil)

// DGCryptATR is the ATR of the simulated card: 3B E9 00 00 81 31 C3 45
// (T=1, IFSC 195), nine historical bytes and TCK.
func DGCryptATR() []byte {
	atr := []byte{0x3B, 0xE9, 0x00, 0x00, 0x81, 0x31, 0xC3, 0x45, 'S', 'A', 'T', 'D', '-', 'T', 'E', 'S', 'T'}
	var x byte
	for _, b := range atr[1:] {
		x ^= b
	}
	return append(atr, x)
}

// DataIn is not used under T=1.
func (*DGCrypt) DataIn(h []byte) bool { return h[1] == 0xEA }

// mask returns the test CW mask.
func (d *DGCrypt) mask() [16]byte { return cwOf(d.Serial[:]) }

// Respond answers one APDU.
func (d *DGCrypt) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 {
		return status(resp, 0x67, 0x00)
	}
	if cmd[0] == 0x80 && cmd[1] == 0xEA {
		return d.ecm(cmd, resp)
	}
	if cmd[0] != 0x81 {
		return status(resp, 0x6E, 0x00)
	}
	b := d.buf[:16]
	switch cmd[1] {
	case 0xD0:
		m := d.mask()
		copy(b, m[:])
	case 0xD1:
		clear(b)
		copy(b, d.Serial[:])
	case 0xD2:
		copy(b, padded(d.Label, 16))
	default:
		return status(resp, 0x6D, 0x00)
	}
	if leOf(cmd) != 16 {
		return status(resp, 0x6C, 16)
	}
	return reply(resp, b)
}

// ecm answers 72 + masked CWs for 80 EA 80 P2 Lc data Le.
func (d *DGCrypt) ecm(cmd, resp []byte) int {
	switch d.begin() {
	case CardError:
		return errorSW(resp)
	case NotSubscribed:
		return status(resp, 0x69, 0x82)
	case BadECM:
		return status(resp, 0x6A, 0x80)
	}
	if cmd[2] != 0x80 || len(cmd) != 6+int(cmd[4]) {
		return status(resp, 0x67, 0x00)
	}
	// The card received ECM bytes 3.. (P2, Lc, data): hash those.
	cw, m := cwOf(cmd[3:len(cmd)-1]), d.mask()
	resp[0] = 0x72
	for i := range cw {
		resp[1+i] = cw[i] ^ m[i]
	}
	resp[17], resp[18] = 0x90, 0x00
	return 19
}
