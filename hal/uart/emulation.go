package uart

import (
	"errors"
	"syscall"
)

// NoTermios2 reports whether err shows that the system does not implement
// the termios2 ioctls. qemu-user, which runs satd's cross-architecture test
// suite, answers TCSETS2 with ENOSYS; real kernels have had termios2 since
// 2.6.20.
func NoTermios2(err error) bool { return errors.Is(err, syscall.ENOSYS) }
