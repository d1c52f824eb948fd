package zap

import (
	"strings"
	"testing"

	"satd.dev/satd/dvbapi"
)

// TestParseVerifyModes checks the system/verify combinations a scenario
// may use and the errors for those it may not.
func TestParseVerifyModes(t *testing.T) {
	const svc = "[[service]]\nname = \"a\"\nsid = 1\n"
	tests := []struct {
		name, doc, err string
	}{
		{"default nonzero", svc, ""},
		{"sha256 conax", "verify = \"sha256\"\n" + svc + "system = \"conax\"\n", ""},
		{"sha256 needs a card system", "verify = \"sha256\"\n" + svc, "needs system"},
		{"derived needs test", "verify = \"derived\"\n" + svc + "system = \"seca\"\n", "needs system = \"test\""},
		{"constcw needs a file", svc + "verify = \"constcw\"\n", "needs the scenario's constcw file"},
		{"constcw with file", "constcw = \"x.cw\"\n" + svc + "verify = \"constcw\"\n", ""},
		{"any", "verify = \"any\"\n" + svc + "system = \"conax\"\n", ""},
		{"unknown verify", "verify = \"exact\"\n" + svc, "verify \"exact\""},
		{"unknown system", svc + "system = \"irdeto\"\n", "system \"irdeto\""},
	}
	for _, tc := range tests {
		sc, err := Parse(tc.name, []byte(tc.doc))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case err == nil && sc.Services[0].Provider != 0x0064:
			t.Errorf("%s: provider %04X", tc.name, sc.Services[0].Provider)
		}
	}
}

// TestRearmedToSeen: a re-arm to the parity that was the only one
// delivered since the last filter is a violation; when both went out
// before the new filter came, the server may answer either.
func TestRearmedToSeen(t *testing.T) {
	narrow := func(table byte) dvbapi.Filter {
		var f dvbapi.Filter
		f.Filter[0], f.Mask[0] = table, 0xFF
		return f
	}
	var open dvbapi.Filter
	open.Filter[0], open.Mask[0] = 0x80, 0xF0
	for _, tc := range []struct {
		name string
		f    dvbapi.Filter
		sent uint8
		want bool
	}{
		{"same parity 0x80 after only 0x80", narrow(0x80), 0b01, true},
		{"same parity 0x81 after only 0x81", narrow(0x81), 0b10, true},
		{"other parity", narrow(0x81), 0b01, false},
		{"both parities in flight", narrow(0x80), 0b11, false},
		{"nothing delivered since", narrow(0x80), 0, false},
		{"open filter", open, 0b01, false},
	} {
		if got := rearmedToSeen(tc.f, tc.sent); got != tc.want {
			t.Errorf("%s: rearmedToSeen = %v, want %v", tc.name, got, tc.want)
		}
	}
}
