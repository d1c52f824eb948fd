package zap

import (
	"strings"
	"testing"
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
