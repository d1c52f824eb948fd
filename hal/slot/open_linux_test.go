package slot

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
	"satd.dev/satd/hal/pins"
	"satd.dev/satd/hal/uart"
)

func attr(t *testing.T, root, line, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "gpio"+line, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestOpenInternalOnSysfsAndPTY opens a whole internal slot from its
// configuration: GPIO lines on a fake sysfs tree, the UART on a pty.
func TestOpenInternalOnSysfsAndPTY(t *testing.T) {
	root := haltest.FakeSysfsGPIO(t, true)
	m, tty, err := haltest.OpenPTY()
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	go io.Copy(io.Discard, m)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := DefaultConfig()
	c.Device, c.GPIO, c.ClkDiv = tty, "sysfs", 2
	c.Pins = PinMap{CMDVCC: "10", RST: "11", OFF: "12", VSel: "!13", ClkDiv1: "14", ClkDiv2: "15"}
	s, err := open("int0", c, log, func() (*pins.Host, error) { return pins.NewSysfsHost(root, log) })
	if uart.NoTermios2(err) {
		t.Skipf("termios2 not implemented here (qemu-user); tested natively: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Idle, each set with one glitch-free write of direction: CMDVCC
	// (active low) high, RST low, 5 V through an inverter = low, /2 = 11.
	for line, want := range map[string]string{"10": "high", "11": "low", "12": "in", "13": "low", "14": "high", "15": "high"} {
		if got := attr(t, root, line, "direction"); got != want {
			t.Errorf("gpio%s direction %q, want %q", line, got, want)
		}
	}
	if p, _ := s.Present(); !p {
		t.Error("OFF reads 1 but the card is not present")
	}
	if s.ClockHz() != 3_571_200 || s.Link().Config().Baud != 9600 {
		t.Errorf("clock %d, baud %d", s.ClockHz(), s.Link().Config().Baud)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	c.Pins.OFF = ""
	if _, err := open("int1", c, log, nil); err == nil || !strings.Contains(err.Error(), "pins.off") {
		t.Errorf("missing OFF line: %v", err)
	}
}

func TestOpenMouseOnPTYExplainsMissingModemLines(t *testing.T) {
	m, tty, err := haltest.OpenPTY()
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	c := DefaultConfig()
	c.Protocol, c.Device = "mouse", tty
	_, err = open("mouse0", c, nil, nil)
	if uart.NoTermios2(err) {
		t.Skipf("termios2 not implemented here (qemu-user); tested natively: %v", err)
	}
	if !errors.Is(err, hal.ErrNotSupported) || !strings.Contains(err.Error(), "RTS") {
		t.Errorf("mouse reader on a pty: %v", err)
	}
}

// modemLog is a modemPort that records RTS/DTR and serves a status word.
type modemLog struct {
	rts, dtr []bool
	status   int
}

func (m *modemLog) SetRTS(on bool) error      { m.rts = append(m.rts, on); return nil }
func (m *modemLog) SetDTR(on bool) error      { m.dtr = append(m.dtr, on); return nil }
func (m *modemLog) ModemStatus() (int, error) { return m.status, nil }

func TestMouseLinePolarity(t *testing.T) {
	for _, tc := range []struct {
		reset, detect string
		status        int
		holdRTS       []bool // RTS/DTR level written when holding, then releasing reset
		present       bool
	}{
		{"rts", "cd", ModemCD, []bool{true, false}, true},
		{"!rts", "cd", 0, []bool{false, true}, false},
		{"dtr", "!dsr", 0, []bool{true, false}, true},
		{"rts", "!cts", ModemCTS, []bool{true, false}, false},
	} {
		c := DefaultConfig()
		c.Protocol, c.Reset, c.Detect = "mouse", tc.reset, tc.detect
		m := &modemLog{status: tc.status}
		l := mouseLines(c, m)
		l.RST.set(false)
		l.RST.set(true)
		got := m.rts
		if strings.HasSuffix(tc.reset, "dtr") {
			got = m.dtr
		}
		if len(got) != 2 || got[0] != tc.holdRTS[0] || got[1] != tc.holdRTS[1] {
			t.Errorf("reset=%s: line levels %v, want %v", tc.reset, got, tc.holdRTS)
		}
		if p := l.Detect.get(); p != tc.present {
			t.Errorf("detect=%s status %#x: present %v", tc.detect, tc.status, p)
		}
		if err := l.Detect.Pin.In(gpio.PullNoChange, gpio.BothEdges); err == nil {
			t.Error("edge detection on a modem line accepted")
		}
	}
}
