// Package testecm generates synthetic ECM sections and answers them with
// control words derived from the section bytes. It is test data only: the
// "CWs" are hashes of the ECM content, not keys of any system. `satd zap`
// uses it to play a broadcaster, and the dvbapi tests use Solver as an
// in-process instant reader.
package testecm

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"satd.dev/satd/dvbapi"
)

// SectionLen is the length of a generated ECM section (like a Conax ECM).
const SectionLen = 61

var magic = [2]byte{'Z', 'P'}

// Append appends the ECM of crypto period n for (caid, sid, pid): table
// 0x80 in even periods and 0x81 in odd ones, carrying the CW of period n
// and of period n+1 in the even/odd halves as a broadcaster does.
func Append(b []byte, caid, sid, pid uint16, n uint32) []byte {
	start := len(b)
	b = append(b, 0x80|byte(n&1), 0x70, SectionLen-3)
	b = binary.BigEndian.AppendUint16(b, caid)
	b = binary.BigEndian.AppendUint16(b, sid)
	b = binary.BigEndian.AppendUint16(b, pid) // bytes 7-8: the Seca chid position
	b = append(b, magic[:]...)
	even, odd := n, n+1
	if n&1 == 1 {
		even, odd = n+1, n
	}
	b = binary.BigEndian.AppendUint32(b, even)
	b = binary.BigEndian.AppendUint32(b, odd)
	for len(b)-start < SectionLen {
		b = append(b, byte(len(b)-start))
	}
	return b
}

// Half returns the derived 8-byte CW half of crypto period n.
func Half(caid, sid uint16, n uint32) [8]byte {
	var in [17]byte
	copy(in[:], "satd-test")
	binary.BigEndian.PutUint16(in[9:], caid)
	binary.BigEndian.PutUint16(in[11:], sid)
	binary.BigEndian.PutUint32(in[13:], n)
	sum := sha256.Sum256(in[:])
	var h [8]byte
	copy(h[:], sum[:8])
	// CSA checksum bytes, as cards return them.
	h[3] = h[0] + h[1] + h[2]
	h[7] = h[4] + h[5] + h[6]
	return h
}

// Expected returns the CW pair a correct reader derives from a generated
// ECM, and false for sections this package did not generate.
func Expected(ecm []byte) (cw [16]byte, ok bool) {
	if len(ecm) < 19 || ecm[9] != magic[0] || ecm[10] != magic[1] {
		return cw, false
	}
	caid := binary.BigEndian.Uint16(ecm[3:])
	sid := binary.BigEndian.Uint16(ecm[5:])
	e := Half(caid, sid, binary.BigEndian.Uint32(ecm[11:]))
	o := Half(caid, sid, binary.BigEndian.Uint32(ecm[15:]))
	copy(cw[:8], e[:])
	copy(cw[8:], o[:])
	return cw, true
}

// Solver is an in-process instant reader: it answers synchronously inside
// Solve with the derived CWs, NotFound for foreign sections or a CAID in
// Fail, and Timeout for a CAID in Silent (without waiting).
type Solver struct {
	Fail   map[uint16]bool
	Silent map[uint16]bool
	Reader string
}

var _ dvbapi.ECMSolver = (*Solver)(nil)

// Solve answers req at once.
func (s *Solver) Solve(req *dvbapi.ECMRequest) {
	a := dvbapi.ECMAnswer{Tag: req.Tag, Result: dvbapi.NotFound, System: "Test", Reader: s.Reader, Protocol: "internal", After: time.Millisecond}
	if a.Reader == "" {
		a.Reader = "testecm"
	}
	switch {
	case s.Silent[req.CAID]:
		a.Result = dvbapi.Timeout
	case s.Fail[req.CAID]:
	default:
		if cw, ok := Expected(req.Data); ok {
			a.Result, a.CW = dvbapi.Found, cw
		}
	}
	req.Done.ECMAnswered(a)
}
