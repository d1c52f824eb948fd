package oscamimport

import (
	"bytes"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
)

// enigma2Server is an oscam.server as found on an enigma2 receiver: both
// built-in slots, a Phoenix reader on USB and a PC/SC reader.
const enigma2Server = `
[reader]
label    = sci0
protocol = internal
device   = /dev/sci0
detect   = cd
mhz      = 357
group    = 1

[reader]
label    = sci1
protocol = internal
device   = /dev/sci1
group    = 1

[reader]
label    = phoenix
protocol = mouse
device   = /dev/ttyUSB0
detect   = cd
mhz      = 357
group    = 1

[reader]
label    = usbccid
protocol = pcsc
device   = 0
group    = 1
`

// TestConvertEnigma2Readers: every reader of a typical enigma2 file is
// imported enabled, and the result passes satd -check's validation.
func TestConvertEnigma2Readers(t *testing.T) {
	res, err := Convert(Files{Server: []byte(enigma2Server)}, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.Config.Encode(&b); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("converted.toml", b.Bytes())
	if err != nil {
		t.Fatalf("converted configuration does not pass validation:\n%v\n%s", err, b.String())
	}
	want := []string{"sci0 internal /dev/sci0", "sci1 internal /dev/sci1", "phoenix mouse /dev/ttyUSB0", "usbccid pcsc 0"}
	if len(cfg.Readers) != len(want) {
		t.Fatalf("%d readers, want %d; notes %q", len(cfg.Readers), len(want), res.Report.Notes)
	}
	for i, r := range cfg.Readers {
		if got := r.Label + " " + r.Protocol + " " + r.Device; got != want[i] || !r.Enable {
			t.Errorf("reader %d: %q enabled %v, want %q enabled", i, got, r.Enable, want[i])
		}
	}
	for _, n := range res.Report.Notes {
		if strings.Contains(n, "imported disabled") {
			t.Errorf("note %q", n)
		}
	}
}
