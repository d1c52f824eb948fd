package lbsim

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseTraceErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"t": 5, "advance": true}` + "\n" + `{"t": 1, "advance": true}`, "line 2: t 1 is before"},
		{`{"t": 0, "ecm": {"caid": "0963", "len": 140, "client": "u"}, "answers": {"A": "maybe:1"}}`, "line 1: answer of A"},
		{`{"t": 0, "ecm": {"caid": "XYZ", "len": 140, "client": "u"}}`, "ecm caid"},
		{`{"t": 0, "ecm": {"caid": "0963", "client": "u"}}`, `"len"`},
		{`{"t": 0, "ecm": {"caid": "0963", "len": 1}}`, `"client"`},
		{`{"t": 0, "bogus": 1}`, "unknown field"},
		{`{"t": 0, "advance": true, "remove": "A"}`, "exactly one"},
		{`{"advance": true}`, `"t"`},
		{`not json`, "line 1"},
		{`{"t": 0, "ecm": {"caid": "0963", "len": 1, "client": "u", "data": "ABC"}}`, "not hex"},
	} {
		_, err := ParseTrace(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
	evs, err := ParseTrace(strings.NewReader("# comment\n\n" + `{"t": 3, "ecm": {"caid": "0963", "prid": "000000", "srvid": "1234", "chid": "0001", "len": 140, "client": "u1", "data": "8070"}, "answers": {"A": "found:120", "B": "notfound:40", "C": "timeout", "D": "timeout:300"}}` + "\n" + `{"t": 4, "remove": "A"}`))
	if err != nil || len(evs) != 2 || evs[0].Line != 3 || evs[0].ECM.CHID != 1 || evs[0].Answers["A"].DelayMs != 120 ||
		!evs[0].Answers["C"].Silent || evs[0].Answers["D"].Silent || evs[1].Kind != EventRemove {
		t.Fatalf("%+v %v", evs, err)
	}
}

func TestUnknownReaderInTrace(t *testing.T) {
	cfg, err := ParseConfig([]byte("[balancer]\nlb_mode = 1\n[[reader]]\nlabel = \"A\"\n"), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := ParseTrace(strings.NewReader(`{"t": 0, "ecm": {"caid": "0963", "len": 1, "client": "u"}, "answers": {"Q": "found:1"}}`))
	if err := s.Run(evs, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown reader "Q"`) {
		t.Fatalf("err %v", err)
	}
}

func TestCardRemoval(t *testing.T) {
	cfg, _ := ParseConfig([]byte("[balancer]\nlb_mode = 1\n[[reader]]\nlabel = \"A\"\nlocal = true\n[[reader]]\nlabel = \"B\"\n"), "cfg")
	s, _ := New(cfg, false, nil)
	evs, err := ParseTrace(strings.NewReader(`{"t": 0, "remove": "A"}
{"t": 10, "ecm": {"caid": "0963", "len": 140, "client": "u"}, "answers": {"A": "found:10", "B": "found:50"}}
{"t": 1000, "insert": "A"}
{"t": 1010, "ecm": {"caid": "0963", "len": 140, "client": "u"}, "answers": {"A": "found:10", "B": "found:50"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.Run(evs, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.Contains(lines[0], `"asked":[{"reader":"B"`) || !strings.Contains(lines[0], `"by":"B"`) || !strings.Contains(lines[1], `"by":"A"`) {
		t.Fatalf("output:\n%s", out.String())
	}
}

// FuzzParseTrace feeds arbitrary lines to the trace parser: no panic, and
// accepted traces replay without error against a three-reader config.
func FuzzParseTrace(f *testing.F) {
	f.Add([]byte(`{"t": 0, "ecm": {"caid": "0963", "prid": "000000", "srvid": "1234", "chid": "0000", "len": 140, "client": "u1", "data": "80"}, "answers": {"A": "found:120", "B": "notfound:40", "C": "timeout"}}`))
	f.Add([]byte(`{"t": 10, "advance": true}` + "\n" + `{"t": 20, "remove": "A"}` + "\n" + `{"t": 30, "insert": "A"}`))
	f.Add([]byte(`{"t": -1}`))
	f.Add([]byte("{}\n[]\n\"x\"\n"))
	cfg, err := ParseConfig([]byte("[balancer]\nlb_mode = 1\nmax_inflight = 8\n[[reader]]\nlabel = \"A\"\n[[reader]]\nlabel = \"B\"\n[[reader]]\nlabel = \"C\"\nlocal = true\n"), "cfg")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		evs, err := ParseTrace(bytes.NewReader(in))
		if err != nil || len(evs) > 50 {
			return
		}
		s, err := New(cfg, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Run(evs, &bytes.Buffer{})
	})
}
