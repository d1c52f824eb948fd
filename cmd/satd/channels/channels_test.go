package channels

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The documents are written from the formats' reference descriptions (see
// the package comment), not from this parser.
const (
	srvidDoc = "# comment\n" +
		"0B00,0B01:0001|Demo Provider|Demo One|TV|Demo package\n" +
		"0963:000a|Other|Radio Two|radio|\n" +
		"0B00:zz|x|bad sid|\n" +
		"not a line\n"
	srvid2Doc = "0001:0B00@000000,0963|Demo One HD|TV|desc|Demo Provider\n" +
		"0002:0B00|Demo Two||| \n" +
		"0003:0500@023800|Third|TV||Viaccess land\n" +
		"0004:0B00@XYZ|bad provider|||\n"
	lamedb4Doc = "eDVB services /4/\ntransponders\n00c00000:0001:0001\n\ts 11778000:27500000:1:4:192:2:0\n/\nend\n" +
		"services\n0001:00c00000:0001:0001:1:0\nLamedb One\np:Lame Provider,c:000200,C:0b00\n" +
		"0005:00c00000:0001:0001:2:0\nLamedb Radio\np:Lame Provider\nend\nBouquets\n"
	lamedb5Doc = "eDVB services /5/\n" +
		"t:00c00000:0001:0001,s:11778000:27500000:1:4:192:2:0\n" +
		"s:0006:00c00000:0001:0001:1:0,\"Five, with comma\",p:Five Provider,C:0b00\n" +
		"s:zz:00c00000,\"bad\"\n"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func(string, []byte) ([]Entry, []Problem, error)
		doc   string
		want  []string // SID=name
		probs []string
	}{
		{"oscam.srvid", ParseSrvid, srvidDoc, []string{"0001=Demo One", "000A=Radio Two"}, []string{"oscam.srvid:4: service ID \"zz\" is not hex", "oscam.srvid:5: not CAID"}},
		{"oscam.srvid2", ParseSrvid2, srvid2Doc, []string{"0001=Demo One HD", "0002=Demo Two", "0003=Third"}, []string{"oscam.srvid2:4: provider ID \"XYZ\""}},
		{"lamedb", ParseLamedb, lamedb4Doc, []string{"0001=Lamedb One", "0005=Lamedb Radio"}, nil},
		{"lamedb5", ParseLamedb, lamedb5Doc, []string{"0006=Five, with comma"}, []string{"lamedb5:4: not s:SID"}},
	} {
		es, probs, err := tc.parse(tc.name, []byte(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%04X=%s", e.SID, e.Name))
		}
		if strings.Join(got, ";") != strings.Join(tc.want, ";") {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if len(probs) != len(tc.probs) {
			t.Errorf("%s: problems %v, want %v", tc.name, probs, tc.probs)
			continue
		}
		for i, p := range probs {
			if !strings.HasPrefix(p.String(), tc.probs[i]) {
				t.Errorf("%s: problem %q, want %q...", tc.name, p, tc.probs[i])
			}
		}
	}
}

func TestLookupOrder(t *testing.T) {
	es1, _, _ := ParseSrvid("s", []byte(srvidDoc))
	es2, _, _ := ParseSrvid2("s2", []byte(srvid2Doc))
	tab := NewTable(append(es1, es2...))
	for _, tc := range []struct {
		caid uint16
		prov uint32
		sid  uint16
		want string
	}{
		{0x0B00, 0, 1, "Demo One HD"},    // srvid2 overrides srvid
		{0x0B01, 0, 1, "Demo One"},       // only in srvid
		{0x0500, 0x023800, 3, "Third"},   // CAID@PROVID
		{0x0500, 0x000001, 3, "Third"},   // another provider: the SID alone
		{0x1800, 0, 0x000A, "Radio Two"}, // unknown CAID: the SID alone
		{0x0B00, 0, 0x0999, ""},          // unknown
	} {
		if got := tab.Name(tc.caid, tc.prov, tc.sid); got != tc.want {
			t.Errorf("%04X@%06X:%04X = %q, want %q", tc.caid, tc.prov, tc.sid, got, tc.want)
		}
	}
	var nilTable *Table
	if nilTable.Name(1, 2, 3) != "" || nilTable.Len() != 0 {
		t.Error("a nil table names something")
	}
}

func TestSrvid2RoundTrip(t *testing.T) {
	es, _, _ := ParseSrvid2("s2", []byte(srvid2Doc))
	es = append(es, Entry{SID: 9, Name: "pipe | in name", Provider: "new\nline"})
	var b bytes.Buffer
	if err := NewTable(es).WriteSrvid2(&b); err != nil {
		t.Fatal(err)
	}
	back, probs, err := ParseSrvid2("back", b.Bytes())
	if err != nil || len(probs) != 0 || len(back) != len(es) {
		t.Fatalf("round trip: %d entries (want %d), %v %v\n%s", len(back), len(es), probs, err, b.String())
	}
	if back[0].CAIDs[0] != (CAIDProv{0x0B00, 0, true}) || back[len(back)-1].Name != "pipe / in name" {
		t.Errorf("round trip changed entries: %+v", back)
	}
}

// TestBounds hits MaxEntries and the field length cap.
func TestBounds(t *testing.T) {
	var b strings.Builder
	for i := range MaxEntries + 1 {
		fmt.Fprintf(&b, "%04X:0B00|n%d|||\n", i%0x10000, i)
	}
	if _, _, err := ParseSrvid2("big", []byte(b.String())); !errors.Is(err, ErrTooMany) {
		t.Errorf("%d entries: %v, want ErrTooMany", MaxEntries+1, err)
	}
	es, _, _ := ParseSrvid2("long", []byte("0001:0B00|"+strings.Repeat("x", 10000)+"|||\n"))
	if len(es) != 1 || len(es[0].Name) != maxField {
		t.Errorf("a 10000-byte name kept as %d bytes", len(es[0].Name))
	}
}

func FuzzParse(f *testing.F) {
	for _, d := range []string{srvidDoc, srvid2Doc, lamedb4Doc, lamedb5Doc} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, p := range []func(string, []byte) ([]Entry, []Problem, error){ParseSrvid, ParseSrvid2, ParseLamedb} {
			es, _, _ := p("fuzz", doc)
			if len(es) > MaxEntries {
				t.Fatalf("%d entries", len(es))
			}
			var b bytes.Buffer
			NewTable(es).WriteSrvid2(&b)
		}
	})
}
