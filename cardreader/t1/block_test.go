package t1

import (
	"bytes"
	"errors"
	"testing"
)

func TestEDCVectors(t *testing.T) {
	tests := []struct {
		block          []byte
		lrc, ccid, x25 []byte
	}{
		{[]byte{0x00, 0x00, 0x00}, []byte{0x00}, []byte{0x39, 0x33}, []byte{0xCC, 0xC6}},
		{[]byte{0x00, 0xC1, 0x01, 0xFE}, []byte{0x3E}, []byte{0x54, 0x4E}, []byte{0xB1, 0xAB}},
		{[]byte{0x00, 0x40, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00}, []byte{0xE5}, []byte{0x1C, 0xBD}, []byte{0x42, 0xE3}},
	}
	for _, tc := range tests {
		for _, v := range []struct {
			e    EDC
			want []byte
		}{{LRC, tc.lrc}, {CRCCCID, tc.ccid}, {CRCX25, tc.x25}} {
			got := AppendEDC(nil, tc.block, v.e)
			if !bytes.Equal(got, v.want) {
				t.Errorf("%s of % X = % X, want % X", v.e, tc.block, got, v.want)
			}
			raw := append(append([]byte(nil), tc.block...), got...)
			if _, err := Decode(raw, v.e); err != nil {
				t.Errorf("Decode(% X, %s): %v", raw, v.e, err)
			}
			raw[len(raw)-1] ^= 0x01
			if _, err := Decode(raw, v.e); !errors.Is(err, ErrEDC) {
				t.Errorf("Decode(corrupted % X, %s) = %v, want ErrEDC", raw, v.e, err)
			}
		}
	}
}

func TestCRCCheckValues(t *testing.T) {
	if c := crc16([]byte("123456789")); c != 0x6F91 {
		t.Errorf("MCRF4XX check = %04X, want 6F91", c)
	}
	if c := ^crc16([]byte("123456789")); c != 0x906E {
		t.Errorf("X-25 check = %04X, want 906E", c)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"short", []byte{0x00, 0x00}},
		{"len FF", Append(nil, 0, 0x00, nil, LRC)[:2]},
		{"length mismatch", []byte{0x00, 0x00, 0x02, 0x01, 0x01}},
		{"I reserved bits", Append(nil, 0, 0x01, nil, LRC)},
		{"R with data", Append(nil, 0, 0x80, []byte{1}, LRC)},
		{"R reserved error", Append(nil, 0, 0x83, nil, LRC)},
		{"R bit 6", Append(nil, 0, 0xA0, nil, LRC)},
		{"S reserved fn", Append(nil, 0, 0xC5, nil, LRC)},
		{"S IFS no inf", Append(nil, 0, 0xC1, nil, LRC)},
		{"S IFS zero", Append(nil, 0, 0xC1, []byte{0}, LRC)},
		{"S resynch with inf", Append(nil, 0, 0xC0, []byte{1}, LRC)},
	}
	for _, tc := range tests {
		if _, err := Decode(tc.raw, LRC); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Decode(% X) = %v, want ErrFormat", tc.name, tc.raw, err)
		}
	}
}

func TestPCB(t *testing.T) {
	b := Block{PCB: IPCB(1, true)}
	if b.Kind() != IBlock || b.NS() != 1 || !b.More() || b.PCB != 0x60 {
		t.Errorf("IPCB(1,true) = %02X", b.PCB)
	}
	b = Block{PCB: RPCB(1, REDCError)}
	if b.Kind() != RBlock || b.NR() != 1 || b.RErr() != REDCError || b.PCB != 0x91 {
		t.Errorf("RPCB = %02X", b.PCB)
	}
	b = Block{PCB: SPCB(SWTX, true)}
	if b.Kind() != SBlock || b.SFunc() != SWTX || !b.IsResponse() || b.PCB != 0xE3 {
		t.Errorf("SPCB = %02X", b.PCB)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, 0, 0x00, []byte{0x00, 0xA4, 0x04, 0x00, 0x00}, LRC), uint8(0))
	f.Add(Append(nil, 0, 0xC1, []byte{0xFE}, CRCCCID), uint8(1))
	f.Add(Append(nil, 0, 0xE3, []byte{0x02}, CRCX25), uint8(2))
	f.Add(Append(nil, 0, 0x92, nil, LRC), uint8(0))
	f.Add([]byte{0x00, 0x60, 0xFF}, uint8(0))
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, e uint8) {
		edc := EDC(e % 3)
		b, err := Decode(raw, edc)
		if err != nil {
			return
		}
		if len(b.Inf) > MaxInf || len(raw) != BlockLen(byte(len(b.Inf)), edc) {
			t.Fatalf("accepted inconsistent block % X", raw)
		}
		again := Append(nil, b.NAD, b.PCB, b.Inf, edc)
		if !bytes.Equal(again, raw) {
			t.Fatalf("re-encoding % X gave % X", raw, again)
		}
	})
}

func TestDecodeAllocs(t *testing.T) {
	raw := Append(make([]byte, 0, MaxBlockLen), 0, 0x40, make([]byte, 200), CRCX25)
	buf := make([]byte, 0, MaxBlockLen)
	if n := testing.AllocsPerRun(100, func() {
		buf = Append(buf[:0], 0, 0x40, raw[3:203], CRCX25)
		if _, err := Decode(buf, CRCX25); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Append+Decode allocate %v times", n)
	}
}
