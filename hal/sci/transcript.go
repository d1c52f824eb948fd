package sci

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"satd.dev/satd/hal"
)

// A transcript is the text record of what a Slot did on its device, one
// operation a line ('#' starts a comment):
//
//	ioctl NAME REQ IN -> OUT     request number in hex, argument bytes before and after
//	ioctl NAME REQ IN ! ERRNO    the request failed with errno (ENODEV, EIO, …)
//	write HEX                    bytes sent to the card
//	read HEX                     bytes the card sent
//	read timeout                 nothing came before the deadline
//	read timeout *               any number of such reads (polling loops)
//
// Transcript plays one back byte for byte; Recorder writes one around a
// real device.

// op is one transcript line.
type op struct {
	line    int
	kind    string // ioctl, read, write
	name    string
	req     uint32
	in, out []byte
	errno   string
	timeout bool
	repeat  bool // read timeout *: matches zero or more reads
}

// ErrTranscript reports an operation that differs from the transcript.
var ErrTranscript = errors.New("sci: operation differs from the transcript")

// Transcript is a Device that plays back a transcript and fails every
// operation that differs from it.
type Transcript struct {
	mu  sync.Mutex
	ops []op
	pos int
	err error // first mismatch
}

// ParseTranscript reads a transcript.
func ParseTranscript(text string) (*Transcript, error) {
	t := &Transcript{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		o, err := parseOp(line)
		if err != nil {
			return nil, fmt.Errorf("transcript line %d: %w", n, err)
		}
		o.line = n
		t.ops = append(t.ops, o)
	}
	return t, nil
}

func parseOp(line string) (op, error) {
	f := strings.Fields(line)
	switch {
	case f[0] == "read" && len(f) == 2 && f[1] == "timeout":
		return op{kind: "read", timeout: true}, nil
	case f[0] == "read" && len(f) == 3 && f[1] == "timeout" && f[2] == "*":
		return op{kind: "read", timeout: true, repeat: true}, nil
	case (f[0] == "read" || f[0] == "write") && len(f) >= 2:
		b, err := hex.DecodeString(strings.Join(f[1:], ""))
		return op{kind: f[0], out: b}, err
	case f[0] == "ioctl" && len(f) == 6 && (f[4] == "->" || f[4] == "!"):
		req, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			return op{}, fmt.Errorf("request %q: %w", f[2], err)
		}
		o := op{kind: "ioctl", name: f[1], req: uint32(req)}
		if o.in, err = hex.DecodeString(f[3]); err != nil {
			return op{}, err
		}
		if f[4] == "!" {
			o.errno = f[5]
			return o, nil
		}
		o.out, err = hex.DecodeString(f[5])
		return o, err
	}
	return op{}, fmt.Errorf("cannot read %q", line)
}

// next returns the next operation if it is of kind.
func (t *Transcript) next(kind, what string) (op, error) {
	if t.err != nil {
		return op{}, t.err
	}
	for t.pos < len(t.ops) && t.ops[t.pos].repeat && kind != "read" {
		t.pos++ // the repeated timeouts are over
	}
	if t.pos == len(t.ops) {
		t.err = fmt.Errorf("%w: %s after the end", ErrTranscript, what)
		return op{}, t.err
	}
	o := t.ops[t.pos]
	if o.repeat {
		return o, nil // stays until another kind of operation comes
	}
	if o.kind != kind {
		t.err = fmt.Errorf("%w: line %d wants %s, slot did %s", ErrTranscript, o.line, o.kind, what)
		return op{}, t.err
	}
	t.pos++
	return o, nil
}

// Ioctl checks the request and its argument and plays back the answer.
func (t *Transcript) Ioctl(name string, req uint32, arg []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	what := fmt.Sprintf("ioctl %s %08X %X", name, req, arg)
	o, err := t.next("ioctl", what)
	if err != nil {
		return err
	}
	if o.name != name || o.req != req || !bytes.Equal(o.in, arg) {
		t.err = fmt.Errorf("%w: line %d wants ioctl %s %08X %X, slot did %s", ErrTranscript, o.line, o.name, o.req, o.in, what)
		return t.err
	}
	if o.errno != "" {
		return fmt.Errorf("ioctl %s (0x%08X): %s", name, req, o.errno)
	}
	copy(arg, o.out)
	return nil
}

// Read plays back bytes or a timeout. A timeout sleeps until the deadline
// so that polling loops advance the clock (instantly under testing/synctest).
func (t *Transcript) Read(p []byte, deadline time.Time) (int, error) {
	t.mu.Lock()
	o, err := t.next("read", "read")
	if err == nil && o.timeout {
		t.mu.Unlock()
		if !deadline.IsZero() {
			time.Sleep(time.Until(deadline))
		}
		return 0, hal.ErrTimeout
	}
	defer t.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n := copy(p, o.out)
	if n < len(o.out) { // the rest stays for the next read
		t.pos--
		t.ops[t.pos].out = o.out[n:]
	}
	return n, nil
}

// Write checks the bytes sent.
func (t *Transcript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	what := fmt.Sprintf("write %X", p)
	o, err := t.next("write", what)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(o.out, p) {
		t.err = fmt.Errorf("%w: line %d wants write %X, slot did %s", ErrTranscript, o.line, o.out, what)
		return 0, t.err
	}
	return len(p), nil
}

// Close does nothing.
func (t *Transcript) Close() error { return nil }

// Done reports the first mismatch, or operations the slot never did.
func (t *Transcript) Done() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	for t.pos < len(t.ops) && t.ops[t.pos].repeat {
		t.pos++
	}
	if t.pos < len(t.ops) {
		return fmt.Errorf("%w: %d operation(s) left from line %d", ErrTranscript, len(t.ops)-t.pos, t.ops[t.pos].line)
	}
	return nil
}

// Recorder is a Device that writes a transcript of everything done on
// the device it wraps.
type Recorder struct {
	Device
	mu sync.Mutex
	w  io.Writer
}

// NewRecorder records the operations on d into w.
func NewRecorder(d Device, w io.Writer) *Recorder { return &Recorder{Device: d, w: w} }

func (r *Recorder) log(format string, a ...any) {
	r.mu.Lock()
	fmt.Fprintf(r.w, format+"\n", a...)
	r.mu.Unlock()
}

// Ioctl records the request, its argument before and after, or the error.
func (r *Recorder) Ioctl(name string, req uint32, arg []byte) error {
	in := hex.EncodeToString(arg)
	err := r.Device.Ioctl(name, req, arg)
	if err != nil {
		r.log("ioctl %s %08X %s ! %s", name, req, in, errnoName(err))
		return err
	}
	r.log("ioctl %s %08X %s -> %s", name, req, in, hex.EncodeToString(arg))
	return nil
}

// Read records what came, or the timeout.
func (r *Recorder) Read(p []byte, deadline time.Time) (int, error) {
	n, err := r.Device.Read(p, deadline)
	switch {
	case n > 0:
		r.log("read %X", p[:n])
	case errors.Is(err, hal.ErrTimeout):
		r.log("read timeout")
	}
	return n, err
}

// Write records what was sent.
func (r *Recorder) Write(p []byte) (int, error) {
	n, err := r.Device.Write(p)
	r.log("write %X", p[:n])
	return n, err
}
