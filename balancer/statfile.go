package balancer

import (
	"satd.dev/satd/internal/atomicfile"

	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// StatRecord is one line of an OSCam stats file.
type StatRecord struct {
	Reader string
	RC     int
	CAID   uint16
	PRID   uint32
	SrvID  uint16
	CHID   uint16
	AvgMs  int
	Count  int
	Last   int64 // unix seconds
	Fail   int
	ECMLen uint16
}

// maxStatLine bounds one line of a stats file.
const maxStatLine = 4096

// ParseStatFile reads OSCam's stats file format: the current 11-field
// comma-separated lines, or the old "label rc N caid X ..." lines. Lines
// OSCam would skip are skipped and reported in problems with their line
// number; err is only an I/O error. A line longer than maxStatLine is
// skipped alone: the lines after it still load.
func ParseStatFile(r io.Reader) (recs []StatRecord, problems []error, err error) {
	br := bufio.NewReaderSize(r, maxStatLine)
	line, oldFormat, first := 0, false, true
	for {
		raw, tooLong, rerr := readBoundedLine(br)
		if rerr != nil && rerr != io.EOF {
			return recs, problems, fmt.Errorf("stats line %d: %w", line+1, rerr)
		}
		if len(raw) == 0 && !tooLong && rerr == io.EOF {
			break
		}
		line++
		if tooLong {
			problems = append(problems, fmt.Errorf("stats line %d: longer than %d bytes, skipped", line, maxStatLine))
			if rerr == io.EOF {
				break
			}
			continue
		}
		s := strings.TrimSpace(string(raw))
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if first {
			oldFormat, first = strings.Contains(s, " rc "), false
		}
		var rec StatRecord
		var perr error
		if oldFormat {
			rec, perr = parseOldStatLine(s)
		} else {
			rec, perr = parseStatLine(s)
		}
		if perr != nil {
			problems = append(problems, fmt.Errorf("stats line %d: %w", line, perr))
			continue
		}
		recs = append(recs, rec)
		if rerr == io.EOF {
			break
		}
	}
	return recs, problems, nil
}

// readBoundedLine returns the next line without its newline, reading at
// most the reader's buffer size of it: a longer line is consumed to its end
// and reported tooLong, with no bytes. err is io.EOF after the last line.
func readBoundedLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	b, err := br.ReadSlice('\n')
	for err == bufio.ErrBufferFull {
		tooLong = true
		_, err = br.ReadSlice('\n')
	}
	if tooLong {
		return nil, true, err
	}
	return bytes.TrimSuffix(b, []byte("\n")), false, err
}

func parseStatLine(s string) (StatRecord, error) {
	f := strings.Split(s, ",")
	if len(f) != 11 {
		return StatRecord{}, fmt.Errorf("want 11 comma-separated fields, got %d", len(f))
	}
	var p fieldParser
	rec := StatRecord{
		Reader: strings.TrimSpace(f[0]),
		RC:     p.dec("rc", f[1], 0, 99),
		CAID:   uint16(p.hex("caid", f[2], 16)),
		PRID:   uint32(p.hex("prid", f[3], 24)),
		SrvID:  uint16(p.hex("srvid", f[4], 16)),
		CHID:   uint16(p.hex("chid", f[5], 16)),
		AvgMs:  p.dec("time_avg", f[6], 0, undefAvg),
		Count:  p.dec("ecm_count", f[7], 0, 1<<30),
		Last:   p.dec64("last_received", f[8], 0, 1<<40),
		Fail:   p.dec("fail_factor", f[9], -1<<30, 1<<30),
		ECMLen: uint16(p.hex("ecmlen", f[10], 16)),
	}
	return rec, p.check(rec)
}

// parseOldStatLine reads "label rc N caid X prid X srvid X time avg N ms
// ecms N last N fail N len X" (no chid) by keyword.
func parseOldStatLine(s string) (StatRecord, error) {
	t := strings.Fields(s)
	if len(t) < 2 {
		return StatRecord{}, fmt.Errorf("old format line too short")
	}
	rec := StatRecord{Reader: t[0]}
	var p fieldParser
	seen := 0
	for i := 1; i+1 < len(t); i++ {
		v := t[i+1]
		switch t[i] {
		case "rc":
			rec.RC = p.dec("rc", v, 0, 99)
		case "caid":
			rec.CAID = uint16(p.hex("caid", v, 16))
		case "prid":
			rec.PRID = uint32(p.hex("prid", v, 24))
		case "srvid":
			rec.SrvID = uint16(p.hex("srvid", v, 16))
		case "avg":
			rec.AvgMs = p.dec("avg", v, 0, undefAvg)
		case "ecms":
			rec.Count = p.dec("ecms", v, 0, 1<<30)
		case "last":
			rec.Last = p.dec64("last", v, 0, 1<<40)
		case "fail":
			rec.Fail = p.dec("fail", v, -1<<30, 1<<30)
		case "len":
			rec.ECMLen = uint16(p.hex("len", v, 16))
		default:
			continue
		}
		seen++
		i++
	}
	if seen < 9 {
		p.fail(fmt.Errorf("old format line has %d of 9 fields", seen))
	}
	return rec, p.check(rec)
}

// fieldParser keeps the first field error.
type fieldParser struct{ err error }

func (p *fieldParser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *fieldParser) dec(name, s string, lo, hi int) int {
	return int(p.dec64(name, s, int64(lo), int64(hi)))
}

// dec64 parses a decimal field that may not fit 32 bits (timestamps), so that
// stats files read the same on 32-bit receivers.
func (p *fieldParser) dec64(name, s string, lo, hi int64) int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < lo || v > hi {
		p.fail(fmt.Errorf("%s %q: want a decimal number from %d to %d", name, s, lo, hi))
	}
	return v
}

func (p *fieldParser) hex(name, s string, bits int) uint64 {
	v, err := parseHex(s, bits)
	if err != nil {
		p.fail(fmt.Errorf("%s: %w", name, err))
	}
	return v
}

func (p *fieldParser) check(rec StatRecord) error {
	if p.err == nil && rec.ECMLen == 0 {
		p.fail(fmt.Errorf("ecmlen is 0"))
	}
	if p.err == nil && rec.Reader == "" {
		p.fail(fmt.Errorf("empty reader label"))
	}
	return p.err
}

// WriteStatFile writes records in the current OSCam format.
func WriteStatFile(w io.Writer, recs []StatRecord) error {
	bw := bufio.NewWriter(w)
	for _, r := range recs {
		fmt.Fprintf(bw, "%s,%d,%04X,%06X,%04X,%04X,%d,%d,%d,%d,%02X\n",
			r.Reader, r.RC, r.CAID, r.PRID, r.SrvID, r.CHID, r.AvgMs, r.Count, r.Last, r.Fail, r.ECMLen)
	}
	return bw.Flush()
}

// LoadStats reads an OSCam stats file into the readers' tables. Entries
// for unknown readers and lines OSCam would skip are logged and dropped.
// A missing file is not an error. It returns the number of entries loaded.
func (d *Dispatcher) LoadStats(path string) (int, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load stats %s: %w", path, err)
	}
	defer f.Close()
	recs, problems, err := ParseStatFile(f)
	if err != nil {
		return 0, fmt.Errorf("load stats %s: %w", path, err)
	}
	for _, p := range problems {
		d.log.Warn("stats line skipped", "file", path, "err", p)
	}
	return d.loadRecords(recs), nil
}

// loadRecords inserts records in order of last update.
func (d *Dispatcher) loadRecords(recs []StatRecord) int {
	slices.SortStableFunc(recs, func(a, b StatRecord) int { return cmp.Compare(a.Last, b.Last) })
	d.mu.Lock()
	defer d.mu.Unlock()
	originMs := d.clock.Origin().UnixMilli()
	n := 0
	for _, r := range recs {
		ri := d.ReaderIndex(r.Reader)
		if ri < 0 {
			d.log.Warn("stats for unknown reader dropped", "reader", r.Reader)
			continue
		}
		k := statKey{caid: r.CAID, prid: r.PRID, srvid: r.SrvID, chid: r.CHID, ecmlen: r.ECMLen}
		t := &d.readers[ri].stats
		if t.get(k) >= 0 {
			continue
		}
		t.insertLoaded(statEntry{key: k, rc: Result(r.RC), count: int32(r.Count), avg: int32(r.AvgMs),
			fail: int32(r.Fail), last: Time(r.Last*1000 - originMs)})
		n++
	}
	return n
}

// Snapshot returns every reader's stats as records, after deleting
// entries older than lb_stat_cleanup, skipping ecmlen 0 (as OSCam's save
// does). Each reader is copied under the lock in one short step, so no
// stat arriving meanwhile is lost.
func (d *Dispatcher) Snapshot() []StatRecord {
	var out []StatRecord
	originMs := d.clock.Origin().UnixMilli()
	for ri := range d.readers {
		d.mu.Lock()
		now := d.clock.Now()
		t := &d.readers[ri].stats
		d.counters.StatsCleaned += uint64(t.cleanup(now - Time(d.set.StatCleanupMs)))
		d.snap = d.snap[:0]
		for i := t.tail; i >= 0; i = t.entries[i].prev {
			d.snap = append(d.snap, t.entries[i])
		}
		d.mu.Unlock()
		name := d.readers[ri].name
		for _, e := range d.snap {
			if e.key.ecmlen == 0 {
				continue
			}
			out = append(out, StatRecord{Reader: name, RC: int(e.rc), CAID: e.key.caid, PRID: e.key.prid,
				SrvID: e.key.srvid, CHID: e.key.chid, AvgMs: int(e.avg), Count: int(e.count),
				Last: (originMs + int64(e.last)) / 1000, Fail: int(e.fail), ECMLen: e.key.ecmlen})
		}
	}
	return out
}

// SaveStats writes a snapshot to lb_savepath atomically: a temporary file
// in the same directory, fsync, rename, fsync of the directory.
func (d *Dispatcher) SaveStats() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	path := d.Settings().SavePath
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = atomicfile.Write(path, 0o644, func(w io.Writer) error { return WriteStatFile(w, d.Snapshot()) })
	}
	d.mu.Lock()
	if err != nil {
		d.counters.SaveErrors++
	} else {
		d.counters.Saves++
	}
	d.mu.Unlock()
	return err
}
