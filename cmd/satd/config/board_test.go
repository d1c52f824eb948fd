package config

import (
	"errors"
	"strings"
	"testing"
)

const boardDoc = `
[[board]]
name = "acme-rx2"
chip = "tda8035"
device = "/dev/ttyS1"
[board.pins]
cmdvcc = "!gpiochip0:17"
rst = "gpiochip0:18"
off = "gpiochip0:19"

[[reader]]
label = "slot0"
protocol = "internal"
board = "acme-rx2"

[[reader]]
label = "slot1"
protocol = "internal"
board = "acme-rx2"
device = "/dev/ttyS2"
[reader.pins]
off = "gpiochip0:20"
`

// TestBoardProfiles checks that readers take device, chip and pins from a
// [[board]] table, overriding single entries.
func TestBoardProfiles(t *testing.T) {
	cfg, err := Parse("satd.toml", []byte(boardDoc))
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := cfg.Readers[0], cfg.Readers[1]
	if r0.Profile.Device != "/dev/ttyS1" || r0.Profile.Chip != "tda8035" || r0.Profile.Pins.RST != "gpiochip0:18" {
		t.Errorf("slot0 profile %+v", r0.Profile)
	}
	if r1.Device != "/dev/ttyS2" || r1.Pins.OFF != "gpiochip0:20" || r1.Profile.Pins.CMDVCC != "!gpiochip0:17" {
		t.Errorf("slot1 %q %+v, profile %+v", r1.Device, r1.Pins, r1.Profile)
	}
}

func TestBoardProblems(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want, key string
		line                  int
	}{
		{"bad line", `cmdvcc = "!gpiochip0:17"`, `cmdvcc = "gpiochip0:x"`, "board[0].pins.cmdvcc", 7},
		{"bad chip", `chip = "tda8035"`, `chip = "tda9999"`, "board[0].chip", 4},
		{"unknown board", `board = "acme-rx2"` + "\n\n[[reader]]", `board = "acme-rx3"` + "\n\n[[reader]]", "reader[0].board", 14},
		{"duplicate name", `[[reader]]
label = "slot0"`, `[[board]]
name = "acme-rx2"

[[reader]]
label = "slot0"`, "board[1].name", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(boardDoc, tc.edit, tc.want, 1)
			_, err := Parse("satd.toml", []byte(doc))
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("no problem reported: %v", err)
			}
			found := false
			for _, p := range ps {
				found = found || (p.Key == tc.key && p.Line == tc.line)
			}
			if !found {
				t.Errorf("want a problem at satd.toml:%d %s; got\n%v", tc.line, tc.key, err)
			}
		})
	}
}
