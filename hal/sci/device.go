package sci

import "time"

// Device is the seam between a Slot and the kernel: the file descriptor of
// /dev/sciN, a Recorder around it, or a Transcript playing one back.
type Device interface {
	// Ioctl runs request req (name is for errors and transcripts) with arg
	// as the argument buffer; the driver may write into it.
	Ioctl(name string, req uint32, arg []byte) error
	// Read returns at least one byte the card sent, or hal.ErrTimeout once
	// deadline passed without any.
	Read(p []byte, deadline time.Time) (int, error)
	// Write sends p to the card.
	Write(p []byte) (int, error)
	Close() error
}
