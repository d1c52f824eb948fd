// Package channels keeps the channel names an OSCam user already has:
// oscam.srvid, oscam.srvid2 and enigma2's lamedb. dvbapi carries no names,
// so without them the Status page shows only CAID@PROVID:SID.
//
// Reference facts (OSCam's Distribution/doc/txt and enigma2's lamedb):
//   - oscam.srvid: "CAID[,CAID]...:SID|provider|name|type|description";
//   - oscam.srvid2: "SID:CAID[@PROVID][,CAID[@PROVID]]...|name|type|description|provider";
//   - lamedb (format 4): a "services" section of three-line entries,
//     "SID:namespace:TSID:ONID:type:number" (hex), the name, then
//     "p:provider,C:caid,..."; format 5 puts one service on a line,
//     `s:SID:namespace:TSID:ONID:type:number,"name",p:provider,C:caid`.
//
// All numbers are hex. Lines starting with # are comments. A bad line is
// reported with its number and skipped; nothing else is lost.
package channels

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"satd.dev/satd/internal/atomicfile"
)

// Bounds of a names table: a full satellite line-up is a few thousand
// services; these keep a hostile upload from costing more than a few MB.
const (
	MaxEntries = 50000
	maxField   = 128 // bytes of a name, type, description or provider
	maxCAIDs   = 32  // CAIDs of one entry
)

// ErrTooMany is returned when a file has more than MaxEntries services.
var ErrTooMany = fmt.Errorf("more than %d channel names", MaxEntries)

// CAIDProv is one CAID of an entry, with its provider ID when given.
type CAIDProv struct {
	CAID     uint16
	Provider uint32
	HasProv  bool
}

// Entry is one service's name and where it came from.
type Entry struct {
	SID         uint16
	CAIDs       []CAIDProv // empty: any CAID
	Name        string
	Type        string
	Description string
	Provider    string
}

// Problem is a line that was skipped, with the reason.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// lines calls fn for every non-empty, non-comment line of doc, with its
// number; it stops at the first error fn returns.
func lines(doc []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

func hex16(s string) (uint16, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 16, 16)
	return uint16(v), err
}

func field(parts []string, i int) string {
	if i >= len(parts) {
		return ""
	}
	s := strings.TrimSpace(parts[i])
	if len(s) > maxField {
		s = s[:maxField]
	}
	return s
}

// oscamFormat is one of OSCam's two line formats: "IDS|field|field|...".
type oscamFormat struct {
	syntax   string
	sidFirst bool // srvid2: "SID:CAIDS"; srvid: "CAIDS:SID"
	withProv bool // CAID@PROVID allowed
	fields   func(e *Entry, p []string)
}

var (
	srvidFormat = oscamFormat{syntax: "CAID[,CAID]...:SID|provider|name|type|description",
		fields: func(e *Entry, p []string) {
			e.Provider, e.Name, e.Type, e.Description = field(p, 0), field(p, 1), field(p, 2), field(p, 3)
		}}
	srvid2Format = oscamFormat{syntax: "SID:CAID[@PROVID][,...]|name|type|description|provider", sidFirst: true, withProv: true,
		fields: func(e *Entry, p []string) {
			e.Name, e.Type, e.Description, e.Provider = field(p, 0), field(p, 1), field(p, 2), field(p, 3)
		}}
)

// ParseSrvid reads oscam.srvid.
func ParseSrvid(file string, doc []byte) ([]Entry, []Problem, error) {
	return srvidFormat.parse(file, doc)
}

// ParseSrvid2 reads oscam.srvid2.
func ParseSrvid2(file string, doc []byte) ([]Entry, []Problem, error) {
	return srvid2Format.parse(file, doc)
}

func (f oscamFormat) parse(file string, doc []byte) ([]Entry, []Problem, error) {
	var out []Entry
	var probs []Problem
	err := lines(doc, func(n int, line string) error {
		e, msg := f.entry(line)
		if msg != "" {
			probs = append(probs, Problem{file, n, msg})
			return nil
		}
		return add(&out, e)
	})
	return out, probs, err
}

// entry reads one line, or says what is wrong with it.
func (f oscamFormat) entry(line string) (Entry, string) {
	head, rest, ok := strings.Cut(line, "|")
	a, b, ok2 := strings.Cut(head, ":")
	if !ok || !ok2 {
		return Entry{}, "not " + f.syntax
	}
	sidText, caids := b, a
	if f.sidFirst {
		sidText, caids = a, b
	}
	sid, err := hex16(sidText)
	if err != nil {
		return Entry{}, fmt.Sprintf("service ID %q is not hex", sidText)
	}
	cps, msg := parseCAIDs(caids, f.withProv)
	if msg != "" {
		return Entry{}, msg
	}
	e := Entry{SID: sid, CAIDs: cps}
	f.fields(&e, strings.Split(rest, "|"))
	return e, ""
}

// parseCAIDs reads "0B00,0963" or, withProv, "0B00@000000,0963".
func parseCAIDs(s string, withProv bool) ([]CAIDProv, string) {
	var out []CAIDProv
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		var cp CAIDProv
		caid, prov, hasProv := strings.Cut(c, "@")
		if hasProv && !withProv {
			return nil, fmt.Sprintf("CAID %q: oscam.srvid has no provider IDs", c)
		}
		v, err := hex16(caid)
		if err != nil {
			return nil, fmt.Sprintf("CAID %q is not hex", caid)
		}
		cp.CAID = v
		if hasProv {
			p, err := strconv.ParseUint(strings.TrimSpace(prov), 16, 24)
			if err != nil {
				return nil, fmt.Sprintf("provider ID %q is not 6 hex digits", prov)
			}
			cp.Provider, cp.HasProv = uint32(p), true
		}
		if len(out) == maxCAIDs {
			return nil, fmt.Sprintf("more than %d CAIDs", maxCAIDs)
		}
		out = append(out, cp)
	}
	return out, ""
}

func add(out *[]Entry, e Entry) error {
	if e.Name == "" {
		return nil // nothing to show
	}
	if len(*out) >= MaxEntries {
		return ErrTooMany
	}
	*out = append(*out, e)
	return nil
}

// ParseLamedb reads enigma2's lamedb (format 4) or lamedb5.
func ParseLamedb(file string, doc []byte) ([]Entry, []Problem, error) {
	var out []Entry
	var probs []Problem
	inServices := false
	var pending *Entry // format 4: service line read, name and provider next
	step := 0
	err := lines(doc, func(n int, line string) error {
		if strings.HasPrefix(line, "s:") { // lamedb5
			e, msg := lamedb5Service(line)
			if msg != "" {
				probs = append(probs, Problem{file, n, msg})
				return nil
			}
			return add(&out, e)
		}
		switch {
		case line == "services":
			inServices = true
			return nil
		case !inServices:
			return nil
		case line == "end" && step == 0:
			inServices = false
			return nil
		}
		switch step {
		case 0:
			f := strings.Split(line, ":")
			sid, err := hex16(f[0])
			if len(f) < 5 || err != nil {
				probs = append(probs, Problem{file, n, "not SID:namespace:TSID:ONID:type:number"})
				return nil
			}
			pending, step = &Entry{SID: sid}, 1
		case 1:
			pending.Name, step = field([]string{line}, 0), 2
		case 2:
			lamedbData(pending, strings.Split(line, ","))
			step = 0
			return add(&out, *pending)
		}
		return nil
	})
	return out, probs, err
}

// lamedb5Service reads `s:SID:ns:TSID:ONID:type:number,"name",p:...`.
func lamedb5Service(line string) (Entry, string) {
	ids, rest, _ := strings.Cut(line[2:], ",")
	f := strings.Split(ids, ":")
	sid, err := hex16(f[0])
	if len(f) < 5 || err != nil {
		return Entry{}, "not s:SID:namespace:TSID:ONID:type:number,\"name\""
	}
	if !strings.HasPrefix(rest, `"`) {
		return Entry{}, "no quoted service name"
	}
	name, data, ok := strings.Cut(rest[1:], `"`)
	if !ok {
		return Entry{}, "unterminated service name"
	}
	e := Entry{SID: sid, Name: field([]string{name}, 0)}
	lamedbData(&e, strings.Split(strings.TrimPrefix(data, ","), ","))
	return e, ""
}

// lamedbData takes the provider (p:) and CAIDs (C:) of a service.
func lamedbData(e *Entry, items []string) {
	for _, it := range items {
		k, v, _ := strings.Cut(it, ":")
		switch k {
		case "p":
			e.Provider = field([]string{v}, 0)
		case "C":
			if c, err := hex16(v); err == nil && len(e.CAIDs) < maxCAIDs {
				e.CAIDs = append(e.CAIDs, CAIDProv{CAID: c})
			}
		}
	}
}

// key finds a name by CAID and SID; prov is the provider or noProv.
type key struct {
	caid uint16
	sid  uint16
	prov uint32
}

const noProv = 1 << 31

// Table is a names table: lookups by CAID@PROVID:SID, CAID:SID, then SID.
type Table struct {
	entries []Entry
	exact   map[key]string
	bySID   map[uint16]string
}

// NewTable indexes entries; a later entry wins over an earlier one for the
// same key, so files merged in order (srvid, srvid2, lamedb) override.
func NewTable(entries []Entry) *Table {
	t := &Table{entries: entries, exact: map[key]string{}, bySID: map[uint16]string{}}
	for _, e := range entries {
		t.bySID[e.SID] = e.Name
		for _, c := range e.CAIDs {
			p := uint32(noProv)
			if c.HasProv {
				p = c.Provider
			}
			t.exact[key{c.CAID, e.SID, p}] = e.Name
		}
	}
	return t
}

// Len is the number of entries.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Name returns the name of service sid under caid and provider, or "".
func (t *Table) Name(caid uint16, provider uint32, sid uint16) string {
	if t == nil {
		return ""
	}
	if n, ok := t.exact[key{caid, sid, provider}]; ok {
		return n
	}
	if n, ok := t.exact[key{caid, sid, noProv}]; ok {
		return n
	}
	return t.bySID[sid]
}

// WriteSrvid2 writes the table in oscam.srvid2 format, sorted by SID.
func (t *Table) WriteSrvid2(w io.Writer) error {
	es := append([]Entry(nil), t.entries...)
	sort.SliceStable(es, func(i, j int) bool { return es[i].SID < es[j].SID })
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# channel names for satd (oscam.srvid2 format: SID:CAID[@PROVID],...|name|type|description|provider)")
	for _, e := range es {
		fmt.Fprintf(bw, "%04X:", e.SID)
		for i, c := range e.CAIDs {
			if i > 0 {
				bw.WriteByte(',')
			}
			fmt.Fprintf(bw, "%04X", c.CAID)
			if c.HasProv {
				fmt.Fprintf(bw, "@%06X", c.Provider)
			}
		}
		fmt.Fprintf(bw, "|%s|%s|%s|%s\n", clean(e.Name), clean(e.Type), clean(e.Description), clean(e.Provider))
	}
	return bw.Flush()
}

// clean keeps a field on its line and in its column.
func clean(s string) string { return strings.NewReplacer("|", "/", "\n", " ", "\r", " ").Replace(s) }

// Names is the table in force, replaced as a whole.
type Names struct{ p atomic.Pointer[Table] }

// Table returns the table in force (nil when none).
func (n *Names) Table() *Table { return n.p.Load() }

// Set puts t in force.
func (n *Names) Set(t *Table) { n.p.Store(t) }

// Name looks a service up in the table in force.
func (n *Names) Name(caid uint16, provider uint32, sid uint16) string {
	return n.p.Load().Name(caid, provider, sid)
}

// File is where the daemon keeps its names table under the state directory.
const File = "oscam.srvid2"

// Load reads the names table at path (oscam.srvid2 format); a missing
// file is an empty table.
func Load(path string) (*Table, []Problem, error) {
	doc, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NewTable(nil), nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	es, probs, err := ParseSrvid2(path, doc)
	if err != nil {
		return nil, probs, fmt.Errorf("channel names %s: %w", path, err)
	}
	return NewTable(es), probs, nil
}

// Save writes t to path atomically.
func Save(path string, t *Table) error {
	return atomicfile.Write(path, 0o644, t.WriteSrvid2)
}

// Files are the name files of an OSCam or enigma2 setup; each is optional.
type Files struct {
	Srvid, Srvid2, Lamedb []byte
}

// Empty reports whether no file was given.
func (f Files) Empty() bool { return len(f.Srvid)+len(f.Srvid2)+len(f.Lamedb) == 0 }

// Import parses the files into one table: oscam.srvid2 names win over
// oscam.srvid ones, and both over lamedb's, for the same service.
func Import(f Files) (*Table, []Problem, error) {
	var all []Entry
	var probs []Problem
	for _, src := range []struct {
		name  string
		doc   []byte
		parse func(string, []byte) ([]Entry, []Problem, error)
	}{{"lamedb", f.Lamedb, ParseLamedb}, {"oscam.srvid", f.Srvid, ParseSrvid}, {"oscam.srvid2", f.Srvid2, ParseSrvid2}} {
		if len(src.doc) == 0 {
			continue
		}
		es, ps, err := src.parse(src.name, src.doc)
		probs = append(probs, ps...)
		if err != nil {
			return nil, probs, fmt.Errorf("%s: %w", src.name, err)
		}
		if len(all)+len(es) > MaxEntries {
			return nil, probs, ErrTooMany
		}
		all = append(all, es...)
	}
	return NewTable(all), probs, nil
}
