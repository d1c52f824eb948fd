package update

// Issue 16's OTA rows: semver order, versions as names, pruned builds.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPreReleaseOrder (row 18): semver 2.0.0 §11 precedence, including the
// example chain of the specification.
func TestPreReleaseOrder(t *testing.T) {
	chain := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0-rc.9", "1.0.0-rc.10", "1.0.0", "1.1.0-rc9", "1.1.0-rc10", "1.1.0-rc10a", "1.1.0"}
	for i := range chain {
		for j := range chain {
			a, err1 := ParseVersion(chain[i])
			b, err2 := ParseVersion(chain[j])
			if err1 != nil || err2 != nil {
				t.Fatalf("%v %v", err1, err2)
			}
			if got, want := a.Compare(b), cmpInt(i, j); got != want {
				t.Errorf("%s vs %s: %d, want %d", chain[i], chain[j], got, want)
			}
		}
	}
	// Build metadata takes no part in the order.
	a, _ := ParseVersion("1.2.3+abc")
	b, _ := ParseVersion("1.2.3+def")
	if a.Compare(b) != 0 || a.String() != "1.2.3+abc" {
		t.Errorf("build metadata: %d %q", a.Compare(b), a)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestVersionIsAName (row 19): a version names a file; nothing that could
// leave the update directory parses.
func TestVersionIsAName(t *testing.T) {
	for _, bad := range []string{"1.0.0-../../x", "1.0.0-a/b", "1.0.0+../x", "1.0.0-", "1.0.0-rc..1", "1.0.0-01",
		"1.0.0-\x00", "1.0.0- rc", "1.0.0-" + string(make([]byte, 70))} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	os.WriteFile(payload, []byte("#!/bin/sh\necho satd x\n"), 0o755)
	if _, err := (Slots{Dir: filepath.Join(dir, "upd")}).Stage(t.Context(), payload, "../../escape", ""); err == nil {
		t.Error("Stage accepted a version with path characters")
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Error("a file was written outside the update directory")
	}
}

// TestOldBuildsPruned (row 21): after three updates and a rollback only
// the current build and one fallback stay in bin/.
func TestOldBuildsPruned(t *testing.T) {
	dir := t.TempDir()
	factory := filepath.Join(dir, "rootfs-satd")
	os.WriteFile(factory, []byte("#!/bin/sh\n"), 0o755)
	s := Slots{Dir: dir, Factory: factory}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	stage := func(v string) string {
		p := filepath.Join(bin, "satd-"+v)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, v := range []string{"1.1.0", "1.2.0", "1.3.0"} {
		if err := s.Switch(stage(v), v); err != nil {
			t.Fatal(err)
		}
		if err := s.Confirm(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, bin); !slices.Equal(got, []string{"satd-1.2.0", "satd-1.3.0"}) {
		t.Errorf("after 3 updates bin/ holds %v, want the current and one fallback", got)
	}
	if err := s.Switch(stage("1.4.0"), "1.4.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(factory, "test"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, bin); !slices.Equal(got, []string{"satd-1.3.0"}) {
		t.Errorf("after a rollback bin/ holds %v, want only the build rolled back to", got)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestFetchDeadlines (row 11): a server that accepts and never answers, or
// stops in the middle of a payload, fails the fetch instead of holding it.
func TestFetchDeadlines(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/half" {
			w.Header().Set("Content-Length", "1000")
			w.Write(make([]byte, 10))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := &Fetcher{SmallTimeout: 200 * time.Millisecond, Stall: 200 * time.Millisecond}
	if _, err := f.Small(t.Context(), srv.URL+"/manifest", 1<<10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("manifest from a silent server: %v, want a deadline error", err)
	}
	m := &Manifest{Size: 1000}
	for _, path := range []string{"/silent", "/half"} {
		err := f.Payload(t.Context(), srv.URL+path, filepath.Join(t.TempDir(), "part"), m, nil)
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), ErrStalled.Error()) {
			t.Errorf("payload %s: %v, want truncated by a stall", path, err)
		}
	}
	if defaultClient.Transport.(*http.Transport).ResponseHeaderTimeout == 0 {
		t.Error("the default update client has no response-header deadline")
	}
}
