package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSaveKeepsComments (issue 16 row 20): a save from the form keeps the
// file's own comments above their keys, the header at the top, and the
// comments of a removed key at the end; a second save adds nothing more.
func TestSaveKeepsComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "satd.toml")
	doc := `# My receiver, living room.
# Do not touch the readers.

[global]
state_dir = "/tmp/x"

[web]
# LAN address, see router
listen = "127.0.0.1:8081"
# metrics for the NAS
metrics_public = false

[[reader]]
# the card from the shop
label = "c"
protocol = "constcw"
`
	os.WriteFile(path, []byte(doc), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Web.Listen = "127.0.0.1:8082"
	if err := Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	s := string(got)
	for _, want := range []string{"# My receiver, living room.\n# Do not touch the readers.\n", "# LAN address, see router", "# the card from the shop", "# metrics for the NAS"} {
		if !strings.Contains(s, want) {
			t.Errorf("saved file lost %q:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(s, "# My receiver") {
		t.Errorf("header not at the top")
	}
	if i, j := strings.Index(s, "# LAN address"), strings.Index(s, "listen = '127.0.0.1:8082'"); i < 0 || j < 0 || i > j || strings.Contains(s[i:j], "\n[") {
		t.Errorf("comment not above its key:\n%s", s)
	}
	if _, err := Parse(path, got); err != nil {
		t.Fatalf("saved file does not load: %v", err)
	}
	if err := Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if string(again) != s {
		t.Errorf("a second save changed the file:\n%s", again)
	}
	// The comment of a reader removed by the form moves to the end, and
	// stays there over the next saves.
	cfg.Readers = nil
	for range 2 {
		if err := Save(path, cfg); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = os.ReadFile(path)
	if n := strings.Count(string(got), "# the card from the shop"); n != 1 {
		t.Errorf("the removed reader's comment appears %d times:\n%s", n, got)
	}
}
