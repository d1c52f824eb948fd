package sci

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"satd.dev/satd/hal"
)

// file is /dev/sciN.
type file struct {
	path string
	fd   int
	pfd  [1]unix.PollFd // reused so that reads and writes do not allocate
}

// writeTimeout bounds a write the driver does not take.
const writeTimeout = 2 * time.Second

// OpenDevice opens path, which must be a character device.
func OpenDevice(path string) (Device, error) {
	if err := CheckDevice(path); err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &file{path: path, fd: fd}, nil
}

// CheckDevice reports why path cannot be a smartcard device: missing, or
// not a character device.
func CheckDevice(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("smartcard device %s: %w", path, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 || fi.Mode()&os.ModeDevice == 0 {
		return fmt.Errorf("smartcard device %s: %w (it is a %s)", path, ErrNotDevice, FileKind(fi.Mode()))
	}
	return nil
}

// ErrNotDevice reports a device path that is no character device.
var ErrNotDevice = errors.New("not a character device")

func (f *file) Ioctl(name string, req uint32, arg []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(f.fd), uintptr(req), uintptr(unsafe.Pointer(&arg[0])))
	if e != 0 {
		return fmt.Errorf("ioctl %s (0x%08X) on %s: %w", name, req, f.path, e)
	}
	return nil
}

func (f *file) Read(p []byte, deadline time.Time) (int, error) {
	for {
		ms := -1
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				ms = 0
			} else {
				ms = int((d + time.Millisecond - 1) / time.Millisecond)
			}
		}
		f.pfd[0] = unix.PollFd{Fd: int32(f.fd), Events: unix.POLLIN}
		n, err := unix.Poll(f.pfd[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll %s: %w", f.path, err)
		}
		if n == 0 {
			return 0, hal.ErrTimeout
		}
		m, err := unix.Read(f.fd, p)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, fmt.Errorf("read %s: %w", f.path, err)
		case m == 0:
			return 0, fmt.Errorf("read %s: end of file: %w", f.path, hal.ErrNoCard)
		}
		return m, nil
	}
}

func (f *file) Write(p []byte) (int, error) {
	deadline := time.Now().Add(writeTimeout)
	done := 0
	for done < len(p) {
		n, err := unix.Write(f.fd, p[done:])
		if n > 0 {
			done += n
		}
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			if time.Now().After(deadline) {
				return done, fmt.Errorf("write %s: driver took %d of %d bytes in %v", f.path, done, len(p), writeTimeout)
			}
			f.pfd[0] = unix.PollFd{Fd: int32(f.fd), Events: unix.POLLOUT}
			unix.Poll(f.pfd[:], 10)
		case err != nil:
			return done, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return done, nil
}

func (f *file) Close() error { return unix.Close(f.fd) }
