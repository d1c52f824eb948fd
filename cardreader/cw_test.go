package cardreader_test

import (
	"testing"

	"satd.dev/satd/cardreader"
)

func TestCWPolicy(t *testing.T) {
	good := [16]byte{0x17, 0x0B, 0xB6, 0xD8, 0x21, 0xB4, 0x25, 0xFA, 0xDF, 0xD7, 0x38, 0xEE, 0x71, 0x7F, 0x02, 0xF2}
	bad := good
	bad[7] ^= 0x01
	bad[15] = 0
	for _, tc := range []struct {
		name    string
		p       cardreader.CWPolicy
		in      [16]byte
		ok      bool
		mask    uint8
		wantOut [16]byte
	}{
		{"good, fix", cardreader.FixBadCWs, good, true, 0, good},
		{"good, drop", cardreader.DropBadCWs, good, true, 0, good},
		{"bad, fix", cardreader.FixBadCWs, bad, true, 0b1010, good},
		{"bad, drop", cardreader.DropBadCWs, bad, false, 0b1010, bad},
		{"zero halves", cardreader.DropBadCWs, [16]byte{}, true, 0, [16]byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cw := tc.in
			if m := cardreader.BadCWChecksums(&cw); m != tc.mask {
				t.Errorf("mask %04b, want %04b", m, tc.mask)
			}
			if ok := tc.p.Apply(&cw); ok != tc.ok || cw != tc.wantOut {
				t.Errorf("Apply = %v, % X; want %v, % X", ok, cw, tc.ok, tc.wantOut)
			}
		})
	}
}
