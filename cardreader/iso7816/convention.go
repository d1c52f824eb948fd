package iso7816

import "math/bits"

// Convention is the bit order and polarity the card uses on the I/O line,
// announced by TS.
type Convention uint8

// Conventions.
const (
	Direct  Convention = iota // TS = 0x3B: high level is 1, LSB first
	Inverse                   // TS = 0x3F: low level is 1, MSB first
)

func (c Convention) String() string {
	if c == Inverse {
		return "inverse"
	}
	return "direct"
}

// MarshalText encodes the convention as "direct" or "inverse".
func (c Convention) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Raw TS values as a direct-convention UART at 8E2 reads them.
const (
	TSDirect  = 0x3B // direct convention, parity correct
	TSInverse = 0x3F // inverse convention, after the transform
	// TSInverseRaw is what a direct-mode UART receives for an inverse TS; it
	// arrives with a parity error.
	TSInverseRaw = 0x03
)

// inverseTable[b] is bit-reverse(NOT b). The transform is its own inverse.
var inverseTable = func() (t [256]byte) {
	for i := range t {
		t[i] = bits.Reverse8(^byte(i))
	}
	return t
}()

// InverseByte converts a byte between its raw line form and its logical value
// under the inverse convention (the transform is an involution).
func InverseByte(b byte) byte { return inverseTable[b] }

// InverseBytes transforms p in place with InverseByte.
func InverseBytes(p []byte) {
	for i, b := range p {
		p[i] = inverseTable[b]
	}
}
