package sci

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errnoName returns the errno's symbolic name for transcripts.
func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return "EIO"
}
