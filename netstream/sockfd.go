package netstream

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// detachSocket takes the socket out of conn for a writer shard and closes
// conn. The duplicate descriptor refers to the same open socket, so it is
// non-blocking like the runtime's (O_NONBLOCK belongs to the open file, not
// the descriptor); closing conn drops the runtime poller registration, the
// net.Conn with its addresses and deadlines, so a streaming listener costs
// one int instead of a netFD.
func detachSocket(conn net.Conn, lowat int) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("detach listener socket: %T is not a socket", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("detach listener socket: %w", err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(raw uintptr) { fd, dupErr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("detach listener socket: %w", err)
	}
	if dupErr != nil {
		return -1, fmt.Errorf("detach listener socket: dup: %w", dupErr)
	}
	tuneListenerSocket(fd, lowat)
	_ = conn.Close()
	return fd, nil
}
