// Package uart drives a Linux serial port as the I/O line of a smart card:
// termios2 with BOTHER for any baud rate, 8E2/8O2, INPCK|PARMRK so bytes
// with bad parity arrive marked instead of vanishing, exclusive open, a
// non-blocking descriptor whose reads honour deadlines to the millisecond
// (runtime poller), RTS/DTR, flush, drain and break, single-wire echo
// stripping and comparison, and per-byte pacing for the extra guard time.
//
// github.com/tarm/serial is not used: it accepts only standard baud rates,
// times out in 100 ms steps, sets IGNPAR (parity errors vanish) and has no
// modem lines, drain, flush of one direction or break.
package uart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"satd.dev/satd/hal"
)

// EchoSlack is added to the transmission time of the bytes when waiting
// for their echo; it covers USB-serial latency.
var EchoSlack = 50 * time.Millisecond

// Port is an open serial line; it implements hal.Link. One goroutine at a
// time may Read or Write; SetAbort, SetReadDeadline and the modem calls may
// come from others.
type Port struct {
	path string
	f    *os.File
	rc   syscall.RawConn

	mu  sync.Mutex // guards cfg and dl
	cfg hal.LineConfig
	dl  time.Time

	abort atomic.Pointer[error]
	usb   bool // a USB serial adapter (see IsUSB)
	// refused is set once the card refused a character on this port:
	// from then on T=0 writes go byte by byte so refusals can be repeated.
	refused bool
	dec     decoder
	raw     [512]byte
	rpos    int
	rlen    int
	echo    [256]byte

	// ioctl hooks; tests check the encoding through them.
	ioctlPtr func(fd int, req uint, arg int) error
	ioctlGet func(fd int, req uint) (uint32, error)
	// sleep waits out guard and repetition times; tests record the pacing
	// through it instead of timing the write.
	sleep func(time.Duration)

	// Pre-bound closures for RawConn.Control, so the hot path does not
	// allocate.
	drainFn func(fd uintptr)
	flushFn func(fd uintptr)
	ctlErr  error
}

var (
	_ hal.Link    = (*Port)(nil)
	_ hal.Adapter = (*Port)(nil)
)

// errMarkedEcho marks an echo that came back with a framing or parity
// error: on a card line that is the card's T=0 error signal overlapping
// the stop bit of the character it refused.
var errMarkedEcho = errors.New("echo marked")

// sysClassTTY is where the kernel lists tty devices; tests point it
// elsewhere.
var sysClassTTY = "/sys/class/tty"

// IsUSB reports whether the tty at path is a USB serial adapter: its
// device link in sysfs leads through a USB bus, or it is named ttyUSB* or
// ttyACM*.
func IsUSB(path string) bool {
	base := filepath.Base(path)
	if strings.HasPrefix(base, "ttyUSB") || strings.HasPrefix(base, "ttyACM") {
		return true
	}
	dev, err := filepath.EvalSymlinks(filepath.Join(sysClassTTY, base, "device"))
	return err == nil && strings.Contains(dev, "/usb")
}

// USB reports whether the port is a USB serial adapter.
func (p *Port) USB() bool { return p.usb }

// Open opens path exclusively, non-blocking and without becoming its
// controlling terminal, and configures it for a card's answer to reset:
// 9600 baud 8E2 (adjust with Configure).
func Open(path string) (*Port, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open serial %s: %w", path, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open serial %s: %w", path, err)
	}
	p := &Port{path: path, f: f, rc: rc, ioctlPtr: unix.IoctlSetPointerInt, ioctlGet: unix.IoctlGetUint32, sleep: time.Sleep, usb: IsUSB(path)}
	p.drainFn = func(fd uintptr) { p.ctlErr = unix.IoctlSetInt(int(fd), unix.TCSBRK, 1) }
	p.flushFn = func(fd uintptr) { p.ctlErr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH) }
	if err := p.control(func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCEXCL, 0) }); err != nil {
		f.Close()
		return nil, fmt.Errorf("open serial %s: exclusive access (TIOCEXCL): %w", path, err)
	}
	if err := p.Configure(hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2}); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// control runs fn with the descriptor (not on hot paths: it allocates).
func (p *Port) control(fn func(fd int) error) error {
	var ferr error
	if err := p.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Path returns the device path.
func (p *Port) Path() string { return p.path }

// Close closes the port; a pending Read returns.
func (p *Port) Close() error { return p.f.Close() }

// termios2 returns the termios for c.
func termios2(c hal.LineConfig) unix.Termios {
	var t unix.Termios
	t.Iflag = 0 // no IGNPAR, ISTRIP, IXON, ICRNL, BRKINT, IGNBRK
	if c.Parity != hal.ParityNone {
		t.Iflag |= unix.INPCK | unix.PARMRK
	}
	t.Cflag = unix.CS8 | unix.CREAD | unix.CLOCAL | unix.BOTHER
	if c.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	switch c.Parity {
	case hal.ParityEven:
		t.Cflag |= unix.PARENB
	case hal.ParityOdd:
		t.Cflag |= unix.PARENB | unix.PARODD
	}
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	t.Ispeed, t.Ospeed = uint32(c.Baud), uint32(c.Baud)
	return t
}

// Configure applies c with TCSETS2 and checks the driver kept the speed.
func (p *Port) Configure(c hal.LineConfig) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("configure serial %s: %w", p.path, err)
	}
	t := termios2(c)
	var got *unix.Termios
	err := p.control(func(fd int) error {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS2, &t); err != nil {
			return fmt.Errorf("TCSETS2: %w", err)
		}
		var err error
		got, err = unix.IoctlGetTermios(fd, unix.TCGETS2)
		return err
	})
	if err != nil {
		return fmt.Errorf("configure serial %s at %d baud: %w", p.path, c.Baud, err)
	}
	if d := int(got.Ospeed) - c.Baud; d*50 > c.Baud || -d*50 > c.Baud {
		return fmt.Errorf("configure serial %s: asked %d baud, driver set %d (more than 2%% off)", p.path, c.Baud, got.Ospeed)
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

// Termios reads the line settings back with TCGETS2.
func (p *Port) Termios() (unix.Termios, error) {
	var t *unix.Termios
	err := p.control(func(fd int) (err error) {
		t, err = unix.IoctlGetTermios(fd, unix.TCGETS2)
		return err
	})
	if err != nil {
		return unix.Termios{}, fmt.Errorf("serial %s: TCGETS2: %w", p.path, err)
	}
	return *t, nil
}

// Config returns the configuration in force.
func (p *Port) Config() hal.LineConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// SetReadDeadline sets the deadline for Read; zero means none.
func (p *Port) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.dl = t
	p.mu.Unlock()
	if p.abort.Load() != nil {
		return nil // keep the aborting deadline in place
	}
	return p.f.SetReadDeadline(t)
}

// SetAbort makes pending and later Reads fail with err until SetAbort(nil);
// the slot uses it when the card is removed or the chip reports a fault.
func (p *Port) SetAbort(err error) {
	if err == nil {
		p.abort.Store(nil)
		p.mu.Lock()
		dl := p.dl
		p.mu.Unlock()
		p.f.SetReadDeadline(dl)
		return
	}
	p.abort.Store(&err)
	p.f.SetReadDeadline(time.Unix(1, 0)) // wakes a pending Read
}

// Flush discards received bytes not yet read, in the kernel and here.
func (p *Port) Flush() error {
	if p.flushFn != nil { // nil only on test ports without a tty
		err := p.rc.Control(p.flushFn)
		if err == nil {
			err = p.ctlErr
		}
		if err != nil {
			return fmt.Errorf("flush serial %s: %w", p.path, err)
		}
	}
	p.rpos, p.rlen = 0, 0
	p.dec.reset()
	return nil
}

// Read returns received bytes, unescaped; see hal.Link for marked bytes.
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if ep := p.abort.Load(); ep != nil {
		return 0, *ep
	}
	if n, err, ok := p.dec.takeHeld(b); ok {
		return n, err
	}
	for {
		if p.rpos < p.rlen {
			n, used, mark := p.dec.decode(b, p.raw[p.rpos:p.rlen])
			p.rpos += used
			if n > 0 || mark != nil {
				return n, mark
			}
			continue
		}
		n, err := p.f.Read(p.raw[:])
		if n > 0 {
			p.rpos, p.rlen = 0, n
			continue
		}
		return 0, p.readErr(err)
	}
}

func (p *Port) readErr(err error) error {
	if ep := p.abort.Load(); ep != nil {
		return *ep
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return hal.ErrTimeout
	}
	if err == nil {
		err = errors.New("end of file")
	}
	return fmt.Errorf("read serial %s: %w", p.path, err)
}

// Write sends b. With GuardETU in 1..254 every byte is written, drained and
// followed by GuardETU etu of silence; otherwise b goes out in one write.
// With Echo set, the echo of every byte is read back and compared.
//
// With Repeat and Echo set, an echo that comes back marked is the card's
// T=0 error signal: the write fails with ErrNACK. Once that happened on a
// port that is not a USB adapter, every later byte is written alone and a
// refused one goes out again, 2 etu after the signal, at most Repeat times.
// Byte-wise writing costs a receive round trip per byte (about 0.14 ms on
// a pty, a latency-timer period on USB), so a clean line keeps writing
// whole commands at once.
func (p *Port) Write(b []byte) (int, error) {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	if cfg.Repeat > 0 && cfg.Echo && p.refused && !p.usb {
		return p.writeRepeating(b, cfg)
	}
	n, err := p.write(b, cfg)
	if cfg.Repeat > 0 && errors.Is(err, errMarkedEcho) {
		p.refused = true
		return n, fmt.Errorf("%w: %w", hal.ErrNACK, err)
	}
	return n, err
}

// write sends b in one write, or paced byte by byte for the guard time.
func (p *Port) write(b []byte, cfg hal.LineConfig) (int, error) {
	if cfg.GuardETU == 0 || cfg.GuardETU == 255 {
		return p.writeChunk(b, cfg)
	}
	guard := time.Duration(cfg.GuardETU) * cfg.ETU()
	for i := range b {
		if _, err := p.writeChunk(b[i:i+1], cfg); err != nil {
			return i, err
		}
		if !cfg.Echo { // the echo already proved the byte left
			if err := p.Drain(); err != nil {
				return i + 1, err
			}
		}
		p.sleep(guard)
	}
	return len(b), nil
}

// writeRepeating sends b byte by byte with T=0 character repetition.
func (p *Port) writeRepeating(b []byte, cfg hal.LineConfig) (int, error) {
	var guard time.Duration
	if cfg.GuardETU > 0 && cfg.GuardETU < 255 {
		guard = time.Duration(cfg.GuardETU) * cfg.ETU()
	}
	for i := range b {
		for try := 0; ; try++ {
			_, err := p.writeChunk(b[i:i+1], cfg)
			if err == nil {
				break
			}
			if !errors.Is(err, errMarkedEcho) {
				return i, err
			}
			if try == cfg.Repeat {
				return i, fmt.Errorf("write serial %s: byte %#02x refused %d times: %w", p.path, b[i], try+1, hal.ErrNACK)
			}
			p.sleep(2 * cfg.ETU()) // ISO 7816-3: repeat >= 2 etu after the error signal
		}
		if guard > 0 && i < len(b)-1 {
			p.sleep(guard)
		}
	}
	return len(b), nil
}

func (p *Port) writeChunk(b []byte, cfg hal.LineConfig) (int, error) {
	for off := 0; off < len(b); off += len(p.echo) {
		chunk := b[off:min(off+len(p.echo), len(b))]
		n, err := p.f.Write(chunk)
		if err != nil {
			return off + n, fmt.Errorf("write serial %s: %w", p.path, err)
		}
		if cfg.Echo {
			if err := p.checkEcho(chunk, cfg); err != nil {
				return off + n, err
			}
		}
	}
	return len(b), nil
}

// checkEcho reads len(sent) bytes back and compares them. It uses its own
// deadline and restores the caller's afterwards.
func (p *Port) checkEcho(sent []byte, cfg hal.LineConfig) error {
	chars := time.Duration(len(sent)*(12+cfg.GuardETU)) * cfg.ETU()
	p.f.SetReadDeadline(time.Now().Add(chars + EchoSlack))
	p.mu.Lock()
	dl := p.dl
	p.mu.Unlock()
	defer p.f.SetReadDeadline(dl)
	got := 0
	for got < len(sent) {
		n, err := p.Read(p.echo[got:len(sent)])
		if err != nil {
			return p.echoErr(sent, got, err)
		}
		for i := got; i < got+n; i++ {
			if p.echo[i] != sent[i] {
				return fmt.Errorf("write serial %s: echo %#02x for sent byte %#02x: %w", p.path, p.echo[i], sent[i], hal.ErrEcho)
			}
		}
		got += n
	}
	return nil
}

func (p *Port) echoErr(sent []byte, got int, err error) error {
	if errors.Is(err, hal.ErrTimeout) {
		return fmt.Errorf("write serial %s: %d of %d echo bytes missing: %w", p.path, len(sent)-got, len(sent), hal.ErrEcho)
	}
	if errors.Is(err, hal.ErrParity) || errors.Is(err, hal.ErrFraming) {
		return fmt.Errorf("write serial %s: %w of byte %#02x (%v): %w", p.path, errMarkedEcho, sent[got], err, hal.ErrEcho)
	}
	return err
}

// Drain waits until all written bytes are transmitted (tcdrain).
func (p *Port) Drain() error {
	if err := p.rc.Control(p.drainFn); err != nil {
		return fmt.Errorf("drain serial %s: %w", p.path, err)
	}
	if p.ctlErr != nil {
		return fmt.Errorf("drain serial %s: %w", p.path, p.ctlErr)
	}
	return nil
}

// Break holds the line low for d.
func (p *Port) Break(d time.Duration) error {
	if err := p.control(func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCSBRK, 0) }); err != nil {
		return fmt.Errorf("break serial %s: %w", p.path, err)
	}
	time.Sleep(d)
	if err := p.control(func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCCBRK, 0) }); err != nil {
		return fmt.Errorf("break serial %s: %w", p.path, err)
	}
	return nil
}

// SetRTS asserts or clears RTS.
func (p *Port) SetRTS(on bool) error { return p.setModem("RTS", unix.TIOCM_RTS, on) }

// SetDTR asserts or clears DTR.
func (p *Port) SetDTR(on bool) error { return p.setModem("DTR", unix.TIOCM_DTR, on) }

func (p *Port) setModem(name string, bit int, on bool) error {
	req := uint(unix.TIOCMBIC)
	if on {
		req = unix.TIOCMBIS
	}
	err := p.control(func(fd int) error { return p.ioctlPtr(fd, req, bit) })
	if err != nil {
		return fmt.Errorf("set %s=%v on %s: %w", name, on, p.path, modemErr(err))
	}
	return nil
}

// ModemStatus returns the TIOCM_* bits (CD, DSR, CTS, RI, ...).
func (p *Port) ModemStatus() (int, error) {
	var v uint32
	err := p.control(func(fd int) (err error) {
		v, err = p.ioctlGet(fd, unix.TIOCMGET)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read modem lines of %s: %w", p.path, modemErr(err))
	}
	return int(v), nil
}

// modemErr explains ENOTTY: pseudo-terminals and some USB adapters have no
// modem lines.
func modemErr(err error) error {
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: the device has no modem control lines (a pseudo-terminal never has): %v", hal.ErrNotSupported, err)
	}
	return err
}
