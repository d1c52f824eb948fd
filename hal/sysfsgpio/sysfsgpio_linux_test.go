package sysfsgpio

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"satd.dev/satd/hal/haltest"
)

func attr(t *testing.T, root string, n int, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "gpio"+strconv.Itoa(n), name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestExportDirectionValue(t *testing.T) {
	root := haltest.FakeSysfsGPIO(t, true)
	p, err := Open(root, 17)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := attr(t, root, 17, "active_low"); got != "0" {
		t.Errorf("active_low = %q, want 0", got)
	}
	if p.Read() != gpio.High {
		t.Error("input read Low, value file holds 1")
	}
	// An input becomes an output in one write, glitch-free.
	if err := p.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, root, 17, "direction"); got != "high" {
		t.Errorf("direction = %q, want high", got)
	}
	if err := p.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, root, 17, "value"); got[0] != '0' {
		t.Errorf("value = %q, want 0", got)
	}
	if p.Read() != gpio.Low {
		t.Error("output read back wrong level")
	}
	if got := attr(t, root, 17, "direction"); got != "high" {
		t.Errorf("second Out rewrote direction: %q", got)
	}
	if err := p.In(gpio.PullNoChange, gpio.BothEdges); err != nil {
		t.Fatal(err)
	}
	if d, e := attr(t, root, 17, "direction"), attr(t, root, 17, "edge"); d != "in" || e != "both" {
		t.Errorf("direction %q edge %q, want in both", d, e)
	}
	if err := p.In(gpio.PullUp, gpio.NoEdge); !errors.Is(err, ErrNoPull) {
		t.Errorf("pull-up: %v", err)
	}
	// A fresh Open of an exported output keeps its level.
	p.Out(gpio.High)
	// The kernel shows "out" however direction was set.
	os.WriteFile(filepath.Join(root, "gpio17", "direction"), []byte("out\n"), 0o600)
	os.WriteFile(filepath.Join(root, "gpio17", "value"), []byte("1\n"), 0o600)
	q, err := Open(root, 17)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Function() != "Out/High" || q.Read() != gpio.High {
		t.Errorf("reopened output: %s", q.Function())
	}
}

func TestWaitForEdgeTimeoutAndHalt(t *testing.T) {
	root := haltest.FakeSysfsGPIO(t, true)
	p, err := Open(root, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.WaitForEdge(time.Millisecond) {
		t.Error("edge reported without In(edge)")
	}
	if err := p.In(gpio.Float, gpio.FallingEdge); err != nil {
		t.Fatal(err)
	}
	// A regular file never raises POLLPRI, so this must time out.
	if p.WaitForEdge(5 * time.Millisecond) {
		t.Error("edge on a fake value file")
	}
	done := make(chan bool)
	go func() { done <- p.WaitForEdge(-1) }()
	time.Sleep(5 * time.Millisecond)
	p.Halt()
	select {
	case got := <-done:
		if got {
			t.Error("halted wait reported an edge")
		}
	case <-time.After(time.Minute): // a hang guard: the interrupt takes microseconds
		t.Fatal("hung: Halt did not interrupt WaitForEdge(-1)")
	}
}

func TestErrors(t *testing.T) {
	root := haltest.FakeSysfsGPIO(t, false)
	p, err := Open(root, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.In(gpio.PullNoChange, gpio.BothEdges); err == nil || !strings.Contains(err.Error(), "poll") {
		t.Errorf("edge on a line without edge file: %v", err)
	}
	if err := p.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
		t.Errorf("input without edge file: %v", err)
	}
	if _, err := Open(t.TempDir(), 5); err == nil || !strings.Contains(err.Error(), "export") {
		t.Errorf("open without export file: %v", err)
	}
	old := ExportWait
	ExportWait = 20 * time.Millisecond
	defer func() { ExportWait = old }()
	dead := t.TempDir()
	os.WriteFile(filepath.Join(dead, "export"), nil, 0o600)
	if _, err := Open(dead, 6); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("export that never appears: %v", err)
	}
	if _, err := Open(root, -1); err == nil {
		t.Error("negative line accepted")
	}
}
