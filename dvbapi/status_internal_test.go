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

// BenchmarkServices measures one Status page snapshot of 4 clients with 8
// programmes each, reusing the caller's slice.
func BenchmarkServices(b *testing.B) {
	srv := NewServer(Options{Solver: &fixedSolver{cws: [][16]byte{examplePair(cwEven, cwOdd)}}})
	for range 4 {
		c := newConn(srv, nopRWC{}, srv.opt.Log, nil)
		c.feed(b, AppendClientInfo(nil, 2, "Tvheadend bench"))
		for sid := range uint16(8) {
			pm := CAPMT{ListManagement: ListAdd, Program: 0x100 + sid, CmdID: CmdOKDescrambling, PMTPID: 0x200 + sid,
				ECM: []ECMStream{{CAID: 0x0B00, PID: 0x300 + sid}}, Streams: []Stream{{Type: 2, PID: 0x400 + sid}}}
			c.feed(b, AppendCAPMT(nil, 2, 0, &pm))
		}
		srv.conns[c] = struct{}{}
	}
	var dst []Service
	if dst = srv.Services(dst); len(dst) != 32 {
		b.Fatalf("%d services, want 32", len(dst))
	}
	b.ReportAllocs()
	for b.Loop() {
		dst = srv.Services(dst)
	}
}
