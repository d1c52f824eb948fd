// Package iso7816 holds the pure encodings of ISO/IEC 7816-3 that the host
// stack and the card simulator share: the answer to reset, the Fi/Di and
// f(max) tables, the timing formulas, PPS and the inverse-convention byte
// transform. Nothing here does I/O.
package iso7816

// Default transmission parameters (Fd, Dd) used for the ATR and whenever no
// PPS succeeded.
const (
	DefaultF = 372
	DefaultD = 1
	// DefaultFIDI is the TA1/PPS1 encoding of (Fd, Dd).
	DefaultFIDI = 0x11
)

// fiTable maps FI (TA1 high nibble) to Fi; 0 marks a reserved value.
var fiTable = [16]int{372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0}

// fmaxTable maps FI to f(max) in hertz; 0 marks a reserved value.
var fmaxTable = [16]int{4e6, 5e6, 6e6, 8e6, 12e6, 16e6, 20e6, 0, 0, 5e6, 7.5e6, 10e6, 15e6, 20e6, 0, 0}

// diTable maps DI (TA1 low nibble) to Di; 0 marks a reserved value.
var diTable = [16]int{0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0}

// Fi returns the clock rate conversion integer for the FI nibble, or 0 if FI
// is reserved (ISO 7816-3:2006 table 7).
func Fi(fi uint8) int { return fiTable[fi&0x0F] }

// FMax returns the maximum clock frequency in hertz allowed with the FI
// nibble, or 0 if FI is reserved. ISO gives 4 MHz for FI = 0 (OSCam says 5).
func FMax(fi uint8) int { return fmaxTable[fi&0x0F] }

// Di returns the baud rate adjustment integer for the DI nibble, or 0 if DI is
// reserved (ISO 7816-3:2006 table 8; DI = 7 is 64 as in the 2006 edition).
func Di(di uint8) int { return diTable[di&0x0F] }

// FIDI is a TA1/PPS1 byte: FI in the high nibble, DI in the low nibble.
type FIDI uint8

// FI returns the FI nibble.
func (x FIDI) FI() uint8 { return uint8(x) >> 4 }

// DI returns the DI nibble.
func (x FIDI) DI() uint8 { return uint8(x) & 0x0F }

// F returns Fi for the FI nibble (0 if reserved).
func (x FIDI) F() int { return Fi(x.FI()) }

// D returns Di for the DI nibble (0 if reserved).
func (x FIDI) D() int { return Di(x.DI()) }

// Valid reports whether neither nibble is reserved.
func (x FIDI) Valid() bool { return x.F() != 0 && x.D() != 0 }
