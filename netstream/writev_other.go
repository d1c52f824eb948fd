//go:build unix && !linux

package netstream

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// iovecs is a shard's fixed iovec array for writev.
type iovecs struct{ v [maxIov]unix.Iovec }

// writev writes the buffers one by one without blocking (portable fallback).
func (io *iovecs) writev(fd uintptr, bufs [][]byte) (int, error) {
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		w, err := unix.Write(int(fd), b)
		if w > 0 {
			n += w
		}
		if err != nil {
			if n > 0 {
				return n, nil
			}
			if err == unix.EAGAIN {
				return 0, syscall.EAGAIN
			}
			return 0, err
		}
		if w < len(b) {
			break
		}
	}
	return n, nil
}

func tuneListenerSocket(fd, lowat int) {}
