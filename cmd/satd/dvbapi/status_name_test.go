package dvbapi

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestClientName: the CLIENT_INFO name is shown on the Status page, so
// control characters and invalid UTF-8 are blanked and the ends trimmed.
func TestClientName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Tvheadend 4.3-2161", "Tvheadend 4.3-2161"},
		{"Enigma2", "Enigma2"},
		{"  minisatip/1.3\n", "minisatip/1.3"},
		{"a\x00b\x1bc", "a b c"},
		{"VDR\xff\xfe", "VDR"},
		{"Kanal Ä", "Kanal Ä"},
		{"", ""},
	} {
		if got := clientName([]byte(tc.in)); got != tc.want {
			t.Errorf("clientName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClientName: any CLIENT_INFO name bytes give valid, printable,
// trimmed UTF-8 no longer than three bytes per input byte.
func FuzzClientName(f *testing.F) {
	for _, s := range []string{"Tvheadend 4.3", "Enigma2", "\x00\x01", "\xff", " x ", "Ä\u200b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := clientName(b)
		if !utf8.ValidString(got) || len(got) > 3*len(b) {
			t.Fatalf("clientName(%q) = %q", b, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("clientName(%q) = %q keeps %U", b, got, r)
			}
		}
		if got != "" && (got[0] == ' ' || got[len(got)-1] == ' ') {
			t.Fatalf("clientName(%q) = %q not trimmed", b, got)
		}
	})
}
