package balancer

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseStatFile feeds arbitrary bytes to the stats file parser: it
// must not panic, and every record it accepts must survive a write and a
// second parse unchanged.
func FuzzParseStatFile(f *testing.F) {
	f.Add([]byte("sat1,0,0963,000000,1234,0000,182,47,1711500000,0,8C\n"))
	f.Add([]byte("# c\n;x\n\nA,4,0500,032830,0001,0002,99999,0,0,3,FF\n"))
	f.Add([]byte("sat1 rc 0 caid 0963 prid 000000 srvid 1234 time avg 182 ms ecms 47 last 1711500000 fail 0 len 8C\n"))
	f.Add([]byte("a,b,c\n,,,,,,,,,,\n"))
	f.Add([]byte(strings.Repeat("x", 5000)))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, _, _ := ParseStatFile(bytes.NewReader(in))
		var buf bytes.Buffer
		if err := WriteStatFile(&buf, recs); err != nil {
			t.Fatal(err)
		}
		again, probs, err := ParseStatFile(&buf)
		if err != nil || len(probs) != 0 || len(again) != len(recs) {
			t.Fatalf("rewritten records do not parse: %v %v (%d vs %d)", err, probs, len(again), len(recs))
		}
		for i := range recs {
			if recs[i] != again[i] {
				t.Fatalf("record %d changed: %+v -> %+v", i, recs[i], again[i])
			}
		}
	})
}

// FuzzLists feeds arbitrary text to the option list parsers.
func FuzzLists(f *testing.F) {
	for _, s := range []string{"0963,0500&FF00:0501", "0500:032830,033C00;0963:000000", "1234,!5678", "1,2,64", "0963:2,17:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var a CAIDList
		var b CAIDIdentList
		var c ServiceList
		var d Groups
		var e CAIDValueList
		for _, u := range []interface{ UnmarshalText([]byte) error }{&a, &b, &c, &d, &e} {
			if u.UnmarshalText([]byte(s)) == nil {
				m := u.(interface{ MarshalText() ([]byte, error) })
				out, err := m.MarshalText()
				if err != nil {
					t.Fatal(err)
				}
				if err := u.UnmarshalText(out); err != nil {
					t.Fatalf("%T: own output %q rejected: %v", u, out, err)
				}
			}
		}
	})
}
