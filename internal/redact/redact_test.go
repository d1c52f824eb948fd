package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://u:secret@h:8000/a", "http://u:xxxxx@h:8000/a"},
		{"plain text", "plain text"},
		{"http://h/a?x=u:p@q", "http://h/a?x=u:p@q"}, // not userinfo
		{"http://token@h/", "http://token@h/"},       // no password
		{`Get "http://a:b@h/x": EOF; then https://c:d:e@g`, `Get "http://a:xxxxx@h/x": EOF; then https://c:xxxxx@g`},
		{"http://u:p@ss@h/", "http://u:xxxxx@h/"},
		{"://", "://"},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Text("no urls in this log line") }); n != 0 {
		t.Errorf("plain text allocates %v", n)
	}
}

func TestRestore(t *testing.T) {
	olds := []string{"http://u:one@a/", "http://v:two@b/"}
	if v, hidden := Restore("http://v:xxxxx@b/", olds); v != olds[1] || hidden {
		t.Errorf("unchanged: %q %v", v, hidden)
	}
	if v, hidden := Restore("http://v:xxxxx@c/", olds); v != "http://v:xxxxx@c/" || !hidden {
		t.Errorf("edited: %q %v", v, hidden)
	}
	if v, hidden := Restore("http://w:new@c/", olds); v != "http://w:new@c/" || hidden {
		t.Errorf("new: %q %v", v, hidden)
	}
}

// TestHandler (issue 16 row 6): no log record carries a URL password,
// whether in the message, a string, an error or a group.
func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil))).With("base", "http://a:pw1@h/")
	log.Info("fetch http://b:pw2@h/ failed", "url", "http://c:pw3@h/", "err", errors.New(`Get "http://d:pw4@h/": refused`),
		slog.Group("g", "u", "http://e:pw5@h/"))
	out := buf.String()
	for _, pw := range []string{"pw1", "pw2", "pw3", "pw4", "pw5"} {
		if strings.Contains(out, pw) {
			t.Errorf("log shows %s: %s", pw, out)
		}
	}
	if strings.Count(out, Mask) != 5 {
		t.Errorf("want 5 masks: %s", out)
	}
}
