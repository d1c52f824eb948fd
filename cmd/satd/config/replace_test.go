package config

import (
	"errors"
	"testing"
)

// TestReloadRefusesEmptyOrPartial (issue 16 row 17): a reload of an empty
// file, or of one that leaves out a section in force, is refused naming the
// rule; a file that says what it means is accepted.
func TestReloadRefusesEmptyOrPartial(t *testing.T) {
	running, err := Parse("running", []byte(`
[web]
listen = "127.0.0.1:8081"
[stream]
enabled = true
[[stream.mount]]
mount-name = "/a.mp3"
upstream = ["http://127.0.0.1:9/a"]
[[reader]]
label = "c"
protocol = "constcw"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, doc string
		want      error
	}{
		{"zero bytes", "", ErrEmptyConfig},
		{"comments only", "# nothing\n\n", ErrEmptyConfig},
		{"stream and readers left out", "[web]\nlisten = \"127.0.0.1:8081\"\n", ErrMissingSection},
		{"readers left out", "[web]\nlisten = \"127.0.0.1:8081\"\n[stream]\nenabled = false\n", ErrMissingSection},
		{"said explicitly", "reader = []\n[web]\nlisten = \"127.0.0.1:8081\"\n[stream]\nenabled = false\n", nil},
	} {
		if _, err := Parse(tc.name, []byte(tc.doc)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err := CheckReplacement([]byte(tc.doc), running)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && !containsRule(err) {
			t.Errorf("%s: %q does not say which rule", tc.name, err)
		}
	}
	// A running configuration at the defaults accepts any valid file.
	if err := CheckReplacement([]byte("[log]\nlevel = \"debug\"\n"), Default()); err != nil {
		t.Errorf("defaults in force: %v", err)
	}
}

func containsRule(err error) bool {
	s := err.Error()
	for i := 0; i+5 <= len(s); i++ {
		if s[i:i+5] == "rule:" {
			return true
		}
	}
	return false
}
