package iso7816

import (
	"encoding/hex"
	"strings"
)

// Summary is the flat, JSON-friendly description of an ATR used by the
// `satd atr` tool and the web form.
type Summary struct {
	ATR              string      `json:"atr"`
	Mode             ParseMode   `json:"mode"`
	Deviations       []Deviation `json:"deviations"`
	Convention       Convention  `json:"convention"`
	Protocols        []int       `json:"protocols"`
	FirstProtocol    int         `json:"first_protocol"`
	TA1              string      `json:"ta1"`
	TA1Present       bool        `json:"ta1_present"`
	Fi               int         `json:"fi"`
	Di               int         `json:"di"`
	FMaxHz           int         `json:"fmax_hz"`
	N                int         `json:"n"`
	WI               int         `json:"wi"`
	Specific         bool        `json:"specific_mode"`
	SpecificProtocol *int        `json:"specific_protocol,omitempty"`
	CanChangeMode    *bool       `json:"can_change_mode,omitempty"`
	ImplicitFD       *bool       `json:"implicit_fd,omitempty"`
	IFSC             *int        `json:"ifsc,omitempty"`
	BWI              *int        `json:"bwi,omitempty"`
	CWI              *int        `json:"cwi,omitempty"`
	EDC              *EDCKind    `json:"edc,omitempty"`
	ClockStop        *string     `json:"clock_stop,omitempty"`
	Classes          []string    `json:"classes,omitempty"`
	SPU              *string     `json:"spu,omitempty"`
	Historical       string      `json:"historical"`
	TCK              *string     `json:"tck,omitempty"`
}

func hexString(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// Summarize describes a, which was accepted in mode.
func Summarize(a *ATR, mode ParseMode) Summary {
	s := Summary{
		ATR: hexString(a.Raw), Mode: mode, Deviations: a.Deviations, Convention: a.Convention,
		Protocols: []int{}, FirstProtocol: a.FirstProtocol,
		TA1: hexString([]byte{byte(a.TA1)}), TA1Present: a.HasTA1, Fi: a.Fi(), Di: a.Di(), FMaxHz: a.FMax(),
		N: a.N, WI: a.WI, Specific: a.Specific, Historical: hexString(a.Historical),
	}
	if s.Deviations == nil {
		s.Deviations = []Deviation{}
		if mode == Lenient {
			s.Mode = Strict // nothing needed the lenient mode
		}
	}
	for t := range 16 {
		if a.Offers(t) {
			s.Protocols = append(s.Protocols, t)
		}
	}
	if a.Specific {
		p, c, i := a.SpecificProtocol, a.CanChangeMode, a.ImplicitFD
		s.SpecificProtocol, s.CanChangeMode, s.ImplicitFD = &p, &c, &i
	}
	if a.Offers(1) {
		ifsc, bwi, cwi, edc := a.IFSC, a.BWI, a.CWI, a.EDC
		s.IFSC, s.BWI, s.CWI, s.EDC = &ifsc, &bwi, &cwi, &edc
	}
	if a.HasClassIndicator {
		stop := [...]string{"not supported", "state L", "state H", "no preference"}[a.ClockStop]
		s.ClockStop = &stop
		for i, name := range []string{"A", "B", "C"} {
			if a.Classes&(1<<i) != 0 {
				s.Classes = append(s.Classes, name)
			}
		}
	}
	if a.HasSPU {
		spu := hexString([]byte{a.SPU})
		s.SPU = &spu
	}
	if a.HasTCK {
		tck := hexString([]byte{a.TCK})
		s.TCK = &tck
	}
	return s
}
