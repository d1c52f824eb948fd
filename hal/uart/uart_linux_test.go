package uart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/haltest"
)

// openPTY returns a Port on the slave of a fresh pty, and the master.
func openPTY(t testing.TB) (*Port, *os.File) {
	t.Helper()
	m, slave, err := haltest.OpenPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	p, err := Open(slave)
	skipWithoutTermios2(t, err)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); m.Close() })
	return p, m
}

func TestAnyBaudReadBackWithTCGETS2(t *testing.T) {
	p, _ := openPTY(t)
	for _, c := range []hal.LineConfig{
		{Baud: 9600, Parity: hal.ParityEven, StopBits: 2},
		{Baud: 10752, Parity: hal.ParityEven, StopBits: 2},
		{Baud: 16129, Parity: hal.ParityOdd, StopBits: 2},
		{Baud: 62500, Parity: hal.ParityEven, StopBits: 1},
		{Baud: 223200, Parity: hal.ParityNone, StopBits: 2},
	} {
		if err := p.Configure(c); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		tio, err := p.Termios()
		if err != nil {
			t.Fatal(err)
		}
		if tio.Ospeed != uint32(c.Baud) || tio.Ispeed != uint32(c.Baud) || tio.Cflag&unix.CBAUD != unix.BOTHER {
			t.Errorf("%d baud: read back ospeed %d ispeed %d cflag %#o", c.Baud, tio.Ospeed, tio.Ispeed, tio.Cflag)
		}
		// The pty driver clears PARENB on every set; PARODD survives.
		if (tio.Cflag&unix.PARODD != 0) != (c.Parity == hal.ParityOdd) || (tio.Cflag&unix.CSTOPB != 0) != (c.StopBits == 2) || tio.Cflag&unix.CSIZE != unix.CS8 {
			t.Errorf("%+v: cflag %#o", c, tio.Cflag)
		}
		marks := tio.Iflag&(unix.INPCK|unix.PARMRK) == unix.INPCK|unix.PARMRK
		if marks != (c.Parity != hal.ParityNone) || tio.Iflag&(unix.IGNPAR|unix.ISTRIP) != 0 {
			t.Errorf("%+v: iflag %#o", c, tio.Iflag)
		}
	}
	if err := p.Configure(hal.LineConfig{Baud: 9600, StopBits: 3}); err == nil {
		t.Error("3 stop bits accepted")
	}
}

func TestTermiosEncoding(t *testing.T) {
	for _, tc := range []struct {
		c     hal.LineConfig
		cflag uint32
		iflag uint32
	}{
		{hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2}, unix.PARENB | unix.CSTOPB, unix.INPCK | unix.PARMRK},
		{hal.LineConfig{Baud: 9600, Parity: hal.ParityOdd, StopBits: 2}, unix.PARENB | unix.PARODD | unix.CSTOPB, unix.INPCK | unix.PARMRK},
		{hal.LineConfig{Baud: 9600, Parity: hal.ParityNone, StopBits: 1}, 0, 0},
	} {
		tio := termios2(tc.c)
		base := uint32(unix.CS8 | unix.CREAD | unix.CLOCAL | unix.BOTHER)
		if tio.Cflag != base|tc.cflag || tio.Iflag != tc.iflag || tio.Lflag != 0 || tio.Oflag != 0 || tio.Ospeed != 9600 {
			t.Errorf("%+v: cflag %#o iflag %#o", tc.c, tio.Cflag, tio.Iflag)
		}
	}
}

func TestReadDeadlineHasMillisecondPrecision(t *testing.T) {
	p, _ := openPTY(t)
	deadline := time.Now().Add(10 * time.Millisecond)
	p.SetReadDeadline(deadline)
	n, err := p.Read(make([]byte, 8))
	returned := time.Now()
	if n != 0 || !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("read %d, %v; want ErrTimeout", n, err)
	}
	// A deadline never fires before the instant it names (an ordering that
	// load cannot break: load only makes the read return later). How late
	// it fires is a figure (tarm/serial would take 100 ms), not asserted.
	if returned.Before(deadline) {
		t.Errorf("read timed out %v before its deadline", deadline.Sub(returned))
	}
	t.Logf("10 ms deadline fired %v late", returned.Sub(deadline))
}

func TestReadUnescapesFFFromThePTY(t *testing.T) {
	p, m := openPTY(t)
	// n_tty doubles a literal FF when PARMRK is on; Read must undo it.
	m.Write([]byte{0x3B, 0xFF, 0x00, 0x03, 0x11})
	p.SetReadDeadline(time.Now().Add(hangGuard))
	var got []byte
	buf := make([]byte, 16)
	for len(got) < 5 {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatalf("after % x: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if want := []byte{0x3B, 0xFF, 0x00, 0x03, 0x11}; !bytes.Equal(got, want) {
		t.Errorf("read % x, want % x", got, want)
	}
}

func TestModemLines(t *testing.T) {
	p, _ := openPTY(t)
	// A pty has no modem lines: the error must say so.
	err := p.SetRTS(true)
	if !errors.Is(err, hal.ErrNotSupported) || !strings.Contains(err.Error(), "pseudo-terminal") {
		t.Errorf("SetRTS on a pty: %v", err)
	}
	if _, err := p.ModemStatus(); !errors.Is(err, hal.ErrNotSupported) {
		t.Errorf("ModemStatus on a pty: %v", err)
	}
	// The encoding reaching the ioctl layer.
	type call struct {
		req uint
		arg int
	}
	var calls []call
	p.ioctlPtr = func(fd int, req uint, arg int) error { calls = append(calls, call{req, arg}); return nil }
	p.ioctlGet = func(fd int, req uint) (uint32, error) {
		if req != unix.TIOCMGET {
			t.Errorf("status request %#x, want TIOCMGET", req)
		}
		return unix.TIOCM_CD | unix.TIOCM_CTS, nil
	}
	p.SetRTS(true)
	p.SetRTS(false)
	p.SetDTR(true)
	p.SetDTR(false)
	want := []call{{unix.TIOCMBIS, unix.TIOCM_RTS}, {unix.TIOCMBIC, unix.TIOCM_RTS}, {unix.TIOCMBIS, unix.TIOCM_DTR}, {unix.TIOCMBIC, unix.TIOCM_DTR}}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d: %#x %#x, want %#x %#x", i, calls[i].req, calls[i].arg, want[i].req, want[i].arg)
		}
	}
	if s, err := p.ModemStatus(); err != nil || s != unix.TIOCM_CD|unix.TIOCM_CTS {
		t.Errorf("status %#x %v", s, err)
	}
}

// simulateLine echoes every byte the host sends on the master side (a
// single-wire line), corrupting bytes for which corrupt returns true, then
// answers with reply once it has seen answerAfter bytes.
func simulateLine(m *os.File, corrupt func(byte) bool, answerAfter int, reply []byte) {
	go func() {
		buf := make([]byte, 64)
		seen := 0
		for {
			n, err := m.Read(buf)
			if err != nil {
				return
			}
			for i := range buf[:n] {
				if corrupt != nil && corrupt(buf[i]) {
					buf[i] ^= 0x80
				}
			}
			m.Write(buf[:n])
			seen += n
			if seen == answerAfter {
				m.Write(reply)
			}
		}
	}()
}

func TestEchoStrippedAndCompared(t *testing.T) {
	p, m := openPTY(t)
	p.Configure(hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2, Echo: true})
	simulateLine(m, func(b byte) bool { return b == 0xEE }, 5, []byte{0xA4})
	cmd := []byte{0xA0, 0xA4, 0x00, 0x00, 0x02}
	if n, err := p.Write(cmd); n != 5 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	p.SetReadDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, 8)
	if n, err := p.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{0xA4}) {
		t.Errorf("read % x %v; want only the card's a4", buf[:n], err)
	}
	if _, err := p.Write([]byte{0x01, 0xEE}); !errors.Is(err, hal.ErrEcho) {
		t.Errorf("corrupted echo: %v", err)
	}
}

func TestMissingEcho(t *testing.T) {
	p, m := openPTY(t)
	old := EchoSlack
	EchoSlack = 10 * time.Millisecond
	defer func() { EchoSlack = old }()
	p.Configure(hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2, Echo: true})
	go io.Copy(io.Discard, m) // swallows, never echoes
	if _, err := p.Write([]byte{1, 2}); !errors.Is(err, hal.ErrEcho) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("no echo: %v", err)
	}
}

func TestPacedWriteWaitsGuardTime(t *testing.T) {
	p, m := openPTY(t)
	go io.Copy(io.Discard, m)
	c := hal.LineConfig{Baud: 9600, Parity: hal.ParityEven, StopBits: 2, GuardETU: 20}
	p.Configure(c)
	// The pacing is recorded through the port's sleep hook rather than
	// timed: each byte is followed by the N etu guard time.
	var slept []time.Duration
	p.sleep = func(d time.Duration) { slept = append(slept, d) }
	if _, err := p.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if g := 20 * c.ETU(); !slices.Equal(slept, []time.Duration{g, g, g}) {
		t.Errorf("paced write of 3 bytes slept %v, want 3 x %v", slept, g)
	}
}

func TestAbortWakesPendingRead(t *testing.T) {
	p, m := openPTY(t)
	p.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() {
		_, err := p.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond)
	p.SetAbort(hal.ErrNoCard)
	select {
	case err := <-done:
		if !errors.Is(err, hal.ErrNoCard) {
			t.Errorf("aborted read: %v", err)
		}
	case <-time.After(time.Minute): // a hang guard: the wake takes microseconds
		t.Fatal("hung: SetAbort did not wake the reader")
	}
	p.SetAbort(nil)
	m.Write([]byte{0x42})
	p.SetReadDeadline(time.Now().Add(hangGuard))
	b := make([]byte, 1)
	if n, err := p.Read(b); n != 1 || err != nil || b[0] != 0x42 {
		t.Errorf("read after clearing abort: % x %v", b[:n], err)
	}
	p.Flush()
	p.SetReadDeadline(time.Now().Add(5 * time.Millisecond)) // absence: flushed, nothing may arrive
	if _, err := p.Read(b); !errors.Is(err, hal.ErrTimeout) {
		t.Errorf("read after flush: %v", err)
	}
}

func TestExclusiveOpen(t *testing.T) {
	m, slave, err := haltest.OpenPTY()
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	p, err := Open(slave)
	skipWithoutTermios2(t, err)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if os.Geteuid() == 0 {
		t.Log("root may bypass TIOCEXCL; checking the flag via a second open is skipped")
		return
	}
	if q, err := Open(slave); err == nil {
		q.Close()
		t.Error("second open of an exclusive tty succeeded")
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	p, m := openPTY(t)
	go io.Copy(io.Discard, m)
	p.Configure(hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2, GuardETU: 1})
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	p.SetReadDeadline(time.Now().Add(time.Hour))
	if a := testing.AllocsPerRun(50, func() { p.Write(msg[:1]) }); a != 0 {
		t.Errorf("paced byte: %v allocs", a)
	}
	p.Configure(hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2})
	if a := testing.AllocsPerRun(50, func() { p.Write(msg) }); a != 0 {
		t.Errorf("64-byte write: %v allocs", a)
	}
	// One byte per Read: 51 runs need 51 bytes, FF ones arrive escaped.
	for i := 0; i < 30; i++ {
		m.Write([]byte{1, 0xFF, 3})
	}
	if a := testing.AllocsPerRun(50, func() { p.Read(buf[:1]) }); a != 0 {
		t.Errorf("read: %v allocs", a)
	}
}

func BenchmarkPacedByte(b *testing.B) {
	p, m := openPTY(b)
	go io.Copy(io.Discard, m)
	// 1 etu at 4 Mbaud is 250 ns: the benchmark measures the layer's own
	// cost (write, drain, sleep), not the guard time itself.
	p.Configure(hal.LineConfig{Baud: 4_000_000, Parity: hal.ParityEven, StopBits: 2, GuardETU: 1})
	msg := []byte{0x55}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite64Unpaced(b *testing.B) {
	p, m := openPTY(b)
	go io.Copy(io.Discard, m)
	p.Configure(hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2})
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if _, err := p.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadMarkedBytesFromSyntheticStream runs Port.Read over a pipe that
// carries a kernel-style PARMRK stream (a pty cannot produce one): marked
// bytes end a read and come alone with their error, per hal.Link.
func TestReadMarkedBytesFromSyntheticStream(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p := &Port{path: "pipe", f: r}
	// 3B, FF (escaped), TS of an inverse card with a parity error, 5D,
	// a break, 11; the escape is split across two writes.
	w.Write([]byte{0x3B, 0xFF, 0xFF, 0xFF})
	go func() {
		time.Sleep(5 * time.Millisecond)
		w.Write([]byte{0x00, 0x03, 0x5D, 0xFF, 0x00, 0x00, 0x11})
	}()
	steps := []struct {
		want []byte
		err  error
	}{
		{[]byte{0x3B, 0xFF}, nil},
		{[]byte{0x03}, hal.ErrParity},
		{[]byte{0x5D}, nil},
		{[]byte{0x00}, hal.ErrFraming},
		{[]byte{0x11}, nil},
	}
	p.SetReadDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, 16)
	for i, s := range steps {
		n, err := p.Read(buf)
		if !bytes.Equal(buf[:n], s.want) || err != s.err {
			t.Errorf("read %d: % x, %v; want % x, %v", i, buf[:n], err, s.want, s.err)
		}
	}
}

func TestDeadlineAndReadDoNotAllocate(t *testing.T) {
	p, m := openPTY(t)
	for i := 0; i < 60; i++ {
		m.Write([]byte{byte(i)})
	}
	time.Sleep(10 * time.Millisecond)
	buf := make([]byte, 1)
	if a := testing.AllocsPerRun(50, func() {
		p.SetReadDeadline(time.Now().Add(hangGuard))
		p.Read(buf)
	}); a != 0 {
		t.Errorf("SetReadDeadline+Read: %v allocs", a)
	}
}

// skipWithoutTermios2 skips under qemu-user, which does not emulate the
// termios2 ioctls; the UART is tested natively in every make test.
func skipWithoutTermios2(t testing.TB, err error) {
	t.Helper()
	if NoTermios2(err) {
		t.Skipf("termios2 not implemented here (qemu-user): %v", err)
	}
}

// socketLine returns a Port on one end of a socket pair and the other end,
// which plays the card line: unlike a pty it can send PARMRK escapes.
func socketLine(t *testing.T, cfg hal.LineConfig, usb bool) (*Port, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("socketpair: %v", err)
	}
	unix.SetNonblock(fds[0], true)
	host := os.NewFile(uintptr(fds[0]), "host")
	line := os.NewFile(uintptr(fds[1]), "line")
	t.Cleanup(func() { host.Close(); line.Close() })
	rc, err := host.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	p := &Port{path: "socket", f: host, rc: rc, cfg: cfg, usb: usb, sleep: time.Sleep}
	return p, line
}

// TestWriteRepeatsRefusedCharacters plays a T=0 card that refuses
// characters with the error signal, which the host's UART sees as the echo
// received with an error (FF 00 xx under PARMRK).
func TestWriteRepeatsRefusedCharacters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		usb     bool
		refuse  int // times the card refuses A4
		wantErr error
		sends   int // times A4 went out
	}{
		{"refused once, repeated", false, 1, nil, 2},
		{"refused beyond Repeat", false, 9, hal.ErrNACK, 4},
		{"USB adapter: no byte-wise repetition", true, 1, hal.ErrNACK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2, Echo: true, Repeat: 3}
			p, line := socketLine(t, cfg, tc.usb)
			p.refused = true // a refusal was seen before: byte-wise writes
			sends := make(chan int, 1)
			go func() {
				buf, n := make([]byte, 16), 0
				for {
					m, err := line.Read(buf)
					if err != nil {
						sends <- n
						return
					}
					for _, b := range buf[:m] {
						echo := []byte{b}
						if b == 0xA4 {
							if n++; n <= tc.refuse {
								echo = []byte{0xFF, 0x00, b}
							}
						}
						line.Write(echo)
					}
				}
			}()
			_, err := p.Write([]byte{0x00, 0xA4, 0x01})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("write: %v, want %v", err, tc.wantErr)
			}
			p.f.Close()
			if got := <-sends; got != tc.sends {
				t.Errorf("A4 sent %d times, want %d", got, tc.sends)
			}
		})
	}
}

// TestFirstRefusalSwitchesToByteWise writes whole commands on a clean
// line; the first refusal fails its write with ErrNACK and makes the port
// repeat refused characters from then on.
func TestFirstRefusalSwitchesToByteWise(t *testing.T) {
	cfg := hal.LineConfig{Baud: 115200, Parity: hal.ParityEven, StopBits: 2, Echo: true, Repeat: 3}
	p, line := socketLine(t, cfg, false)
	refuse := make(chan struct{}, 2)
	reads := make(chan int, 16)
	echoed := make(chan int, 16) // bytes whose echo the line has written
	go func() {
		buf := make([]byte, 16)
		for {
			m, err := line.Read(buf)
			if err != nil {
				close(reads)
				return
			}
			reads <- m
			for _, b := range buf[:m] {
				select {
				case <-refuse:
					line.Write([]byte{0xFF, 0x00, b})
				default:
					line.Write([]byte{b})
				}
			}
			echoed <- m
		}
	}()
	if _, err := p.Write([]byte{1, 2, 3, 4}); err != nil {
		t.Fatalf("clean write: %v", err)
	}
	if m := <-reads; m != 4 {
		t.Errorf("clean line: %d bytes per write, want the command at once", m)
	}
	refuse <- struct{}{}
	if _, err := p.Write([]byte{5, 6}); !errors.Is(err, hal.ErrNACK) {
		t.Fatalf("refused in a whole-command write: %v, want ErrNACK", err)
	}
	// The echo of the byte after the refused one is still coming: wait
	// until the line has echoed all six bytes, then drain it as
	// cardreader's flush before the next command does.
	for n := 0; n < 6; {
		select {
		case m := <-echoed:
			n += m
		case <-time.After(hangGuard):
			t.Fatalf("hung: the line echoed %d of 6 bytes", n)
		}
	}
	p.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) // absence: every echo is already in the socket
	for buf := make([]byte, 8); ; {
		if _, err := p.Read(buf); err != nil {
			break
		}
	}
	p.SetReadDeadline(time.Time{})
	for len(reads) > 0 {
		<-reads
	}
	refuse <- struct{}{}
	if _, err := p.Write([]byte{7, 8}); err != nil {
		t.Errorf("byte-wise write with one refusal: %v", err)
	}
}

func TestIsUSB(t *testing.T) {
	dir := t.TempDir()
	old := sysClassTTY
	sysClassTTY = dir
	defer func() { sysClassTTY = old }()
	usbDev := dir + "/devices/pci0000:00/usb1/1-1/1-1:1.0"
	os.MkdirAll(usbDev, 0o755)
	os.MkdirAll(dir+"/devices/platform/serial8250", 0o755)
	os.MkdirAll(dir+"/ttyS9", 0o755)
	os.MkdirAll(dir+"/ttyAMA0", 0o755)
	os.Symlink(usbDev, dir+"/ttyAMA0/device")
	os.Symlink(dir+"/devices/platform/serial8250", dir+"/ttyS9/device")
	for path, want := range map[string]bool{"/dev/ttyUSB0": true, "/dev/ttyACM1": true, "/dev/ttyAMA0": true, "/dev/ttyS9": false, "/dev/ttyS0": false} {
		if got := IsUSB(path); got != want {
			t.Errorf("IsUSB(%s) = %v, want %v", path, got, want)
		}
	}
}

// BenchmarkWriteEcho100 writes 100 bytes with the echo checked on a pty
// whose master echoes at once, with T=0 repetition armed: whole (a clean
// line) and byte by byte (after the card refused a character once). The
// difference is the byte-wise path's cost beyond the wire time, which a
// pty does not have.
func BenchmarkWriteEcho100(b *testing.B) {
	for _, byteWise := range []bool{false, true} {
		b.Run(fmt.Sprintf("bytewise=%v", byteWise), func(b *testing.B) {
			p, m := openPTY(b)
			simulateLine(m, nil, -1, nil)
			p.Configure(hal.LineConfig{Baud: 4_000_000, Parity: hal.ParityEven, StopBits: 2, Echo: true, Repeat: 3})
			p.refused = byteWise
			msg := make([]byte, 100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
