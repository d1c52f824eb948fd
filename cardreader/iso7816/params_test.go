package iso7816

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestTables(t *testing.T) {
	if Fi(0) != 372 || Fi(9) != 512 || Fi(7) != 0 || Di(7) != 64 || Di(8) != 12 || Di(0) != 0 || FMax(0) != 4e6 || FMax(0xA) != 7.5e6 {
		t.Error("table values differ from ISO 7816-3:2006")
	}
}

func TestTiming(t *testing.T) {
	tm := InitialTiming(3_571_200)
	if tm.Baud() != 9600 {
		t.Errorf("baud %d", tm.Baud())
	}
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"etu", tm.ETUs(1), 104166}, // 372/3.5712 MHz
		{"WT default", tm.WT(10), time.Second},
		{"CWT 13", tm.CWT(13), 854479166},
		{"CWT 5", tm.CWT(5), 4479166},
		{"BWT 4", tm.BWT(4), 1601145833},
		{"BGT", tm.BGT(), 2291666},
		{"initial WT", tm.InitialWaitingTime(), time.Second},
	}
	for _, tc := range tests {
		if d := tc.got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if b := (Timing{ClockHz: 4e6, F: 512, D: 32}).Baud(); b != 250000 {
		t.Errorf("TA1 96 at 4 MHz: %d baud", b)
	}
}

func TestPPSRoundTrip(t *testing.T) {
	req := PPS{Protocol: 0, HasPPS1: true, PPS1: 0x95}
	b := req.Append(nil)
	if !bytes.Equal(b, []byte{0xFF, 0x10, 0x95, 0x7A}) {
		t.Fatalf("PPS = % X, want FF 10 95 7A", b)
	}
	got, err := ParsePPS(b)
	if err != nil || got != req {
		t.Fatalf("ParsePPS = %+v, %v", got, err)
	}
	tests := []struct {
		name string
		resp []byte
		want FIDI
		bad  bool
	}{
		{"echo", b, 0x95, false},
		{"PPS1 omitted", PPS{}.Append(nil), DefaultFIDI, false},
		{"other PPS1", PPS{HasPPS1: true, PPS1: 0x94}.Append(nil), 0, true},
		{"other protocol", PPS{Protocol: 1, HasPPS1: true, PPS1: 0x95}.Append(nil), 0, true},
		{"bad PCK", []byte{0xFF, 0x10, 0x95, 0x7B}, 0, true},
		{"unrequested PPS2", PPS{HasPPS1: true, PPS1: 0x95, HasPPS2: true}.Append(nil), 0, true},
		{"short", []byte{0xFF, 0x10, 0x95}, 0, true},
		{"bad PPSS", []byte{0xFE, 0x00, 0xFE}, 0, true},
	}
	for _, tc := range tests {
		got, err := CheckPPSResponse(req, tc.resp)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("%s: CheckPPSResponse(% X) = %02X, %v", tc.name, tc.resp, byte(got), err)
		}
		if tc.bad && !errors.Is(err, ErrPPS) {
			t.Errorf("%s: error %v does not wrap ErrPPS", tc.name, err)
		}
	}
}

func TestSelectParameters(t *testing.T) {
	exactOnly := func(std ...int) func(int) int { // a UART with a few rates
		return func(b int) int {
			best := std[0]
			for _, s := range std {
				if abs(s-b) < abs(best-b) {
					best = s
				}
			}
			return best
		}
	}
	atr := func(s string) *ATR {
		a, err := ParseATR(mustHex(t, s), Lenient)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name    string
		atr     string
		o       SelectOptions
		want    FIDI
		proto   int
		pps     bool
		warm    bool
		wantErr bool
	}{
		{"TA1 96 at 4 MHz, any baud", "3B 10 96", SelectOptions{ClockHz: 4e6}, 0x96, 0, true, false, false},
		{"TA1 96 capped", "3B 10 96", SelectOptions{ClockHz: 4e6, MaxBaud: 130000}, 0x95, 0, true, false, false},
		{"TA1 18 standard UART", "3B 10 18", SelectOptions{ClockHz: 3_571_200, NearestBaud: exactOnly(9600, 38400, 115200)}, 0x18, 0, true, false, false},
		{"TA1 18 UART 2 % off", "3B 10 18", SelectOptions{ClockHz: 3_686_400, NearestBaud: exactOnly(9600, 19200, 38400, 115200)}, 0x11, 0, false, false, false},
		{"f(max) exceeded", "3B 10 96", SelectOptions{ClockHz: 6e6}, 0x11, 0, false, false, false},
		{"no PPS", "3B 10 96", SelectOptions{ClockHz: 4e6, NoPPS: true}, 0x11, 0, false, false, false},
		{"defaults", "3B 00", SelectOptions{ClockHz: 4e6}, 0x11, 0, false, false, false},
		{"second protocol forced", "3B 80 80 01 01", SelectOptions{ClockHz: 4e6, ForceProtocol: true, Protocol: 1}, 0x11, 1, true, false, false},
		{"specific mode", "3B 90 96 10 01", SelectOptions{ClockHz: 4e6}, 0x96, 1, false, false, false},
		{"specific implicit", "3B 90 96 10 11", SelectOptions{ClockHz: 4e6}, 0x11, 1, false, false, false},
		{"specific unusable, changeable", "3B 90 96 10 01", SelectOptions{ClockHz: 4e6, MaxBaud: 20000}, 0, 0, false, true, false},
		{"specific unusable, fixed", "3B 90 96 10 81", SelectOptions{ClockHz: 4e6, MaxBaud: 20000}, 0x96, 1, false, false, true},
	}
	for _, tc := range tests {
		s, err := SelectParameters(atr(tc.atr), tc.o)
		if tc.wantErr {
			if !errors.Is(err, ErrNoUsableMode) {
				t.Errorf("%s: err %v", tc.name, err)
			}
			continue
		}
		if err != nil || s.FIDI != tc.want || s.Protocol != tc.proto || (s.PPS != nil) != tc.pps || s.WarmReset != tc.warm {
			t.Errorf("%s: got %+v (pps %+v), %v; want FIDI %02X T=%d pps %v warm %v", tc.name, s, s.PPS, err, byte(tc.want), tc.proto, tc.pps, tc.warm)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestInverseByte(t *testing.T) {
	if InverseByte(TSInverseRaw) != TSInverse {
		t.Errorf("raw 03 -> %02X, want 3F", InverseByte(TSInverseRaw))
	}
	for i := range 256 {
		if InverseByte(InverseByte(byte(i))) != byte(i) {
			t.Fatalf("transform not an involution at %02X", i)
		}
	}
}
