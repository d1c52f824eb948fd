package netstream

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iovecs is a shard's fixed iovec array for writev.
type iovecs struct{ v [maxIov]unix.Iovec }

// writev writes bufs to the non-blocking fd in one system call. It returns
// EAGAIN when the socket is full; it never blocks and allocates nothing.
func (io *iovecs) writev(fd uintptr, bufs [][]byte) (int, error) {
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		io.v[n].Base = &b[0]
		io.v[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for {
		// The fd is non-blocking, so the call is short: a raw system call
		// spares the scheduler hand-off (and the sysmon wake-ups it causes)
		// of thousands of writes per second.
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&io.v[0])), uintptr(n))
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, syscall.EAGAIN
		default:
			return 0, e
		}
	}
}

// tuneListenerSocket bounds the unsent bytes the kernel keeps for a listener,
// so a slow client shows up as ring lag instead of hidden kernel memory.
func tuneListenerSocket(fd, lowat int) {
	if lowat > 0 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, lowat)
	}
}
