package testecm

import (
	"encoding/binary"
	"testing"
)

// TestAppendForShapes checks every generator's section length field,
// parity and per-system layout, and that content changes with the period.
func TestAppendForShapes(t *testing.T) {
	for _, sys := range Systems {
		for n := range uint32(3) {
			sec, err := AppendFor(nil, sys, 0x0B00, 0x1234, 0x0200, SecaProvider, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2])); got != len(sec) {
				t.Errorf("%s period %d: section length field %d, len %d", sys, n, got, len(sec))
			}
			if sec[0] != 0x80|byte(n&1) {
				t.Errorf("%s period %d: table 0x%02X", sys, n, sec[0])
			}
			next, _ := AppendFor(nil, sys, 0x0B00, 0x1234, 0x0200, SecaProvider, n+2)
			if string(next) == string(sec) {
				t.Errorf("%s: periods %d and %d give the same ECM", sys, n, n+2)
			}
			if sys == "seca" {
				if binary.BigEndian.Uint16(sec[3:]) != SecaProvider || sec[8] == 0x01 || sec[8] == 0x10 && sec[9] == 0x01 {
					t.Errorf("seca ECM % X: wrong provider or nano 01", sec)
				}
			}
		}
	}
	if _, err := AppendFor(nil, "irdeto", 0x0600, 1, 2, 0, 0); err == nil {
		t.Error("unknown system accepted")
	}
}
