//go:build linux && (mips || mipsle || mips64 || mips64le)

package uart

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// On MIPS struct termios2 has NCCS 23, so it is 48 bytes, not 44.
var _ [48]byte = [unsafe.Sizeof(unix.Termios{})]byte{}
