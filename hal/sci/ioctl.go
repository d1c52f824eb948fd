// Package sci drives the built-in card slots of enigma2 receivers through
// the kernel's smartcard driver: /dev/sci0, /dev/sci1 with the "sci" ioctls.
// The driver owns the interface chip (power, clock, reset, card detect) and
// moves bytes; it runs no transmission protocol, so satd's own ISO 7816
// engines (cardreader) run on top of plain read and write on the device.
//
// A Slot implements hal.Slot (and hal.Link) over a Device: the real one is
// the file descriptor of /dev/sciN; tests use a Transcript that plays back
// recorded ioctl, read and write operations byte for byte, including the
// parameter structs as the C ABI of arm, arm64 and mipsle lays them out.
package sci

import "fmt"

// Variant is the ioctl numbering a receiver's driver uses.
type Variant uint8

// Variants. Modern drivers use magic 's' and _IOW for every request (also
// for the ones that read, as the drivers' headers declare them); older
// boxes use magic 0x64 with _IO for actions, _IOW for setters and _IOR for
// getters, with the same request numbers.
const (
	Modern Variant = iota
	Legacy
)

// ParseVariant reads a board's sci_ioctl setting: "s" (or empty) or "0x64".
func ParseVariant(s string) (Variant, error) {
	switch s {
	case "", "s":
		return Modern, nil
	case "0x64", "legacy":
		return Legacy, nil
	}
	return 0, fmt.Errorf("sci ioctl variant %q: want s or 0x64", s)
}

func (v Variant) String() string {
	if v == Legacy {
		return "0x64"
	}
	return "s"
}

// Request numbers of the sci ioctls.
const (
	nrReset       = 1
	nrSetModes    = 2
	nrGetModes    = 3
	nrSetParams   = 4
	nrGetParams   = 5
	nrClockStart  = 6
	nrClockStop   = 7
	nrCardPresent = 8
	nrCardActive  = 9
	nrDeactivate  = 10
	nrATRReady    = 11
	nrATRStatus   = 12
	sizeWord      = 4 // the uint32 argument of the simple requests
	sizeModes     = 16
	legacyMagic   = 0x64
	modernMagic   = 's'
)

// request describes one ioctl: its name for errors and transcripts, its
// number and the direction in the legacy numbering.
type request struct {
	name string
	nr   uint32
	dir  dir // legacy direction
}

type dir uint8

const (
	dirNone dir = iota
	dirWrite
	dirRead
)

var (
	reqReset       = request{"RESET", nrReset, dirNone}
	reqSetParams   = request{"SET_PARAMETERS", nrSetParams, dirWrite}
	reqGetParams   = request{"GET_PARAMETERS", nrGetParams, dirRead}
	reqClockStart  = request{"CLOCK_START", nrClockStart, dirNone}
	reqClockStop   = request{"CLOCK_STOP", nrClockStop, dirNone}
	reqCardPresent = request{"CARD_PRESENT", nrCardPresent, dirRead}
	reqCardActive  = request{"CARD_ACTIVATED", nrCardActive, dirRead}
	reqDeactivate  = request{"DEACTIVATE", nrDeactivate, dirNone}
	reqATRReady    = request{"ATR_READY", nrATRReady, dirNone}
	reqATRStatus   = request{"ATR_STATUS", nrATRStatus, dirRead}
)

// number returns the ioctl request number of r with an argument of size
// bytes in variant v for the ABI l.
func (r request) number(v Variant, size int, l Layout) uint32 {
	if v == Modern {
		return l.ioc(dirWrite, modernMagic, r.nr, size)
	}
	if r.dir == dirNone {
		return l.ioc(dirNone, legacyMagic, r.nr, 0)
	}
	return l.ioc(r.dir, legacyMagic, r.nr, size)
}

// ioc encodes an ioctl number as linux/ioctl.h does for the ABI: asm-generic
// (arm, arm64, x86) has 2 direction bits at 30 and 14 size bits with
// none/write/read = 0/1/2; MIPS and PowerPC have 3 direction bits at 29 and
// 13 size bits with none/read/write = 1/2/4.
func (l Layout) ioc(d dir, typ byte, nr uint32, size int) uint32 {
	if l.MIPSIoctl {
		bits := uint32(1) // _IOC_NONE
		switch d {
		case dirRead:
			bits = 2
		case dirWrite:
			bits = 4
		}
		return bits<<29 | uint32(size)&0x1FFF<<16 | uint32(typ)<<8 | nr
	}
	return uint32(d)<<30 | uint32(size)&0x3FFF<<16 | uint32(typ)<<8 | nr
}
