package slot

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

const f = 3_571_200 // Hz

// clocks returns the duration of n card clock cycles at f.
func clocks(n int) time.Duration { return time.Duration(n) * time.Second / f }

// fakePort is a scripted serial line: with echoLine every written byte
// comes back on the read side unless the config strips it. It records the
// RST level at every Flush, so tests can check the UART was ready before
// RST went high.
type fakePort struct {
	mu        sync.Mutex
	echoLine  bool
	rst       *haltest.Recorder
	cfg       hal.LineConfig
	rx        []byte
	dl        time.Time
	abort     error
	flushes   []gpio.Level
	configs   []hal.LineConfig
	closed    bool
	wakeAbort chan struct{}
}

func newFakePort(echoLine bool, rst *haltest.Recorder) *fakePort {
	return &fakePort{echoLine: echoLine, rst: rst, wakeAbort: make(chan struct{}, 1)}
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.echoLine && !p.cfg.Echo {
		p.rx = append(p.rx, b...)
	}
	return len(b), nil
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	if p.abort != nil {
		defer p.mu.Unlock()
		return 0, p.abort
	}
	if len(p.rx) > 0 {
		n := copy(b, p.rx)
		p.rx = p.rx[n:]
		p.mu.Unlock()
		return n, nil
	}
	dl := p.dl
	p.mu.Unlock()
	var tc <-chan time.Time
	if !dl.IsZero() {
		tc = time.After(time.Until(dl))
	}
	select {
	case <-tc:
		return 0, hal.ErrTimeout
	case <-p.wakeAbort:
		p.mu.Lock()
		defer p.mu.Unlock()
		return 0, p.abort
	}
}

func (p *fakePort) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.dl = t
	p.mu.Unlock()
	return nil
}

func (p *fakePort) Configure(c hal.LineConfig) error {
	p.mu.Lock()
	p.cfg = c
	p.configs = append(p.configs, c)
	p.mu.Unlock()
	return nil
}

func (p *fakePort) Config() hal.LineConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func (p *fakePort) Flush() error {
	p.mu.Lock()
	p.rx = nil
	p.flushes = append(p.flushes, p.rst.Level())
	p.mu.Unlock()
	return nil
}

func (p *fakePort) SetAbort(err error) {
	p.mu.Lock()
	p.abort = err
	p.mu.Unlock()
	if err != nil {
		select {
		case p.wakeAbort <- struct{}{}:
		default:
		}
	}
}

func (p *fakePort) Close() error { p.closed = true; return nil }

type internalRig struct {
	vcc, rst, off, vsel *haltest.Recorder
	port                *fakePort
	slot                *Slot
}

func newInternal(t *testing.T, chip string) *internalRig {
	t.Helper()
	r := &internalRig{
		vcc:  haltest.NewRecorder("cmdvcc", 1, gpio.Low),
		rst:  haltest.NewRecorder("rstin", 2, gpio.Low),
		off:  haltest.NewRecorder("off", 3, gpio.High),
		vsel: haltest.NewRecorder("5v3v", 4, gpio.Low),
	}
	r.port = newFakePort(true, r.rst)
	c := DefaultConfig()
	c.Protocol, c.Chip, c.Device = "internal", chip, "/dev/ttyS1"
	tm, err := c.timing()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Name: "int0", ClockHz: f, Timing: tm, Echo: EchoAuto, Voltage: hal.Volt5,
		Lines: Lines{VCC: Line{Pin: r.vcc, Invert: true}, RST: Line{Pin: r.rst}, Detect: Line{Pin: r.off}, VSel: Line{Pin: r.vsel}},
	}, r.port)
	if err != nil {
		t.Fatal(err)
	}
	r.slot = s
	return r
}

// edges returns the recorded (time since start, level) pairs of r.
func edges(r *haltest.Recorder, start time.Time) []struct {
	d time.Duration
	l gpio.Level
} {
	var out []struct {
		d time.Duration
		l gpio.Level
	}
	for _, c := range r.History() {
		out = append(out, struct {
			d time.Duration
			l gpio.Level
		}{c.At.Sub(start), c.Level})
	}
	return out
}

func TestInternalSequencesTDA8024(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := newInternal(t, "tda8024")
		defer r.slot.Close()
		ctx := context.Background()
		// Idle: CMDVCC (active low) high, RSTIN low, 5 V selected.
		if r.vcc.Level() != gpio.High || r.rst.Level() != gpio.Low || r.vsel.Level() != gpio.High {
			t.Fatalf("idle levels: cmdvcc %v rst %v 5v %v", r.vcc.Level(), r.rst.Level(), r.vsel.Level())
		}
		if p, _ := r.slot.Present(); !p {
			t.Fatal("card with OFF high not present")
		}
		r.vcc.ClearHistory()
		r.rst.ClearHistory()

		t0 := time.Now()
		if err := r.slot.Reset(ctx, hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		vcc, rst := edges(r.vcc, t0), edges(r.rst, t0)
		if len(vcc) != 1 || vcc[0].l != gpio.Low || vcc[0].d != 0 {
			t.Fatalf("cold reset CMDVCC changes %v, want one fall at once\n%s", vcc, haltest.Timeline(t0, r.vcc, r.rst))
		}
		if len(rst) != 1 || rst[0].l != gpio.High {
			t.Fatalf("cold reset RST changes %v\n%s", rst, haltest.Timeline(t0, r.vcc, r.rst))
		}
		// RST rises no earlier than the chip's activation (t5 ~ 175 us,
		// spec: sleep >= 1 ms) plus 400 clocks, and no later than 40 ms.
		if d := rst[0].d; d < time.Millisecond+clocks(400) || d > 40*time.Millisecond {
			t.Errorf("CMDVCC to RST high %v, want [%v, 40ms]", d, time.Millisecond+clocks(400))
		}
		// The UART was flushed with RST still low, at the initial frame.
		if n := len(r.port.flushes); n < 2 || r.port.flushes[n-1] != gpio.Low {
			t.Errorf("flushes (RST level at each) %v: the last one must precede RST high", r.port.flushes)
		}
		want := hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2, Echo: true}
		if got := r.port.Config(); got != want {
			t.Errorf("line after reset %+v, want %+v (echo detected)", got, want)
		}

		// Warm reset: CMDVCC untouched, RST low for >= 400 clocks.
		r.vcc.ClearHistory()
		r.rst.ClearHistory()
		t1 := time.Now()
		if err := r.slot.Reset(ctx, hal.WarmReset); err != nil {
			t.Fatal(err)
		}
		rst = edges(r.rst, t1)
		if len(r.vcc.History()) != 0 || len(rst) != 2 || rst[0].l != gpio.Low || rst[1].l != gpio.High {
			t.Fatalf("warm reset:\n%s", haltest.Timeline(t1, r.vcc, r.rst))
		}
		if d := rst[1].d - rst[0].d; d < clocks(400) || d > 100*time.Millisecond {
			t.Errorf("warm RST low for %v, want [%v, 100ms]", d, clocks(400))
		}

		// Deactivation: RST low strictly before CMDVCC released, then the
		// 100 ms the chip needs before the next activation.
		r.vcc.ClearHistory()
		r.rst.ClearHistory()
		t2 := time.Now()
		if err := r.slot.Deactivate(ctx); err != nil {
			t.Fatal(err)
		}
		rh, vh := r.rst.History(), r.vcc.History()
		if len(rh) != 1 || len(vh) != 1 || rh[0].Level != gpio.Low || vh[0].Level != gpio.High || rh[0].Seq > vh[0].Seq {
			t.Fatalf("deactivation order:\n%s", haltest.Timeline(t2, r.rst, r.vcc))
		}
		if d := time.Since(t2); d < 100*time.Millisecond {
			t.Errorf("Deactivate returned after %v, want >= 100ms", d)
		}

		// Cold reset of an active card powers it down first.
		r.slot.Reset(ctx, hal.ColdReset)
		r.vcc.ClearHistory()
		t3 := time.Now()
		r.slot.Reset(ctx, hal.ColdReset)
		vh = r.vcc.History()
		if len(vh) != 2 || vh[0].Level != gpio.High || vh[1].Level != gpio.Low || vh[1].At.Sub(vh[0].At) < 100*time.Millisecond {
			t.Errorf("cold reset of an active card:\n%s", haltest.Timeline(t3, r.vcc, r.rst))
		}
		if time.Since(start) > time.Second {
			t.Errorf("sequences took %v", time.Since(start))
		}
	})
}

func TestInternalTDA8035Activation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newInternal(t, "tda8035")
		defer r.slot.Close()
		r.rst.ClearHistory()
		r.vcc.ClearHistory()
		if err := r.slot.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		d := r.rst.History()[0].At.Sub(r.vcc.History()[0].At)
		// Crystal start 3.1 ms + 320 us to CLK, then >= 400 clocks.
		if d < 3500*time.Microsecond+clocks(400) || d > 40*time.Millisecond {
			t.Errorf("TDA8035 CMDVCCN to RST %v", d)
		}
	})
}

func TestInternalRemovalAndFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newInternal(t, "tda8024")
		defer r.slot.Close()
		ctx := context.Background()
		r.slot.Reset(ctx, hal.ColdReset)
		read := make(chan error)
		go func() {
			_, err := r.slot.Link().Read(make([]byte, 1))
			read <- err
		}()
		// Card pulled: OFF falls and stays low when CMDVCC is released.
		time.Sleep(5 * time.Millisecond)
		r.off.Set(gpio.Low)
		if err := <-read; !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("pending read: %v", err)
		}
		if ev := <-r.slot.Events(); ev.Kind != hal.CardRemoved {
			t.Errorf("event %v", ev.Kind)
		}
		if r.vcc.Level() != gpio.High || r.rst.Level() != gpio.Low {
			t.Error("card not deactivated after OFF fell")
		}
		if err := r.slot.Reset(ctx, hal.ColdReset); !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("reset of an empty slot: %v", err)
		}
		r.off.Set(gpio.High)
		if ev := <-r.slot.Events(); ev.Kind != hal.CardInserted {
			t.Errorf("event %v", ev.Kind)
		}
		// Overload: OFF falls while active and rises again once CMDVCC is
		// released.
		r.slot.Reset(ctx, hal.ColdReset)
		r.off.Set(gpio.Low)
		for r.vcc.Level() != gpio.High {
			time.Sleep(50 * time.Microsecond)
		}
		r.off.Set(gpio.High)
		if ev := <-r.slot.Events(); ev.Kind != hal.ChipFault {
			t.Errorf("event %v, want fault", ev.Kind)
		}
		if _, err := r.slot.Link().Read(make([]byte, 1)); !errors.Is(err, hal.ErrFault) {
			t.Errorf("read after fault: %v", err)
		}
		if p, _ := r.slot.Present(); !p {
			t.Error("card counted as removed after a fault")
		}
	})
}

func TestPhoenixSequences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rts := haltest.NewRecorder("rts", 0, gpio.Low) // level = RTS asserted
		cd := haltest.NewRecorder("cd", 0, gpio.High)
		port := newFakePort(false, rts)
		c := DefaultConfig()
		c.Protocol, c.Device = "mouse", "/dev/ttyUSB0"
		tm, err := c.timing()
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Options{Name: "mouse0", ClockHz: f, Timing: tm, Echo: EchoAuto,
			Lines: Lines{RST: Line{Pin: rts, Invert: true}, Detect: Line{Pin: cd}}}, port)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// Idle: card held in reset, RTS asserted.
		if rts.Level() != gpio.High {
			t.Fatal("RTS not asserted while idle")
		}
		rts.ClearHistory()
		t0 := time.Now()
		if err := s.Reset(context.Background(), hal.ColdReset); err != nil {
			t.Fatal(err)
		}
		h := rts.History()
		if len(h) != 1 || h[0].Level != gpio.Low {
			t.Fatalf("RTS:\n%s", haltest.Timeline(t0, rts))
		}
		if d := h[0].At.Sub(t0); d < clocks(400)+time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("RTS held %v", d)
		}
		if s.Echo() {
			t.Error("echo detected on a two-wire reader")
		}
		rts.ClearHistory()
		t1 := time.Now()
		s.Reset(context.Background(), hal.WarmReset)
		h = rts.History()
		if len(h) != 2 || h[0].Level != gpio.High || h[1].Level != gpio.Low || h[1].At.Sub(h[0].At) < clocks(400) {
			t.Errorf("warm reset:\n%s", haltest.Timeline(t1, rts))
		}
		s.Deactivate(context.Background())
		if rts.Level() != gpio.High {
			t.Error("deactivated card not held in reset")
		}
		s.Reset(context.Background(), hal.ColdReset)
		cd.Set(gpio.Low)
		if ev := <-s.Events(); ev.Kind != hal.CardRemoved {
			t.Errorf("event %v", ev.Kind)
		}
		if _, err := s.Link().Read(make([]byte, 1)); !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("read after removal: %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Device = "/dev/ttyS1"
	good.Pins = PinMap{CMDVCC: "!gpiochip0:5", RST: "gpiochip0:6", OFF: "gpiochip0:7"}
	mouse := DefaultConfig()
	mouse.Protocol, mouse.Device, mouse.Detect, mouse.Reset = "mouse", "/dev/ttyUSB0", "!dsr", "!rts"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		base Config
		keys []string
	}{
		{"internal ok", func(*Config) {}, good, nil},
		{"mouse ok", func(*Config) {}, mouse, nil},
		{"missing pins and device", func(c *Config) { c.Pins, c.Device = PinMap{}, "" }, good, []string{"device", "pins.cmdvcc", "pins.rst", "pins.off"}},
		{"tda8035 too fast", func(c *Config) { c.Chip, c.ActivationMs = "tda8035", 3 }, good, []string{"activation_ms"}},
		{"bad values", func(c *Config) {
			c.Mhz, c.Echo, c.GPIO, c.Voltage, c.ClkDiv, c.Pins.VSel = 5, "maybe", "gpiod", "1.8", 3, "chip:x"
		}, good, []string{"mhz", "echo", "gpio", "voltage", "clkdiv", "pins.vsel"}},
		{"clkdiv needs pins", func(c *Config) { c.ClkDiv = 2 }, good, []string{"pins.clkdiv1", "pins.clkdiv2"}},
		{"mouse lines", func(c *Config) { c.Detect, c.Reset = "dcd", "cts" }, mouse, []string{"detect", "reset"}},
		{"unknown board", func(c *Config) { c.Board = "vu+duo" }, good, []string{"board"}},
		{"no slot for other protocols", func(c *Config) { c.Protocol, c.Device, c.Mhz = "constcw", "", 0 }, good, nil},
	} {
		c := tc.base
		tc.edit(&c)
		var got []string
		c.Validate(func(k, msg string) {
			if msg == "" {
				t.Errorf("%s: empty message for %s", tc.name, k)
			}
			got = append(got, k)
		})
		if len(got) != len(tc.keys) {
			t.Errorf("%s: reported %v, want %v", tc.name, got, tc.keys)
			continue
		}
		for i := range got {
			if got[i] != tc.keys[i] {
				t.Errorf("%s: reported %v, want %v", tc.name, got, tc.keys)
				break
			}
		}
	}
}
