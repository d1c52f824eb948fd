package slot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSCIConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sci0")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		c     func(c *Config)
		sci   bool
		wants string // "" = valid
	}{
		{"sci0 without pins", func(c *Config) { c.Device = "/dev/sci0" }, true, ""},
		{"sci1 of a built-in board", func(c *Config) { c.Board, c.Device = "vuplus", "/dev/sci1" }, true, ""},
		{"board device", func(c *Config) { c.Board = "dreambox" }, true, ""},
		{"regular file named sci0", func(c *Config) { c.Device = file }, true, "not a kernel smartcard device"},
		{"regular file on a sci board", func(c *Config) { c.Board, c.Device = "vuplus", "/etc/hostname" }, true, "not a kernel smartcard device"},
		{"uart path that is a file", func(c *Config) { c.Device = "/etc/hostname"; c.Pins = PinMap{CMDVCC: "1", RST: "2", OFF: "3"} }, false, "is a regular file, not a character device"},
		{"mouse on a directory", func(c *Config) { c.Protocol, c.Device = "mouse", "/etc" }, false, "is a directory, not a character device"},
		{"bad ioctl variant", func(c *Config) {
			c.Device = "/dev/sci0"
			c.Profile = Board{Device: "/dev/sci0", SCIIoctl: "x"}
			c.Board = "custom"
		}, true, ""}, // board problems are reported on the board (Board.Validate)
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.c(&c)
			if c.SCI() != tc.sci {
				t.Fatalf("SCI() = %v, want %v", c.SCI(), tc.sci)
			}
			var got []string
			c.Validate(func(k, msg string) { got = append(got, k+": "+msg) })
			all := strings.Join(got, "; ")
			switch {
			case tc.wants == "" && len(got) > 0:
				t.Errorf("unexpected problems: %s", all)
			case tc.wants != "" && !strings.Contains(all, tc.wants):
				t.Errorf("problems %q, want one containing %q", all, tc.wants)
			}
		})
	}
}

func TestBoardSCISettings(t *testing.T) {
	for name, b := range Boards {
		b.Validate(func(k, msg string) { t.Errorf("built-in board %s: %s: %s", name, k, msg) })
	}
	var got []string
	Board{SCIIoctl: "x", SCIClock: "fast"}.Validate(func(k, msg string) { got = append(got, k) })
	if strings.Join(got, " ") != "sci_ioctl sci_clock" {
		t.Errorf("problems %v, want sci_ioctl and sci_clock", got)
	}
}
