package iso7816

import (
	"errors"
	"fmt"
)

// MaxATRLen is the longest ATR ISO 7816-3 allows, TS included.
const MaxATRLen = 33

// Parameter defaults that apply when the ATR does not say otherwise.
const (
	DefaultWI   = 10 // TC2 absent
	DefaultIFSC = 32 // first TA for T=1 absent
	DefaultIFSD = 32 // until an S(IFS) exchange
	DefaultBWI  = 4
	DefaultCWI  = 13
)

// ErrATR is wrapped by every ATR parse error.
var ErrATR = errors.New("invalid ATR")

// ParseMode selects how much the parser tolerates.
type ParseMode uint8

// Parse modes.
const (
	// Strict follows ISO 7816-3: every deviation is an error.
	Strict ParseMode = iota
	// Lenient accepts the deviations real cards show (missing or bad TCK,
	// trailing bytes, short historical bytes, T=15 in TD1, more than 33
	// bytes) and lists them in ATR.Deviations.
	Lenient
)

func (m ParseMode) String() string {
	if m == Lenient {
		return "lenient"
	}
	return "strict"
}

// MarshalText encodes the mode as "strict" or "lenient".
func (m ParseMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Deviation is a departure from ISO 7816-3 that the lenient mode accepted.
type Deviation uint8

// Deviations the lenient parser accepts.
const (
	MissingTCK      Deviation = iota + 1 // a T≠0 protocol is offered but TCK is absent
	BadTCK                               // TCK present but the XOR over T0..TCK is not 0
	TrailingBytes                        // bytes after the last expected byte
	ShortHistorical                      // fewer historical bytes than K announces
	T15InTD1                             // TD1 names T=15, which ISO forbids
	TooLong                              // more than 33 bytes
)

var deviationNames = [...]string{
	MissingTCK:      "missing TCK",
	BadTCK:          "bad TCK",
	TrailingBytes:   "trailing bytes",
	ShortHistorical: "short historical bytes",
	T15InTD1:        "T=15 in TD1",
	TooLong:         "longer than 33 bytes",
}

func (d Deviation) String() string {
	if int(d) < len(deviationNames) && deviationNames[d] != "" {
		return deviationNames[d]
	}
	return fmt.Sprintf("deviation(%d)", uint8(d))
}

// MarshalText encodes the deviation as its description.
func (d Deviation) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// InterfaceGroup is one set of interface bytes TAi, TBi, TCi, TDi; Has says
// which are present (bit 0 = TA … bit 3 = TD).
type InterfaceGroup struct {
	TA, TB, TC, TD byte
	Has            uint8
	// Protocol is the T announced by the TD that introduced this group
	// (TD(i-1)); -1 for group 1, which T0 introduces.
	Protocol int
}

// Presence bits of InterfaceGroup.Has.
const (
	HasTA = 1 << iota
	HasTB
	HasTC
	HasTD
)

// EDCKind is the T=1 error detection code the card asks for in TC3.
type EDCKind uint8

// EDC kinds.
const (
	EDCLRC EDCKind = iota
	EDCCRC
)

func (e EDCKind) String() string {
	if e == EDCCRC {
		return "crc"
	}
	return "lrc"
}

// MarshalText encodes the EDC as "lrc" or "crc".
func (e EDCKind) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// ATR is a parsed answer to reset with everything the host stack needs.
type ATR struct {
	// Raw holds the bytes that were parsed (logical values, TS first).
	Raw        []byte
	Convention Convention
	T0         byte
	Groups     []InterfaceGroup
	Historical []byte
	TCK        byte
	HasTCK     bool
	// Deviations lists what the lenient mode accepted, in order found.
	Deviations []Deviation

	// Protocols is a bit mask of the protocols named by the TD bytes
	// (bit T); bit 0 alone when no TD is present. Bit 15 marks global bytes.
	Protocols uint16
	// FirstProtocol is the protocol of TD1, or 0 without TD1.
	FirstProtocol int
	// TA1 is TA1 or DefaultFIDI when absent; HasTA1 says whether it was sent.
	TA1    FIDI
	HasTA1 bool
	// N is the extra guard time TC1 (0 when absent).
	N int
	// WI is the T=0 waiting time integer TC2 (10 when absent).
	WI int
	// Specific reports specific mode (TA2 present). SpecificProtocol is
	// TA2's protocol, CanChangeMode is TA2 bit 8 = 0 and ImplicitFD is TA2
	// bit 5 = 1 (F/D not from TA1).
	Specific         bool
	SpecificProtocol int
	CanChangeMode    bool
	ImplicitFD       bool
	// T=1 parameters from the first TA/TB/TC after a TD naming T=1.
	IFSC int
	BWI  int
	CWI  int
	EDC  EDCKind
	// ClockStop (0..3) and Classes (bits A=1, B=2, C=4) come from the first
	// TA after T=15; HasClassIndicator says it was present. SPU is the first
	// TB after T=15 (HasSPU).
	ClockStop         uint8
	Classes           uint8
	HasClassIndicator bool
	SPU               byte
	HasSPU            bool
}

// Offers reports whether the ATR names protocol t in a TD byte (or t = 0
// without any TD).
func (a *ATR) Offers(t int) bool { return t >= 0 && t < 16 && a.Protocols&(1<<t) != 0 }

// Fi, Di and FMax of TA1 (defaults when TA1 is absent).
func (a *ATR) Fi() int   { return a.TA1.F() }
func (a *ATR) Di() int   { return a.TA1.D() }
func (a *ATR) FMax() int { return FMax(a.TA1.FI()) }

// Deviated reports whether the lenient mode accepted deviation d.
func (a *ATR) Deviated(d Deviation) bool {
	for _, x := range a.Deviations {
		if x == d {
			return true
		}
	}
	return false
}

// ParseATR parses b, the logical ATR bytes starting with TS (0x3B or 0x3F,
// i.e. after any inverse-convention transform), in the given mode.
func ParseATR(b []byte, mode ParseMode) (*ATR, error) {
	a := &ATR{IFSC: DefaultIFSC, BWI: DefaultBWI, CWI: DefaultCWI, WI: DefaultWI, TA1: DefaultFIDI}
	dev := func(d Deviation, format string, args ...any) error {
		if mode == Lenient {
			a.Deviations = append(a.Deviations, d)
			return nil
		}
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrATR, d}, args...)...)
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, need at least TS and T0", ErrATR, len(b))
	}
	switch b[0] {
	case TSDirect:
		a.Convention = Direct
	case TSInverse:
		a.Convention = Inverse
	default:
		return nil, fmt.Errorf("%w: TS is %02X at offset 0, want 3B or 3F", ErrATR, b[0])
	}
	a.T0 = b[1]
	pos := 2
	y := b[1] >> 4
	proto := -1
	tckNeeded := false
	for i := 1; ; i++ {
		g := InterfaceGroup{Protocol: proto}
		for bit, dst := range [4]*byte{&g.TA, &g.TB, &g.TC, &g.TD} {
			if y&(1<<bit) == 0 {
				continue
			}
			if pos >= len(b) {
				return nil, fmt.Errorf("%w: truncated: T%c%d expected at offset %d, ATR has %d bytes", ErrATR, "ABCD"[bit], i, pos, len(b))
			}
			*dst = b[pos]
			g.Has |= 1 << bit
			pos++
		}
		a.Groups = append(a.Groups, g)
		if g.Has&HasTD == 0 {
			break
		}
		proto = int(g.TD & 0x0F)
		if proto != 0 {
			tckNeeded = true
		}
		if i == 1 && proto == 15 {
			if err := dev(T15InTD1, "TD1 = %02X", g.TD); err != nil {
				return nil, err
			}
		}
		a.Protocols |= 1 << proto
		y = g.TD >> 4
	}
	k := int(b[1] & 0x0F)
	end := pos + k
	if end > len(b) {
		if err := dev(ShortHistorical, "T0 announces %d historical bytes, only %d follow", k, len(b)-pos); err != nil {
			return nil, err
		}
		end = len(b)
	}
	a.Historical = b[pos:end:end]
	pos = end
	if tckNeeded {
		if pos >= len(b) {
			if err := dev(MissingTCK, "expected at offset %d", pos); err != nil {
				return nil, err
			}
		} else {
			a.TCK, a.HasTCK = b[pos], true
			pos++
			var x byte
			for _, c := range b[1:pos] {
				x ^= c
			}
			if x != 0 {
				if err := dev(BadTCK, "TCK %02X, XOR over T0..TCK is %02X", a.TCK, x); err != nil {
					return nil, err
				}
			}
		}
	}
	if pos < len(b) {
		if err := dev(TrailingBytes, "%d bytes after offset %d", len(b)-pos, pos); err != nil {
			return nil, err
		}
	}
	if pos > MaxATRLen {
		if err := dev(TooLong, "%d bytes", pos); err != nil {
			return nil, err
		}
	}
	a.Raw = b[:pos:pos]
	a.interpret()
	return a, nil
}

// interpret fills the derived parameters from the interface groups.
func (a *ATR) interpret() {
	if a.Protocols&^(1<<15) == 0 {
		a.Protocols |= 1 // T=0 is implied without a TD naming a protocol
	}
	g1 := a.Groups[0]
	if g1.Has&HasTD != 0 {
		a.FirstProtocol = int(g1.TD & 0x0F)
	}
	if g1.Has&HasTA != 0 {
		a.TA1, a.HasTA1 = FIDI(g1.TA), true
	}
	if g1.Has&HasTC != 0 {
		a.N = int(g1.TC)
	}
	if len(a.Groups) > 1 {
		g2 := a.Groups[1]
		if g2.Has&HasTA != 0 {
			a.Specific = true
			a.SpecificProtocol = int(g2.TA & 0x0F)
			a.CanChangeMode = g2.TA&0x80 == 0
			a.ImplicitFD = g2.TA&0x10 != 0
		}
		if g2.Has&HasTC != 0 && g2.Protocol == 0 && g2.TC != 0 {
			a.WI = int(g2.TC) // TC2 is specific to T=0; 0 is reserved
		}
	}
	var seenT1, seenT15 uint8
	for _, g := range a.Groups[min(2, len(a.Groups)):] {
		switch g.Protocol {
		case 1:
			a.interpretT1(g, &seenT1)
		case 15:
			a.interpretGlobal(g, &seenT15)
		}
	}
}

// interpretT1 reads IFSC, BWI/CWI and EDC from the first TA, TB, TC after a
// TD naming T=1.
func (a *ATR) interpretT1(g InterfaceGroup, seen *uint8) {
	if g.Has&HasTA != 0 && *seen&HasTA == 0 {
		a.IFSC = int(g.TA)
	}
	if g.Has&HasTB != 0 && *seen&HasTB == 0 {
		a.BWI, a.CWI = int(g.TB>>4), int(g.TB&0x0F)
	}
	if g.Has&HasTC != 0 && *seen&HasTC == 0 {
		a.EDC = EDCKind(g.TC & 1)
	}
	*seen |= g.Has
}

// interpretGlobal reads the clock stop and class indicator and SPU from the
// first TA and TB after a TD naming T=15.
func (a *ATR) interpretGlobal(g InterfaceGroup, seen *uint8) {
	if g.Has&HasTA != 0 && *seen&HasTA == 0 {
		a.ClockStop, a.Classes, a.HasClassIndicator = g.TA>>6, g.TA&0x3F, true
	}
	if g.Has&HasTB != 0 && *seen&HasTB == 0 {
		a.SPU, a.HasSPU = g.TB, true
	}
	*seen |= g.Has
}

// ValidIFSC reports whether IFSC is in 1..254; callers fall back to 32
// otherwise.
func (a *ATR) ValidIFSC() bool { return a.IFSC >= 1 && a.IFSC <= 254 }
