//go:build linux && !(mips || mipsle || mips64 || mips64le)

package uart

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's struct termios2 is 44 bytes on arm, arm64 and x86 (NCCS 19);
// TCSETS2 encodes that size, so a mismatch would fail the build here.
var _ [44]byte = [unsafe.Sizeof(unix.Termios{})]byte{}
