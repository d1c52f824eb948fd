package sci

import (
	"encoding/binary"
	"unsafe"
)

// HostLayout is the layout of the running program's architecture.
var HostLayout = Layout{
	Arch:      "host",
	LongSize:  int(unsafe.Sizeof(uint(0))),
	BigEndian: binary.NativeEndian.Uint16([]byte{0, 1}) == 1,
	MIPSIoctl: mipsIoctl,
}
