package constcw_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/constcw"
)

const rulesFile = "../../testdata/constcw/rules.cw"

// cw is what a lookup returns for a rule whose even CW bytes are all even
// and odd CW bytes all odd: their checksum bytes are wrong, so the default
// policy fixes them.
func cw(even, odd byte) [16]byte {
	var c [16]byte
	for i := range 8 {
		c[i], c[8+i] = even, odd
	}
	cardreader.FixCWChecksums(&c)
	return c
}

// TestCWChecksumPolicy: a rule's wrong checksum byte is fixed by default
// and refused with dropbadcws; a good CW passes either way.
func TestCWChecksumPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "constant.cw")
	rules := "2600:0:1:0:0::01 02 03 06 04 05 06 0F 11 12 13 36 14 15 16 3F\n" +
		"2600:0:2:0:0::01 02 03 07 04 05 06 0F 11 12 13 36 14 15 16 3F\n"
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	good := [16]byte{1, 2, 3, 6, 4, 5, 6, 0x0F, 0x11, 0x12, 0x13, 0x36, 0x14, 0x15, 0x16, 0x3F}
	for _, tc := range []struct {
		name   string
		policy cardreader.CWPolicy
		sid    uint16
		ok     bool
		err    error
	}{
		{"good, fix", cardreader.FixBadCWs, 1, true, nil},
		{"good, drop", cardreader.DropBadCWs, 1, true, nil},
		{"bad, fixed", cardreader.FixBadCWs, 2, true, nil},
		{"bad, dropped", cardreader.DropBadCWs, 2, false, constcw.ErrBadCW},
	} {
		f := constcw.Open(path)
		f.SetCWPolicy(tc.policy)
		got, ok, err := f.Lookup(constcw.Query{CAID: 0x2600, SID: tc.sid})
		if ok != tc.ok || !errors.Is(err, tc.err) || (ok && got != good) {
			t.Errorf("%s: % X %v %v; want %v %v", tc.name, got, ok, err, tc.ok, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), ":2:") {
			t.Errorf("%s: error %q does not name line 2", tc.name, err)
		}
	}
}

// TestMatchingRules follows the spec: CAID and SID exact, PROVID 0 any,
// PIDs match when either side is 0 or equal, first match wins.
func TestMatchingRules(t *testing.T) {
	f := constcw.Open(rulesFile)
	tests := []struct {
		name string
		q    constcw.Query
		ok   bool
		cw   [16]byte
	}{
		{"first match wins", constcw.Query{CAID: 0x2600, SID: 1}, true, cw(0x11, 0x12)},
		{"provid 0 in rule matches any", constcw.Query{CAID: 0x2600, PROVID: 0x1234, SID: 1}, true, cw(0x11, 0x12)},
		{"request pids 0 match rule pids", constcw.Query{CAID: 0x2600, SID: 1, PMTPID: 0x40, ECMPID: 0x41}, true, cw(0x11, 0x12)},
		{"caid exact", constcw.Query{CAID: 0x2601, SID: 1}, false, [16]byte{}},
		{"sid exact", constcw.Query{CAID: 0x2600, SID: 0}, false, [16]byte{}},
		{"pmt pid equal", constcw.Query{CAID: 0x0B00, SID: 2, PMTPID: 0x100}, true, cw(0x21, 0x22)},
		{"pmt pid unknown in request", constcw.Query{CAID: 0x0B00, SID: 2}, true, cw(0x21, 0x22)},
		{"pmt pid differs: next line", constcw.Query{CAID: 0x0B00, SID: 2, PMTPID: 0x101}, true, cw(0x23, 0x24)},
		{"provid in rule must match", constcw.Query{CAID: 0x0100, PROVID: 0x64, SID: 3, ECMPID: 0x500, VPID: 0x200}, true, cw(0x31, 0x32)},
		{"provid differs: wildcard line", constcw.Query{CAID: 0x0100, PROVID: 0x65, SID: 3}, true, cw(0x33, 0x34)},
		{"vpid differs: wildcard line", constcw.Query{CAID: 0x0100, PROVID: 0x64, SID: 3, VPID: 0x201}, true, cw(0x33, 0x34)},
		{"ecm pid differs: wildcard line", constcw.Query{CAID: 0x0100, PROVID: 0x64, SID: 3, ECMPID: 0x501}, true, cw(0x33, 0x34)},
	}
	for _, tc := range tests {
		got, ok, err := f.Lookup(tc.q)
		if err != nil || ok != tc.ok || got != tc.cw {
			t.Errorf("%s: %+v → % X %v %v; want % X %v", tc.name, tc.q, got, ok, err, tc.cw, tc.ok)
		}
	}
}

// TestReloadOnEdit checks that edits apply without reopening the file.
func TestReloadOnEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "constant.cw")
	write := func(s string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	q := constcw.Query{CAID: 0x2600, SID: 7}
	f := constcw.Open(path)
	if f.Present() {
		t.Fatal("missing file counts as present")
	}
	base := time.Now().Add(-time.Hour)
	write("2600:0:7:0:0::01 01 01 01 01 01 01 01 02 02 02 02 02 02 02 02\n", base)
	if got, ok, err := f.Lookup(q); !ok || err != nil || got != cw(1, 2) {
		t.Fatalf("first read: % X %v %v", got, ok, err)
	}
	// Same size, new content and time.
	write("2600:0:7:0:0::03 03 03 03 03 03 03 03 04 04 04 04 04 04 04 04\n", base.Add(time.Second))
	if got, ok, err := f.Lookup(q); !ok || err != nil || got != cw(3, 4) {
		t.Fatalf("after edit: % X %v %v", got, ok, err)
	}
	write("2600:0:8:0:0::03 03 03 03 03 03 03 03 04 04 04 04 04 04 04 04\n", base.Add(2*time.Second))
	if _, ok, err := f.Lookup(q); ok || err != nil {
		t.Fatalf("rule removed but still found (%v, %v)", ok, err)
	}
	write("2600:0:7:0:0::zz\n", base.Add(3*time.Second))
	if _, _, err := f.Lookup(q); !errors.Is(err, constcw.ErrSyntax) || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("broken edit: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if f.Present() {
		t.Error("removed file still present")
	}
}

// TestParseErrors checks that every error names the line and the field.
func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2600:0:1:0:0", "found 5 fields"},
		{"26000:0:1:0:0::" + strings.Repeat("00 ", 16), "CAID"},
		{"2600:1234567:1:0:0::" + strings.Repeat("00 ", 16), "PROVID"},
		{"2600:0:x:0:0::" + strings.Repeat("00 ", 16), "SID"},
		{"2600:0:1:0:0::" + strings.Repeat("00 ", 15), "found 15"},
		{"2600:0:1:0:0::" + strings.Repeat("00 ", 15) + "100", "CW byte 16"},
		{"# ok\n\n2600:0:1:0::" + strings.Repeat("00 ", 16), "t.cw:3: "},
	}
	for _, tc := range tests {
		_, err := constcw.Parse("t.cw", []byte(tc.in))
		if !errors.Is(err, constcw.ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{rulesFile, "../../testdata/constcw/demo.cw"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("2600:0:1:0:0::00"))
	f.Add([]byte(":::::::"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := constcw.Parse("fuzz", data)
		if err != nil && !errors.Is(err, constcw.ErrSyntax) && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("error without ErrSyntax: %v", err)
		}
		for _, r := range rules {
			q := constcw.Query{CAID: r.CAID, PROVID: r.PROVID, SID: r.SID}
			if m, ok := constcw.Match(rules, q); !ok || m.Line > r.Line {
				t.Fatalf("rule at line %d does not match its own query", r.Line)
			}
		}
	})
}
