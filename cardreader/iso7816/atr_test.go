package iso7816

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestParseATRSpecExample(t *testing.T) {
	a, err := ParseATR(mustHex(t, "3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8"), Strict)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case a.Convention != Direct, !a.HasTA1, a.TA1 != 0x95, a.Fi() != 512, a.Di() != 16, a.FMax() != 5e6:
		t.Errorf("TA1 interpretation wrong: %+v", a)
	case !a.Offers(0) || !a.Offers(15) || a.Offers(1) || a.FirstProtocol != 0:
		t.Errorf("protocols %016b first %d", a.Protocols, a.FirstProtocol)
	case !a.HasClassIndicator || a.ClockStop != 3 || a.Classes != 3:
		t.Errorf("class indicator: stop %d classes %d", a.ClockStop, a.Classes)
	case len(a.Historical) != 15 || a.Historical[0] != 0x80 || !a.HasTCK || a.TCK != 0xA8:
		t.Errorf("historical % X TCK %02X", a.Historical, a.TCK)
	case len(a.Deviations) != 0 || a.Specific || a.N != 0 || a.WI != 10:
		t.Errorf("unexpected: %+v", a)
	}
}

func TestParseATRT1(t *testing.T) {
	// T=0 and T=1, TC1 = 2, TC2 = 20, T=1 IFSC 254, BWI 4 CWI 5, CRC.
	b := []byte{0x3B, 0xF0, 0x13, 0x00, 0x02, 0x90 | 0x0, 0x54, 0x81 - 0x80 + 0x80 | 0x70, 0xFE, 0x45, 0x01}
	// Rebuild precisely: T0=F0 (TA1 TB1 TC1 TD1, K=0); TD1=D0 (TA2? no)
	b = []byte{0x3B, 0xE0, 0x13, 0x02, 0xC0, 0x14, 0xB1, 0xFE, 0x45, 0x01}
	// TA1=13 TC1=02 TD1=C0 (TC2 TD2, T=0) TC2=14 TD2=B1 (TA3 TB3 TD3? B=1011: TA TB TD) ...
	b = []byte{0x3B, 0xD0, 0x13, 0x02, 0xC0, 0x14, 0x71, 0xFE, 0x45, 0x01}
	b = append(b, tck(b))
	a, err := ParseATR(b, Strict)
	if err != nil {
		t.Fatal(err)
	}
	if a.N != 2 || a.WI != 20 || a.IFSC != 254 || a.BWI != 4 || a.CWI != 5 || a.EDC != EDCCRC || !a.Offers(1) || !a.Offers(0) {
		t.Errorf("got N=%d WI=%d IFSC=%d BWI=%d CWI=%d EDC=%v protocols %b", a.N, a.WI, a.IFSC, a.BWI, a.CWI, a.EDC, a.Protocols)
	}
}

func tck(b []byte) byte {
	var x byte
	for _, c := range b[1:] {
		x ^= c
	}
	return x
}

func TestParseATRModes(t *testing.T) {
	valid := mustHex(t, "3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8")
	tests := []struct {
		name string
		atr  []byte
		dev  Deviation // 0: no deviation, lenient must equal strict
		bad  bool      // rejected even leniently
	}{
		{"valid", valid, 0, false},
		{"T=0 only no TCK", mustHex(t, "3B 02 14 50"), 0, false},
		{"missing TCK", valid[:len(valid)-1], MissingTCK, false},
		{"bad TCK", append(append([]byte(nil), valid[:len(valid)-1]...), 0x00), BadTCK, false},
		{"trailing", append(append([]byte(nil), valid...), 0x90, 0x00), TrailingBytes, false},
		{"short historical", mustHex(t, "3B 05 14 50"), ShortHistorical, false},
		{"T15 in TD1", append(mustHex(t, "3B 80 0F"), 0x8F), T15InTD1, false},
		{"bad TS", mustHex(t, "3C 00"), 0, true},
		{"one byte", mustHex(t, "3B"), 0, true},
		{"truncated interface", mustHex(t, "3B F0 11"), 0, true},
	}
	for _, tc := range tests {
		_, serr := ParseATR(tc.atr, Strict)
		a, lerr := ParseATR(tc.atr, Lenient)
		switch {
		case tc.bad:
			if serr == nil || lerr == nil || !errors.Is(lerr, ErrATR) {
				t.Errorf("%s: strict %v lenient %v, want both rejected", tc.name, serr, lerr)
			}
		case tc.dev == 0:
			if serr != nil || lerr != nil || len(a.Deviations) != 0 {
				t.Errorf("%s: strict %v lenient %v", tc.name, serr, lerr)
			}
		default:
			if serr == nil || !strings.Contains(serr.Error(), tc.dev.String()) {
				t.Errorf("%s: strict error %v, want %q", tc.name, serr, tc.dev)
			}
			if lerr != nil || !a.Deviated(tc.dev) {
				t.Errorf("%s: lenient %v deviations %v, want %v", tc.name, lerr, a, tc.dev)
			}
		}
	}
}

func TestATRTracker(t *testing.T) {
	for _, s := range []string{
		"3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8",
		"3B 02 14 50",
		"3B 00",
		"3F FF 95 00 FF 91 81 71 A0 47 00 44 4E 41 53 50 30 31 31 20 52 65 76 41 32 32 15",
	} {
		b := mustHex(t, s)
		var tr ATRTracker
		for i, c := range b {
			if rem := tr.Remaining(); rem > len(b)-i || rem < 1 {
				t.Errorf("%s: at %d remaining %d, want 1..%d", s, i, rem, len(b)-i)
			}
			done := tr.Feed(c)
			if done != (i == len(b)-1) {
				t.Errorf("%s: Feed #%d done=%v", s, i, done)
				break
			}
		}
	}
}

func FuzzParseATR(f *testing.F) {
	for _, s := range readSamples(f) {
		f.Add(s.atr)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mode := range []ParseMode{Strict, Lenient} {
			a, err := ParseATR(b, mode)
			if err != nil {
				continue
			}
			if mode == Strict && (len(a.Raw) > MaxATRLen || len(a.Deviations) != 0 || len(a.Raw) != len(b)) {
				t.Fatalf("strict accepted % X with raw % X deviations %v", b, a.Raw, a.Deviations)
			}
			if a.HasTCK && mode == Strict && tck(a.Raw) != 0 {
				t.Fatalf("strict accepted a bad TCK in % X", b)
			}
			n := 2 + len(a.Historical)
			for _, g := range a.Groups {
				for m := g.Has; m != 0; m &= m - 1 {
					n++
				}
			}
			if a.HasTCK {
				n++
			}
			if n != len(a.Raw) {
				t.Fatalf("parts of % X add to %d bytes, raw has %d", b, n, len(a.Raw))
			}
		}
	})
}
