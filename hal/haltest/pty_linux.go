package haltest

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a new pseudo-terminal and returns its master side and the
// path of its slave (/dev/pts/N), which satd's UART code opens as if it
// were a real tty. A card simulator reads what the host sent from master
// and writes its answers there. A pty has no parity, baud rate, modem lines
// or break: it exercises the termios code, deadlines and PARMRK escaping of
// 0xFF, not line errors.
func OpenPTY() (master *os.File, slave string, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		m.Close()
		return nil, "", err
	}
	var n uint32
	var ierr error
	err = rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		m.Close()
		return nil, "", fmt.Errorf("unlock pty: %w", err)
	}
	return m, "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}
