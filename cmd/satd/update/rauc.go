package update

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// RAUC is the part of RAUC that satd drives: install a bundle into the
// inactive slot group, confirm or reject the booted slot, and report status.
type RAUC interface {
	// Install installs the bundle at path, reporting progress in percent.
	Install(ctx context.Context, path string, progress func(percent int, msg string)) error
	// MarkGood confirms the booted slot, resetting the bootloader's attempts.
	MarkGood(ctx context.Context) error
	// MarkBad disables the booted slot so the next boot falls back.
	MarkBad(ctx context.Context) error
	// Status returns the booted slot and the slots' states.
	Status(ctx context.Context) (RAUCStatus, error)
}

// RAUCStatus is the part of `rauc status --output-format=json` satd uses.
type RAUCStatus struct {
	Compatible  string     `json:"compatible"`
	Booted      string     `json:"booted"`
	BootPrimary string     `json:"boot_primary"`
	Slots       []RAUCSlot `json:"-"`
}

// RAUCSlot is one slot of a RAUCStatus.
type RAUCSlot struct {
	Name       string
	Class      string `json:"class"`
	Device     string `json:"device"`
	Bootname   string `json:"bootname"`
	State      string `json:"state"`
	BootStatus string `json:"boot_status"`
	Version    string `json:"-"`
}

// RAUCCommand runs the real `rauc` command-line tool (RAUC built with or
// without its D-Bus service; both offer the same CLI).
type RAUCCommand struct {
	// Path is the rauc executable; "" means "rauc" on PATH.
	Path string
	// Args are global options put before the verb, e.g. "--conf=/etc/rauc/system.conf".
	Args []string
}

var _ RAUC = (*RAUCCommand)(nil)

func (r *RAUCCommand) cmd(ctx context.Context, args ...string) *exec.Cmd {
	path := r.Path
	if path == "" {
		path = "rauc"
	}
	return exec.CommandContext(ctx, path, append(append([]string(nil), r.Args...), args...)...)
}

func (r *RAUCCommand) run(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	c := r.cmd(ctx, args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("rauc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Install runs `rauc install PATH` and parses its progress lines.
func (r *RAUCCommand) Install(ctx context.Context, path string, progress func(int, string)) error {
	c := r.cmd(ctx, "install", path)
	var tail bytes.Buffer
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	if err := c.Start(); err != nil {
		return fmt.Errorf("rauc install %s: %w", path, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			keepTail(&tail, sc.Text())
			if pct, msg, ok := ParseRAUCProgress(sc.Text()); ok && progress != nil {
				progress(pct, msg)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := c.Wait()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("rauc install %s: %w: %s", path, err, strings.TrimSpace(tail.String()))
	}
	return nil
}

// keepTail keeps the last few output lines for the error message.
func keepTail(b *bytes.Buffer, line string) {
	b.WriteString(line + "\n")
	if b.Len() > 2048 {
		b.Next(b.Len() - 2048)
	}
}

// ParseRAUCProgress parses a progress line of `rauc install`, such as
// "  40% Checking bundle done.", returning the percentage and message.
func ParseRAUCProgress(line string) (int, string, bool) {
	s := strings.TrimSpace(line)
	num, msg, ok := strings.Cut(s, "%")
	if !ok || len(num) == 0 || len(num) > 3 {
		return 0, "", false
	}
	pct, err := strconv.Atoi(num)
	if err != nil || pct < 0 || pct > 100 {
		return 0, "", false
	}
	return pct, strings.TrimSpace(msg), true
}

// MarkGood runs `rauc status mark-good booted`.
func (r *RAUCCommand) MarkGood(ctx context.Context) error {
	_, err := r.run(ctx, "status", "mark-good", "booted")
	return err
}

// MarkBad runs `rauc status mark-bad booted`.
func (r *RAUCCommand) MarkBad(ctx context.Context) error {
	_, err := r.run(ctx, "status", "mark-bad", "booted")
	return err
}

// Status runs `rauc status --detailed --output-format=json`.
func (r *RAUCCommand) Status(ctx context.Context) (RAUCStatus, error) {
	out, err := r.run(ctx, "status", "--detailed", "--output-format=json")
	if err != nil {
		return RAUCStatus{}, err
	}
	return ParseRAUCStatus(out)
}

// ParseRAUCStatus decodes the JSON of `rauc status --output-format=json`,
// where slots is a list of one-entry objects {"rootfs.0": {...}}.
func ParseRAUCStatus(doc []byte) (RAUCStatus, error) {
	var raw struct {
		RAUCStatus
		Slots []map[string]json.RawMessage `json:"slots"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return RAUCStatus{}, fmt.Errorf("rauc status: %w", err)
	}
	st := raw.RAUCStatus
	for _, m := range raw.Slots {
		for name, body := range m {
			s, err := parseRAUCSlot(name, body)
			if err != nil {
				return RAUCStatus{}, err
			}
			st.Slots = append(st.Slots, s)
		}
	}
	return st, nil
}

func parseRAUCSlot(name string, body json.RawMessage) (RAUCSlot, error) {
	var s struct {
		RAUCSlot
		SlotStatus struct {
			Bundle struct {
				Version string `json:"version"`
			} `json:"bundle"`
		} `json:"slot_status"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return RAUCSlot{}, fmt.Errorf("rauc status: slot %s: %w", name, err)
	}
	s.RAUCSlot.Name, s.RAUCSlot.Version = name, s.SlotStatus.Bundle.Version
	return s.RAUCSlot, nil
}
