package balancer

import (
	"fmt"
	"strconv"
	"strings"
)

// CAIDMask is one entry of a reader's caid list: an ECM CAID matches when
// CAID&Mask equals CAID of the entry.
type CAIDMask struct {
	CAID uint16
	Mask uint16
}

// CAIDList is OSCam's "caid" syntax: comma-separated CAID[&MASK][:MAP]
// entries in hex. The MAP part is accepted for compatibility and ignored.
type CAIDList []CAIDMask

// Match reports whether caid passes the list; an empty list passes all.
func (l CAIDList) Match(caid uint16) bool {
	if len(l) == 0 {
		return true
	}
	for _, e := range l {
		if caid&e.Mask == e.CAID {
			return true
		}
	}
	return false
}

// MatchNoProvider applies the lb_noproviderforcaid rule: an exact CAID,
// or an entry below 0x100 matching the CAID's high byte.
func (l CAIDList) MatchNoProvider(caid uint16) bool {
	for _, e := range l {
		if e.CAID == caid || (e.CAID < 0x100 && e.CAID == caid>>8) {
			return true
		}
	}
	return false
}

// UnmarshalText parses the OSCam caid syntax.
func (l *CAIDList) UnmarshalText(b []byte) error {
	var out CAIDList
	for _, tok := range splitList(string(b), ",") {
		tok, _, _ = strings.Cut(tok, ":")
		c, m, hasMask := strings.Cut(tok, "&")
		caid, err := parseHex(c, 16)
		if err != nil {
			return fmt.Errorf("caid entry %q: %w", tok, err)
		}
		mask := uint64(0xFFFF)
		if hasMask {
			if mask, err = parseHex(m, 16); err != nil {
				return fmt.Errorf("caid mask in %q: %w", tok, err)
			}
		}
		out = append(out, CAIDMask{CAID: uint16(caid), Mask: uint16(mask)})
	}
	*l = out
	return nil
}

// MarshalText writes the list back in OSCam syntax.
func (l CAIDList) MarshalText() ([]byte, error) {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%04X", e.CAID)
		if e.Mask != 0xFFFF {
			parts[i] += fmt.Sprintf("&%04X", e.Mask)
		}
	}
	return []byte(strings.Join(parts, ",")), nil
}

// CAIDValue is one CAID:value entry of a per-CAID table. Wildcard is set
// for a 2-digit CAID, which matches the high byte.
type CAIDValue struct {
	CAID     uint16
	Wildcard bool
	Value    int
}

// CAIDValueList is OSCam's per-CAID table syntax "CAID:n,CAID:n" with
// decimal values (lb_nbest_percaid, lb_retrylimits,
// fallbacktimeout_percaid). The first matching entry in order wins.
type CAIDValueList []CAIDValue

// Lookup returns the value of the first entry matching caid, or def.
func (l CAIDValueList) Lookup(caid uint16, def int) int {
	for _, e := range l {
		if e.matches(caid) {
			return e.Value
		}
	}
	return def
}

func (e CAIDValue) matches(caid uint16) bool {
	if e.Wildcard {
		return e.CAID == caid>>8
	}
	return e.CAID == caid
}

// UnmarshalText parses "CAID:n,..." entries.
func (l *CAIDValueList) UnmarshalText(b []byte) error {
	var out CAIDValueList
	for _, tok := range splitList(string(b), ",") {
		c, v, ok := strings.Cut(tok, ":")
		if !ok {
			return fmt.Errorf("entry %q: want CAID:value", tok)
		}
		caid, err := parseHex(c, 16)
		if err != nil {
			return fmt.Errorf("entry %q: %w", tok, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("entry %q: value is not a decimal integer", tok)
		}
		out = append(out, CAIDValue{CAID: uint16(caid), Wildcard: len(strings.TrimSpace(c)) <= 2, Value: n})
	}
	*l = out
	return nil
}

// MarshalText writes the table back in OSCam syntax.
func (l CAIDValueList) MarshalText() ([]byte, error) {
	parts := make([]string, len(l))
	for i, e := range l {
		if e.Wildcard {
			parts[i] = fmt.Sprintf("%02X:%d", e.CAID, e.Value)
		} else {
			parts[i] = fmt.Sprintf("%04X:%d", e.CAID, e.Value)
		}
	}
	return []byte(strings.Join(parts, ",")), nil
}

// CAIDIdents is one CAID with its list of hex values (provider idents or
// channel ids).
type CAIDIdents struct {
	CAID     uint16
	Wildcard bool
	Values   []uint32
}

// CAIDIdentList is OSCam's "ftab" syntax "CAID:ID,ID;CAID:ID" used by
// ident, chid, localcards and fallback_percaid. A 2-digit CAID is a
// wildcard for the high byte where the option allows it.
type CAIDIdentList []CAIDIdents

// UnmarshalText parses the ftab syntax.
func (l *CAIDIdentList) UnmarshalText(b []byte) error {
	var out CAIDIdentList
	for _, tok := range splitList(string(b), ";") {
		c, ids, _ := strings.Cut(tok, ":")
		caid, err := parseHex(c, 16)
		if err != nil {
			return fmt.Errorf("entry %q: %w", tok, err)
		}
		e := CAIDIdents{CAID: uint16(caid), Wildcard: len(strings.TrimSpace(c)) <= 2}
		for _, id := range splitList(ids, ",") {
			v, err := parseHex(id, 32)
			if err != nil {
				return fmt.Errorf("entry %q, id %q: %w", tok, id, err)
			}
			e.Values = append(e.Values, uint32(v))
		}
		out = append(out, e)
	}
	*l = out
	return nil
}

// MarshalText writes the list back in ftab syntax.
func (l CAIDIdentList) MarshalText() ([]byte, error) {
	parts := make([]string, len(l))
	for i, e := range l {
		var sb strings.Builder
		if e.Wildcard {
			fmt.Fprintf(&sb, "%02X", e.CAID)
		} else {
			fmt.Fprintf(&sb, "%04X", e.CAID)
		}
		for j, v := range e.Values {
			if j == 0 {
				sb.WriteByte(':')
			} else {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "%06X", v)
		}
		parts[i] = sb.String()
	}
	return []byte(strings.Join(parts, ";")), nil
}

// MatchIdent applies the reader "ident" rule: an empty list passes; else
// an entry with the same CAID (or CAID 0) must list exactly prid.
func (l CAIDIdentList) MatchIdent(caid uint16, prid uint32) bool {
	if len(l) == 0 {
		return true
	}
	for _, e := range l {
		if e.CAID == caid || e.CAID == 0 {
			for _, v := range e.Values {
				if v == prid {
					return true
				}
			}
		}
	}
	return false
}

// MatchCHID applies the reader "chid" rule: if caid appears in the list,
// chid must be listed for it.
func (l CAIDIdentList) MatchCHID(caid, chid uint16) bool {
	listed := false
	for _, e := range l {
		if e.CAID != caid {
			continue
		}
		listed = true
		for _, v := range e.Values {
			if v == uint32(chid) {
				return true
			}
		}
	}
	return !listed
}

// MatchPair reports an exact CAID whose list contains prid, or an exact
// CAID without idents (localcards).
func (l CAIDIdentList) MatchPair(caid uint16, prid uint32) bool {
	for _, e := range l {
		if e.CAID != caid {
			continue
		}
		if len(e.Values) == 0 {
			return true
		}
		for _, v := range e.Values {
			if v == prid {
				return true
			}
		}
	}
	return false
}

// MatchWildcard is MatchPair with the 2-digit CAID wildcard
// (fallback_percaid).
func (l CAIDIdentList) MatchWildcard(caid uint16, prid uint32) bool {
	for _, e := range l {
		if e.Wildcard && e.CAID != caid>>8 || !e.Wildcard && e.CAID != caid {
			continue
		}
		if len(e.Values) == 0 {
			return true
		}
		for _, v := range e.Values {
			if v == prid {
				return true
			}
		}
	}
	return false
}

// ServiceList is a list of service ids in hex; an entry prefixed with "!"
// is negative. Example: "1234,2345,!5678".
type ServiceList struct {
	Allow []uint16
	Deny  []uint16
}

// Match applies the reader "services" rule: a negative match rejects, a
// non-empty positive list requires a match.
func (l ServiceList) Match(srvid uint16) bool {
	for _, s := range l.Deny {
		if s == srvid {
			return false
		}
	}
	if len(l.Allow) == 0 {
		return true
	}
	return l.Contains(srvid)
}

// Contains reports whether srvid is in the positive list.
func (l ServiceList) Contains(srvid uint16) bool {
	for _, s := range l.Allow {
		if s == srvid {
			return true
		}
	}
	return false
}

// UnmarshalText parses the list.
func (l *ServiceList) UnmarshalText(b []byte) error {
	var out ServiceList
	for _, tok := range splitList(string(b), ",") {
		neg := strings.HasPrefix(tok, "!")
		v, err := parseHex(strings.TrimPrefix(tok, "!"), 16)
		if err != nil {
			return fmt.Errorf("service %q: %w", tok, err)
		}
		if neg {
			out.Deny = append(out.Deny, uint16(v))
		} else {
			out.Allow = append(out.Allow, uint16(v))
		}
	}
	*l = out
	return nil
}

// MarshalText writes the list back.
func (l ServiceList) MarshalText() ([]byte, error) {
	var parts []string
	for _, s := range l.Allow {
		parts = append(parts, fmt.Sprintf("%04X", s))
	}
	for _, s := range l.Deny {
		parts = append(parts, fmt.Sprintf("!%04X", s))
	}
	return []byte(strings.Join(parts, ",")), nil
}

// Groups is a set of OSCam groups 1..64, written "1,2,5".
type Groups uint64

// UnmarshalText parses the comma-separated group numbers.
func (g *Groups) UnmarshalText(b []byte) error {
	var out Groups
	for _, tok := range splitList(string(b), ",") {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("group %q: want a number from 1 to 64", tok)
		}
		out |= 1 << (n - 1)
	}
	*g = out
	return nil
}

// MarshalText writes the groups back.
func (g Groups) MarshalText() ([]byte, error) {
	var parts []string
	for i := 0; i < 64; i++ {
		if g&(1<<i) != 0 {
			parts = append(parts, strconv.Itoa(i+1))
		}
	}
	return []byte(strings.Join(parts, ",")), nil
}

func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseHex(s string, bits int) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > bits/4 {
		return 0, fmt.Errorf("%q is not a hex number of 1 to %d digits", s, bits/4)
	}
	v, err := strconv.ParseUint(s, 16, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a hex number of 1 to %d digits", s, bits/4)
	}
	return v, nil
}

// tomlString renders a list's OSCam syntax as a TOML basic string. The
// list types implement go-toml's Marshaler (MarshalTOML) with it, so a
// saved configuration reads `caid = "0B00,1830&FFF0"` as in OSCam rather
// than an array of tables of decimal numbers; decoding goes through
// UnmarshalText as before.
func tomlString(m interface{ MarshalText() ([]byte, error) }) ([]byte, error) {
	b, err := m.MarshalText()
	if err != nil {
		return nil, err
	}
	return strconv.AppendQuote(nil, string(b)), nil
}

// MarshalTOML writes the list as an OSCam-style string.
func (l CAIDList) MarshalTOML() ([]byte, error) { return tomlString(l) }

// MarshalTOML writes the table as an OSCam-style string.
func (l CAIDValueList) MarshalTOML() ([]byte, error) { return tomlString(l) }

// MarshalTOML writes the list as an OSCam-style string.
func (l CAIDIdentList) MarshalTOML() ([]byte, error) { return tomlString(l) }
