package sci

import (
	"encoding/binary"
	"fmt"
)

// Params is the driver's SCI_PARAMETERS:
//
//	struct { unsigned char T; unsigned long fs, ETU, WWT, CWT, BWT, EGT,
//	         clock_stop_polarity; unsigned char check, P, I, U; }
//
// The issue that introduced the backend wrote the long fields as u32: that
// is what they are on every 32-bit receiver ABI (arm, mipsel). The drivers'
// headers declare them unsigned long, so on aarch64 they are 8 bytes wide
// and aligned; Layout computes both.
type Params struct {
	T uint8 // protocol, 0 or 1
	// FS is the card clock in MHz, or the PLL divider index on boards whose
	// clock comes from a PLL (board setting sci_clock = "pll").
	FS uint32
	// ETU is the elementary time unit in card clock cycles (F/D).
	ETU uint32
	// WWT, CWT and BWT are the T=0 work waiting time and the T=1 character
	// and block waiting times, in ETU; EGT is the extra guard time N.
	WWT, CWT, BWT, EGT uint32
	ClockStopPolarity  uint32
	Check              uint8 // T=1 EDC: 1 LRC, 2 CRC
	P, I, U            uint8
}

// Layout is the C ABI of a receiver's CPU as far as the sci ioctls see it.
type Layout struct {
	Arch      string
	LongSize  int  // sizeof(unsigned long)
	BigEndian bool // byte order of the longs
	MIPSIoctl bool // MIPS/PowerPC ioctl numbering
}

// Layouts of the receiver CPUs Go builds for. sh4 and 32-bit PowerPC boxes
// have sci drivers too, but Go has no port for them.
var Layouts = []Layout{
	{Arch: "arm", LongSize: 4},
	{Arch: "arm64", LongSize: 8},
	{Arch: "mipsle", LongSize: 4, MIPSIoctl: true},
	{Arch: "mips", LongSize: 4, BigEndian: true, MIPSIoctl: true},
	{Arch: "386", LongSize: 4},
	{Arch: "amd64", LongSize: 8},
	{Arch: "riscv64", LongSize: 8},
}

// LayoutOf returns the layout of GOARCH arch.
func LayoutOf(arch string) (Layout, error) {
	for _, l := range Layouts {
		if l.Arch == arch {
			return l, nil
		}
	}
	return Layout{}, fmt.Errorf("sci: no C layout known for GOARCH %s", arch)
}

func (l Layout) order() binary.ByteOrder {
	if l.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// offsets of the fields: T at 0, the seven longs from LongSize on (the
// char is padded to the longs' alignment), the four chars after them.
func (l Layout) longAt(i int) int { return l.LongSize * (1 + i) }
func (l Layout) charsAt() int     { return l.LongSize * 8 }

// ParamsSize is sizeof(SCI_PARAMETERS): 36 bytes with 4-byte longs, 72
// with 8-byte longs (68 rounded up to the struct's alignment).
func (l Layout) ParamsSize() int {
	n := l.charsAt() + 4
	return (n + l.LongSize - 1) / l.LongSize * l.LongSize
}

// Encode writes p into b (ParamsSize bytes) as the C struct; padding is
// zero.
func (l Layout) Encode(p Params, b []byte) {
	clear(b[:l.ParamsSize()])
	b[0] = p.T
	for i, v := range [...]uint32{p.FS, p.ETU, p.WWT, p.CWT, p.BWT, p.EGT, p.ClockStopPolarity} {
		l.putLong(b[l.longAt(i):], v)
	}
	c := l.charsAt()
	b[c], b[c+1], b[c+2], b[c+3] = p.Check, p.P, p.I, p.U
}

// Decode reads the C struct from b.
func (l Layout) Decode(b []byte) Params {
	var v [7]uint32
	for i := range v {
		v[i] = l.long(b[l.longAt(i):])
	}
	c := l.charsAt()
	return Params{T: b[0], FS: v[0], ETU: v[1], WWT: v[2], CWT: v[3], BWT: v[4], EGT: v[5],
		ClockStopPolarity: v[6], Check: b[c], P: b[c+1], I: b[c+2], U: b[c+3]}
}

func (l Layout) putLong(b []byte, v uint32) {
	if l.LongSize == 8 {
		l.order().PutUint64(b, uint64(v))
		return
	}
	l.order().PutUint32(b, v)
}

func (l Layout) long(b []byte) uint32 {
	if l.LongSize == 8 {
		return uint32(l.order().Uint64(b))
	}
	return l.order().Uint32(b)
}
