package balancer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by ResetStats and ClearStat.
var (
	ErrUnknownReader = errors.New("balancer: no such reader")
	ErrNoStat        = errors.New("balancer: no such statistics entry")
)

// StatKey names one statistics entry of a reader: OSCam's
// CAID@PROVID:SRVID:CHID:ECMLEN.
type StatKey struct {
	CAID   uint16
	PRID   uint32
	SrvID  uint16
	CHID   uint16
	ECMLen uint16
}

// String formats k the way OSCam's readerstats page shows it.
func (k StatKey) String() string {
	return fmt.Sprintf("%04X@%06X:%04X:%04X:%d", k.CAID, k.PRID, k.SrvID, k.CHID, k.ECMLen)
}

// ParseStatKey reads a key formatted by StatKey.String.
func ParseStatKey(s string) (StatKey, error) {
	bad := func(what string) (StatKey, error) {
		return StatKey{}, fmt.Errorf("stat key %q: %s (want CAID@PROVID:SRVID:CHID:ECMLEN)", s, what)
	}
	caid, rest, ok := strings.Cut(s, "@")
	f := strings.Split(rest, ":")
	if !ok || len(f) != 4 {
		return bad("wrong shape")
	}
	var v [5]uint64
	for i, part := range []struct {
		text      string
		base, bit int
	}{{caid, 16, 16}, {f[0], 16, 24}, {f[1], 16, 16}, {f[2], 16, 16}, {f[3], 10, 16}} {
		n, err := strconv.ParseUint(part.text, part.base, part.bit)
		if err != nil {
			return bad(fmt.Sprintf("field %d %q is not a number", i+1, part.text))
		}
		v[i] = n
	}
	return StatKey{CAID: uint16(v[0]), PRID: uint32(v[1]), SrvID: uint16(v[2]), CHID: uint16(v[3]), ECMLen: uint16(v[4])}, nil
}

// StatView is one reader's statistics entry as the web form shows it.
type StatView struct {
	Reader string
	Key    StatKey
	Result Result
	Count  int
	// Avg is the average of the last FOUND times; 0 when there is none.
	Avg time.Duration
	// Last is the latest FOUND time; 0 when there is none.
	Last     time.Duration
	Fail     int
	LastSeen time.Time
	// BlockedUntil is when a failing entry may be asked again (zero for a
	// FOUND entry).
	BlockedUntil time.Time
}

// StatViews returns every reader's statistics entries, newest first per
// reader, including those the stats file leaves out (ecmlen 0). It copies
// each reader's table under the lock and does not change any entry.
func (d *Dispatcher) StatViews() []StatView {
	var out []StatView
	origin := d.clock.Origin()
	at := func(t Time) time.Time { return origin.Add(time.Duration(t) * time.Millisecond) }
	d.mu.Lock()
	defer d.mu.Unlock()
	for ri := range d.readers {
		rs := &d.readers[ri]
		t := &rs.stats
		for i := t.tail; i >= 0; i = t.entries[i].prev {
			e := &t.entries[i]
			v := StatView{Reader: rs.name, Result: e.rc, Count: int(e.count), Fail: int(e.fail), LastSeen: at(e.last),
				Key: StatKey{CAID: e.key.caid, PRID: e.key.prid, SrvID: e.key.srvid, CHID: e.key.chid, ECMLen: e.key.ecmlen}}
			if e.avg != undefAvg && e.avg > 0 {
				v.Avg = time.Duration(e.avg) * time.Millisecond
			}
			v.Last = time.Duration(e.ring[e.ringIdx]) * time.Millisecond
			if e.rc != Found {
				f := int64(max(d.set.clampFail(e.fail), 1))
				v.BlockedUntil = at(e.last + Time(f*int64(d.set.ReopenSeconds)*1000))
			}
			out = append(out, v)
		}
	}
	return out
}

// ResetStats forgets every statistics entry of the named reader, or of
// all readers when reader is "". It returns the number of entries removed.
func (d *Dispatcher) ResetStats(reader string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	found := reader == ""
	for ri := range d.readers {
		rs := &d.readers[ri]
		if reader != "" && rs.name != reader {
			continue
		}
		found = true
		for rs.stats.head >= 0 {
			rs.stats.remove(rs.stats.head)
			n++
		}
	}
	if !found {
		return 0, fmt.Errorf("reset stats of %q: %w", reader, ErrUnknownReader)
	}
	return n, nil
}

// ClearStat deletes one statistics entry of the named reader.
func (d *Dispatcher) ClearStat(reader string, k StatKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ri := d.ReaderIndex(reader)
	if ri < 0 {
		return fmt.Errorf("clear stat of %q: %w", reader, ErrUnknownReader)
	}
	t := &d.readers[ri].stats
	sk := statKey{caid: k.CAID, prid: k.PRID, srvid: k.SrvID, chid: k.CHID, ecmlen: k.ECMLen}
	// findIn, not get: get would adopt the ecmlen of an entry stored with 0.
	i := findIn(&t.index, sk.hash(), statMatcher{t, sk})
	if i < 0 || t.entries[i].key != sk {
		return fmt.Errorf("clear stat %s of %q: %w", k, reader, ErrNoStat)
	}
	t.remove(i)
	return nil
}

// Origin is the wall time of the dispatcher clock's zero; Explanation.At
// is counted from it.
func (d *Dispatcher) Origin() time.Time { return d.clock.Origin() }
