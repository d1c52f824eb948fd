package config

import (
	"strings"
	"testing"
)

// TestListenClash refuses two components on one address, with the line of
// the second key, and accepts distinct ports or distinct hosts.
func TestListenClash(t *testing.T) {
	for _, tc := range []struct {
		doc, want string // want "" = valid
	}{
		{"[web]\nlisten = '127.0.0.1:8080'\n[dvbapi]\nlisten = '127.0.0.1:8080'\n", "x.toml:4: dvbapi.listen: 127.0.0.1:8080 is already taken by web.listen (127.0.0.1:8080)"},
		{"[web]\nlisten = '0.0.0.0:8080'\n[dvbapi]\nlisten = '192.168.1.2:8080'\n", "dvbapi.listen: 192.168.1.2:8080 is already taken by web.listen"},
		{"[web]\nlisten = 'localhost:8080'\n[dvbapi]\nlisten = '127.0.0.1:8080'\n", "dvbapi.listen"},
		{"[web]\nlisten = '[::]:8080'\n[stream]\nenabled = true\nlisten = '10.0.0.1:8080'\n", "stream.listen: 10.0.0.1:8080 is already taken by web.listen"},
		{"[dvbapi]\nlisten = '127.0.0.1:8000'\n[stream]\nenabled = true\nlisten = ':8000'\n", "stream.listen: :8000 is already taken by dvbapi.listen"},
		{"[web]\nlisten = '127.0.0.1:8080'\n[dvbapi]\nlisten = '127.0.0.1:8081'\n", ""},
		{"[web]\nlisten = '10.0.0.1:8080'\n[dvbapi]\nlisten = '127.0.0.1:8080'\n", ""},
		{"[web]\nlisten = '127.0.0.1:8080'\n[dvbapi]\nenabled = false\nlisten = '127.0.0.1:8080'\n", ""},
		{"[web]\nlisten = '127.0.0.1:8000'\n[stream]\nenabled = false\nlisten = '127.0.0.1:8000'\n", ""},
	} {
		_, err := Parse("x.toml", []byte(tc.doc))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want valid", tc.doc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}
