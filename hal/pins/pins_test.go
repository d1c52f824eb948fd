package pins

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal/haltest"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Addr
		bad  bool
	}{
		{in: "gpiochip1:17", want: Addr{Chip: 1, Offset: 17}},
		{in: "chip0:3", want: Addr{Chip: 0, Offset: 3}},
		{in: "45", want: Addr{Chip: -1, Offset: 45}},
		{in: "CARD_VCC", want: Addr{Chip: -1, Name: "CARD_VCC"}},
		{in: "", bad: true},
		{in: "-3", bad: true},
		{in: "chipx:1", bad: true},
		{in: "chip1:-1", bad: true},
	} {
		got, err := ParseAddr(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseAddr(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestChoose(t *testing.T) {
	ok := func() error { return nil }
	broken := func() error { return errors.New("GPIO_V2_GET_LINEINFO: inappropriate ioctl") }
	for _, tc := range []struct {
		name string
		e    env
		want Backend
		why  string
	}{
		{"old vendor kernel", env{release: "4.9.0-hisi", arch: "arm", chips: []string{"/dev/gpiochip0"}, initChardev: ok}, Sysfs, "< 5.10"},
		{"3.14 sh4-era", env{release: "3.14.28-1.12-opensuse", arch: "arm", initChardev: ok}, Sysfs, "< 5.10"},
		{"new kernel, no chips", env{release: "5.15.0", arch: "arm64", initChardev: ok}, Sysfs, "no /dev/gpiochip"},
		{"mips", env{release: "6.1.0", arch: "mipsle", chips: []string{"/dev/gpiochip0"}, initChardev: ok}, Sysfs, "MIPS"},
		{"chip unusable", env{release: "5.10.0", arch: "arm", chips: []string{"/dev/gpiochip0"}, initChardev: broken}, Sysfs, "unusable"},
		{"garbage release", env{release: "linux", arch: "arm", initChardev: ok}, Sysfs, "not understood"},
		{"works", env{release: "6.6.20-v7+", arch: "arm", chips: []string{"/dev/gpiochip0"}, initChardev: ok}, Chardev, "6.6"},
	} {
		got, why := choose(tc.e)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s (%s), want %s (%s)", tc.name, got, why, tc.want, tc.why)
		}
	}
}

// TestAutoFallsBackToSysfs opens a real line through the sysfs backend
// chosen automatically on a kernel whose gpiochip cannot be used.
func TestAutoFallsBackToSysfs(t *testing.T) {
	root := haltest.FakeSysfsGPIO(t, true)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	e := env{release: "4.4.35", arch: "arm", chips: []string{"/dev/gpiochip0"}, sysfsRoot: root,
		initChardev: func() error { t.Error("chardev probed on a 4.4 kernel"); return nil }}
	h, err := newHost(Auto, e, log)
	if err != nil {
		t.Fatal(err)
	}
	if h.Backend() != Sysfs || !strings.Contains(logBuf.String(), "backend=sysfs") || !strings.Contains(logBuf.String(), "4.4 < 5.10") {
		t.Errorf("backend %s, log %q", h.Backend(), logBuf.String())
	}
	vcc, err := h.OpenOut("12", gpio.High)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "gpio12", "direction")); string(b) != "high" {
		t.Errorf("direction %q, want high (one glitch-free write)", b)
	}
	if vcc.Read() != gpio.High {
		t.Error("output reads back low")
	}
	if _, err := h.OpenIn("12"); err == nil {
		t.Error("same line opened twice")
	}
	if _, err := h.OpenIn("gpiochip0:3"); err == nil || !strings.Contains(err.Error(), "global line number") {
		t.Errorf("chip address on sysfs: %v", err)
	}
	// Nothing usable at all: the error says why.
	e.sysfsRoot = t.TempDir()
	if _, err := newHost(Auto, e, log); err == nil || !strings.Contains(err.Error(), "< 5.10") {
		t.Errorf("no backend: %v", err)
	}
	e.initChardev = func() error { return errors.New("no chip") }
	if _, err := newHost(Chardev, e, log); err == nil {
		t.Error("forced chardev without chips succeeded")
	}
	if _, err := newHost("gpiod", e, log); err == nil {
		t.Error("unknown backend accepted")
	}
}

// quirkyPin behaves like periph's gpioioctl line.
type quirkyPin struct {
	*haltest.Recorder
	mu       sync.Mutex
	waitArgs []time.Duration
}

func (q *quirkyPin) Read() gpio.Level {
	if q.IsOutput() {
		q.Recorder.In(gpio.PullUp, gpio.NoEdge) // the quirk
	}
	return q.Recorder.Read()
}

func (q *quirkyPin) WaitForEdge(timeout time.Duration) bool {
	q.mu.Lock()
	q.waitArgs = append(q.waitArgs, timeout)
	q.mu.Unlock()
	return false
}

func TestIoctlQuirksHidden(t *testing.T) {
	q := &quirkyPin{Recorder: haltest.NewRecorder("CMDVCC", 1, gpio.Low)}
	p := wrapIoctl(q)
	p.Out(gpio.High)
	if p.Read() != gpio.High || !q.IsOutput() {
		t.Error("Read on an output reached gpioioctl and turned it into an input")
	}
	p.In(gpio.PullNoChange, gpio.BothEdges)
	p.WaitForEdge(-1)
	p.WaitForEdge(0)
	p.WaitForEdge(5 * time.Millisecond)
	want := []time.Duration{0, time.Millisecond, 5 * time.Millisecond}
	if len(q.waitArgs) != 3 || q.waitArgs[0] != want[0] || q.waitArgs[1] != want[1] || q.waitArgs[2] != want[2] {
		t.Errorf("gpioioctl saw timeouts %v, want %v", q.waitArgs, want)
	}
}

func TestDetectorDebounce(t *testing.T) {
	for _, edges := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			pin := haltest.NewRecorder("PRES", 2, gpio.High)
			d := &Detector{Pin: pin}
			if !edges {
				d.Pin = noEdgePin{pin}
			}
			start, err := d.Start()
			if err != nil || start != gpio.High || d.EdgeDriven() != edges {
				t.Fatalf("start %v %v edges=%v", start, err, d.EdgeDriven())
			}
			ctx, cancel := context.WithCancel(context.Background())
			var got []time.Duration
			t0 := time.Now()
			done := make(chan struct{})
			go func() {
				d.Run(ctx, start, func(l gpio.Level) { got = append(got, time.Since(t0)) })
				close(done)
			}()
			// A 3 ms bounce must not count; a settled change must, within
			// debounce (+ one poll period when polling).
			time.Sleep(100 * time.Millisecond)
			pin.Set(gpio.Low)
			time.Sleep(3 * time.Millisecond)
			pin.Set(gpio.High)
			time.Sleep(200 * time.Millisecond)
			pin.Set(gpio.Low)
			time.Sleep(time.Millisecond)
			pin.Set(gpio.High)
			time.Sleep(time.Millisecond)
			pin.Set(gpio.Low) // settles low at +305ms
			time.Sleep(200 * time.Millisecond)
			cancel()
			<-done
			if len(got) != 1 {
				t.Fatalf("edges=%v: reports at %v, want exactly one", edges, got)
			}
			lo, hi := 305*time.Millisecond, 305*time.Millisecond+DefaultDebounce
			if !edges {
				hi += DefaultPoll
			}
			if got[0] < lo || got[0] > hi {
				t.Errorf("edges=%v: reported at %v, want within [%v, %v]", edges, got[0], lo, hi)
			}
		})
	}
}

// noEdgePin refuses edge detection, like a line without an interrupt.
type noEdgePin struct{ *haltest.Recorder }

func (n noEdgePin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return errors.New("edge not supported")
	}
	return n.Recorder.In(pull, edge)
}
