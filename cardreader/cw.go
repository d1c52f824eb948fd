package cardreader

// CWPolicy says what a reader does with a control word whose checksum
// bytes are wrong. Bytes 3, 7, 11 and 15 of a CW pair are each the sum mod
// 256 of the three bytes before them; descramblers expect them so.
type CWPolicy uint8

// CW checksum policies, after OSCam's dropbadcws.
const (
	// FixBadCWs rewrites wrong checksum bytes (OSCam's default).
	FixBadCWs CWPolicy = iota
	// DropBadCWs refuses a CW pair with a wrong checksum byte
	// (dropbadcws = 1).
	DropBadCWs
)

// BadCWChecksums returns a mask of the four-byte groups of cw whose
// checksum byte is wrong: bit i stands for bytes 4i..4i+3 (bits 0-1 the
// even CW, bits 2-3 the odd one).
func BadCWChecksums(cw *[16]byte) uint8 {
	var bad uint8
	for i := 0; i < 16; i += 4 {
		if cw[i]+cw[i+1]+cw[i+2] != cw[i+3] {
			bad |= 1 << (i / 4)
		}
	}
	return bad
}

// FixCWChecksums rewrites every checksum byte of cw.
func FixCWChecksums(cw *[16]byte) {
	for i := 0; i < 16; i += 4 {
		cw[i+3] = cw[i] + cw[i+1] + cw[i+2]
	}
}

// Apply checks cw under the policy: a pair with valid checksums passes;
// a wrong checksum byte is fixed under FixBadCWs and refused (false)
// under DropBadCWs.
func (p CWPolicy) Apply(cw *[16]byte) bool {
	if BadCWChecksums(cw) == 0 {
		return true
	}
	if p == DropBadCWs {
		return false
	}
	FixCWChecksums(cw)
	return true
}
