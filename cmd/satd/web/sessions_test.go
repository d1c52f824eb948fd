package web

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSessionsSurviveOneRestart checks that live logins are carried over a
// restart through a file holding only hashes, once, and that expired or
// damaged entries log nobody in.
func TestSessionsSurviveOneRestart(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "web-sessions")

	old := newSessions(clock)
	old.setLimits(time.Hour, 10*time.Minute)
	live := old.create()
	now = now.Add(-20 * time.Minute)
	stale := old.create() // last seen 20 minutes before the save: idle too long
	now = now.Add(20 * time.Minute)
	if err := old.save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(live)) {
		t.Fatal("the sessions file holds a usable cookie value")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("sessions file mode %v, want 0600", fi.Mode().Perm())
	}

	next := newSessions(clock)
	next.setLimits(time.Hour, 10*time.Minute)
	if err := next.restore(path); err != nil {
		t.Fatal(err)
	}
	if !next.valid(live) {
		t.Error("a live login was lost over the restart")
	}
	if next.valid(stale) {
		t.Error("an idle login came back after the restart")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("sessions file still there after restore: %v", err)
	}

	third := newSessions(clock)
	third.setLimits(time.Hour, 10*time.Minute)
	if err := third.restore(path); err != nil || third.valid(live) {
		t.Errorf("second restore: %v, valid %v; logins survive one restart only", err, third.valid(live))
	}
}

func TestSessionsRestoreDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web-sessions")
	for _, doc := range []string{"{", `[{"key":"AAAA","created":"2026-11-21T12:00:00Z","last_seen":"2026-11-21T12:00:00Z"}]`} {
		os.WriteFile(path, []byte(doc), 0o600)
		s := newSessions(time.Now)
		s.setLimits(time.Hour, time.Hour)
		err := s.restore(path)
		if len(s.byKey) != 0 {
			t.Errorf("%q: restored %d sessions from a damaged file", doc, len(s.byKey))
		}
		if doc == "{" && err == nil {
			t.Errorf("%q: no error for unparsable JSON", doc)
		}
		if _, serr := os.Stat(path); !os.IsNotExist(serr) {
			t.Errorf("%q: damaged file left in place", doc)
		}
	}
}
