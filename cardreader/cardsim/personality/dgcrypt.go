package personality

import (
	"satd.dev/satd/cardreader/cardsim"
)

// DGCrypt is a simulated DGCrypt card speaking T=1; run it with
// cardsim.Config.T1ZeroNS (it numbers every I-block 0). It answers:
//
//	81 D0 00 01 08 → <key 8>: masks both CW halves
//	81 D1 00 01 10 → 00 <serial 7> 00 × 8
//	81 D2 00 01 10 → <label 16>
//	80 EA 80 <ECM from byte 3> (no Le) → 72 <CW XOR key, 16 bytes>
type DGCrypt struct {
	Behaviour
	Serial [7]byte
	Label  string
	// Key masks the CWs (test data); zero means one derived from the
	// serial.
	Key [8]byte
	// FixedCW, when set, is answered instead of the hash of the ECM.
	FixedCW *[16]byte

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

// key returns the CW mask.
func (d *DGCrypt) key() [8]byte {
	if d.Key != [8]byte{} {
		return d.Key
	}
	full := cwOf(d.Serial[:])
	return [8]byte(full[:8])
}

// Respond answers one APDU.
func (d *DGCrypt) Respond(cmd, resp []byte) int {
	if len(cmd) < 5 {
		return status(resp, 0x67, 0x00)
	}
	if cmd[0] == 0x80 && cmd[1] == 0xEA {
		return d.ecm(cmd, resp)
	}
	if cmd[0] != 0x81 || cmd[2] != 0x00 || cmd[3] != 0x01 {
		return status(resp, 0x6E, 0x00)
	}
	b := d.buf[:16]
	switch cmd[1] {
	case 0xD0:
		k := d.key()
		b = append(b[:0], k[:]...)
	case 0xD1:
		clear(b)
		copy(b[1:], d.Serial[:])
	case 0xD2:
		copy(b, padded(d.Label, 16))
	default:
		return status(resp, 0x6D, 0x00)
	}
	if len(cmd) != 5 || leOf(cmd) != len(b) {
		return status(resp, 0x6C, byte(len(b)))
	}
	return reply(resp, b)
}

// ecm answers 72 + masked CWs for 80 EA 80 P2 Lc data (no Le).
func (d *DGCrypt) ecm(cmd, resp []byte) int {
	mode := d.begin()
	switch mode {
	case CardError:
		return errorSW(resp)
	case NotSubscribed:
		return status(resp, 0x69, 0x82)
	case BadECM:
		return status(resp, 0x6A, 0x80)
	}
	if cmd[2] != 0x80 || len(cmd) != 5+int(cmd[4]) {
		return status(resp, 0x67, 0x00)
	}
	// The card received ECM bytes 3.. (P2, Lc, data): hash those.
	cw, k := cwFor(d.FixedCW, cmd[3:], mode), d.key()
	resp[0] = 0x72
	for i := range cw {
		resp[1+i] = cw[i] ^ k[i%8]
	}
	resp[17], resp[18] = 0x90, 0x00
	return 19
}
