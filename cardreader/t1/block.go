// Package t1 encodes and decodes ISO 7816-3 T=1 blocks (prologue, INF,
// epilogue) with LRC or either CRC variant found in the wild. The block
// protocol state machines live in cardreader (host) and cardreader/cardsim
// (card); this package does no I/O and does not allocate.
package t1

import (
	"errors"
	"fmt"
)

// Limits of the block format.
const (
	MaxInf      = 254         // LEN = 255 is reserved
	PrologueLen = 3           // NAD PCB LEN
	MaxBlockLen = 3 + 254 + 2 // with a CRC epilogue
)

// EDC selects the epilogue of a block.
type EDC uint8

// Epilogue kinds.
const (
	// LRC is the 1-byte XOR of NAD..INF (the default, TC3 bit 1 = 0).
	LRC EDC = iota
	// CRCCCID is the 2-byte CRC of the CCID/OpenCT drivers: reflected
	// polynomial 0x8408, init 0xFFFF, no final XOR, high byte first
	// (CRC-16/MCRF4XX).
	CRCCCID
	// CRCX25 is the ISO/IEC 13239 style: as CRCCCID with a final XOR of
	// 0xFFFF, low byte first (CRC-16/X-25).
	CRCX25
)

func (e EDC) String() string {
	switch e {
	case LRC:
		return "lrc"
	case CRCCCID:
		return "crc-ccid"
	case CRCX25:
		return "crc-x25"
	}
	return "edc?"
}

// Len returns the epilogue length in bytes.
func (e EDC) Len() int {
	if e == LRC {
		return 1
	}
	return 2
}

// Block types, from the two top bits of PCB.
type Kind uint8

// Block kinds.
const (
	IBlock Kind = iota
	RBlock
	SBlock
)

func (k Kind) String() string { return [...]string{"I", "R", "S"}[k] }

// S-block functions (PCB bits 5-1); Response is OR-ed in for responses.
const (
	SResynch  = 0x00
	SIFS      = 0x01
	SAbort    = 0x02
	SWTX      = 0x03
	SVPPError = 0x04
	// SResponse is PCB bit 6 of an S-block: set in a response.
	SResponse = 0x20
)

// R-block error codes (PCB bits 4-1).
const (
	ROK        = 0x00
	REDCError  = 0x01
	ROtherErr  = 0x02
	rErrorMask = 0x0F
)

// PCB builders.

// IPCB returns the PCB of an I-block with send sequence number ns and the
// more-data bit.
func IPCB(ns uint8, more bool) byte {
	p := byte(ns&1) << 6
	if more {
		p |= 0x20
	}
	return p
}

// RPCB returns the PCB of an R-block acknowledging up to nr with error code
// errCode (ROK, REDCError, ROtherErr).
func RPCB(nr uint8, errCode byte) byte { return 0x80 | byte(nr&1)<<4 | errCode&rErrorMask }

// SPCB returns the PCB of an S-block request (response=false) or response
// for function fn.
func SPCB(fn byte, response bool) byte {
	p := 0xC0 | fn&0x1F
	if response {
		p |= SResponse
	}
	return p
}

// Block is a decoded block. Inf aliases the buffer it was decoded from.
type Block struct {
	NAD byte
	PCB byte
	Inf []byte
}

// Kind returns the block type.
func (b Block) Kind() Kind {
	switch {
	case b.PCB&0x80 == 0:
		return IBlock
	case b.PCB&0x40 == 0:
		return RBlock
	}
	return SBlock
}

// NS returns N(S) of an I-block.
func (b Block) NS() uint8 { return b.PCB >> 6 & 1 }

// More reports the M bit of an I-block.
func (b Block) More() bool { return b.PCB&0x20 != 0 }

// NR returns N(R) of an R-block.
func (b Block) NR() uint8 { return b.PCB >> 4 & 1 }

// RErr returns the error code of an R-block.
func (b Block) RErr() byte { return b.PCB & rErrorMask }

// SFunc returns the function of an S-block (SResynch … SVPPError).
func (b Block) SFunc() byte { return b.PCB & 0x1F }

// IsResponse reports whether an S-block is a response.
func (b Block) IsResponse() bool { return b.PCB&SResponse != 0 }

// Sentinel decode errors; EDC errors are answered with R(EDC error), the
// others with R(other error).
var (
	ErrEDC    = errors.New("t1: EDC mismatch")
	ErrFormat = errors.New("t1: malformed block")
)

// Append encodes a block with the given epilogue onto dst. inf must be at
// most MaxInf bytes.
func Append(dst []byte, nad, pcb byte, inf []byte, e EDC) []byte {
	start := len(dst)
	dst = append(dst, nad, pcb, byte(len(inf)))
	dst = append(dst, inf...)
	return AppendEDC(dst, dst[start:], e)
}

// AppendEDC appends the epilogue of data (NAD..INF) to dst.
func AppendEDC(dst, data []byte, e EDC) []byte {
	switch e {
	case CRCCCID:
		c := crc16(data)
		return append(dst, byte(c>>8), byte(c))
	case CRCX25:
		c := ^crc16(data)
		return append(dst, byte(c), byte(c>>8))
	}
	return append(dst, LRCOf(data))
}

// LRCOf returns the XOR of p.
func LRCOf(p []byte) byte {
	var x byte
	for _, c := range p {
		x ^= c
	}
	return x
}

// crc16 is CRC-16 with the reflected polynomial 0x8408 and init 0xFFFF,
// without final XOR.
func crc16(p []byte) uint16 {
	c := uint16(0xFFFF)
	for _, b := range p {
		c ^= uint16(b)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x8408
			} else {
				c >>= 1
			}
		}
	}
	return c
}

// BlockLen returns the full block length announced by a prologue whose LEN
// byte is n.
func BlockLen(n byte, e EDC) int { return PrologueLen + int(n) + e.Len() }

// Decode parses raw, one complete block, checks its length and EDC, and
// validates the PCB. The returned Inf aliases raw.
func Decode(raw []byte, e EDC) (Block, error) {
	if len(raw) < PrologueLen+e.Len() {
		return Block{}, fmt.Errorf("%w: %d bytes, shorter than a prologue and %s", ErrFormat, len(raw), e)
	}
	n := raw[2]
	if n == 0xFF {
		return Block{}, fmt.Errorf("%w: LEN FF is reserved", ErrFormat)
	}
	if want := BlockLen(n, e); len(raw) != want {
		return Block{}, fmt.Errorf("%w: LEN %d needs %d bytes, got %d", ErrFormat, n, want, len(raw))
	}
	body := raw[:PrologueLen+int(n)]
	if !edcOK(body, raw[len(body):], e) {
		return Block{}, fmt.Errorf("%w (%s) in block with PCB %02X", ErrEDC, e, raw[1])
	}
	b := Block{NAD: raw[0], PCB: raw[1], Inf: body[PrologueLen:]}
	if err := checkPCB(b); err != nil {
		return Block{}, err
	}
	return b, nil
}

func edcOK(body, epi []byte, e EDC) bool {
	switch e {
	case CRCCCID:
		c := crc16(body)
		return epi[0] == byte(c>>8) && epi[1] == byte(c)
	case CRCX25:
		c := ^crc16(body)
		return epi[0] == byte(c) && epi[1] == byte(c>>8)
	}
	return epi[0] == LRCOf(body)
}

// checkPCB rejects reserved PCB encodings and INF lengths that do not fit
// the block type.
func checkPCB(b Block) error {
	switch b.Kind() {
	case IBlock:
		if b.PCB&0x1F != 0 {
			return fmt.Errorf("%w: I-block PCB %02X has reserved bits set", ErrFormat, b.PCB)
		}
	case RBlock:
		if b.PCB&0x20 != 0 || b.RErr() > ROtherErr || len(b.Inf) != 0 {
			return fmt.Errorf("%w: R-block PCB %02X LEN %d", ErrFormat, b.PCB, len(b.Inf))
		}
	case SBlock:
		fn := b.SFunc()
		switch {
		case fn > SVPPError:
			return fmt.Errorf("%w: S-block PCB %02X has reserved function", ErrFormat, b.PCB)
		case (fn == SIFS || fn == SWTX) && len(b.Inf) != 1,
			(fn == SResynch || fn == SAbort || fn == SVPPError) && len(b.Inf) != 0:
			return fmt.Errorf("%w: S-block PCB %02X with LEN %d", ErrFormat, b.PCB, len(b.Inf))
		case fn == SIFS && (b.Inf[0] == 0 || b.Inf[0] == 0xFF):
			return fmt.Errorf("%w: S(IFS) with reserved size %d", ErrFormat, b.Inf[0])
		}
	}
	return nil
}
