package update

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSwitchFromFactory checks the first update of a box that still runs
// the rootfs copy: the factory executable becomes the rollback target.
func TestSwitchFromFactory(t *testing.T) {
	dir := t.TempDir()
	factory := filepath.Join(dir, "rootfs-satd")
	staged := filepath.Join(dir, "bin", "satd-1.1.0")
	os.MkdirAll(filepath.Dir(staged), 0o755)
	for _, p := range []string{factory, staged} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := (Slots{Dir: dir}).Switch(staged, "1.1.0"); err == nil {
		t.Fatal("switch without current nor factory succeeded; there would be nothing to roll back to")
	}
	s := Slots{Dir: dir, Factory: factory}
	if err := s.Switch(staged, "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if s.Current() != staged || s.Previous() != factory {
		t.Errorf("current %q previous %q; want %q and the factory %q", s.Current(), s.Previous(), staged, factory)
	}
	if tr, err := s.LoadTrial(); err != nil || tr == nil || tr.Version != "1.1.0" {
		t.Errorf("trial %+v, %v", tr, err)
	}
	if err := s.Rollback(factory, "test"); err != nil {
		t.Fatal(err)
	}
	if s.Current() != factory {
		t.Errorf("after rollback current %q, want the factory %q", s.Current(), factory)
	}
}
