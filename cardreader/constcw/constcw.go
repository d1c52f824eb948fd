// Package constcw is a reader without a card: it answers ECMs from a file
// in OSCam's constant.cw format. One rule per line, '#' starts a comment:
//
//	CAID:PROVID:SID:PMTPID:ECMPID::b0 b1 … b15        (classic)
//	CAID:PROVID:SID:PMTPID:ECMPID:VPID:b0 b1 … b15    (extended)
//
// Fields are hex (up to 4/6/4/4/4/4 digits); the 16 CW bytes are hex bytes
// separated by spaces, the first 8 the even CW, the last 8 the odd CW.
// CAID and SID must match exactly; PROVID 0 in the rule matches any
// provider; PMT PID, ECM PID and video PID match when either side is 0 or
// they are equal. The first matching line wins. The ECM content is not
// looked at.
//
// A rule's CW goes through the reader's CW checksum policy like a card's
// (cardreader.CWPolicy): a wrong checksum byte is fixed, or with
// dropbadcws the lookup fails with ErrBadCW.
//
// File edits apply without a restart: every lookup checks the file's size
// and modification time and re-reads it when they changed (OSCam re-reads
// on every ECM).
package constcw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"satd.dev/satd/cardreader"
)

// Rule is one line of a constant.cw file.
type Rule struct {
	CAID   uint16
	PROVID uint32
	SID    uint16
	PMTPID uint16
	ECMPID uint16
	VPID   uint16
	CW     [16]byte
	Line   int
}

// Query is what an ECM request tells about itself; zero PIDs are unknown.
type Query struct {
	CAID   uint16
	PROVID uint32
	SID    uint16
	PMTPID uint16
	ECMPID uint16
	VPID   uint16
}

// Matches reports whether the rule answers q.
func (r *Rule) Matches(q Query) bool {
	pid := func(a, b uint16) bool { return a == 0 || b == 0 || a == b }
	return r.CAID == q.CAID && r.SID == q.SID &&
		(r.PROVID == 0 || r.PROVID == q.PROVID) &&
		pid(r.PMTPID, q.PMTPID) && pid(r.ECMPID, q.ECMPID) && pid(r.VPID, q.VPID)
}

// Match returns the first rule of rules that matches q.
func Match(rules []Rule, q Query) (*Rule, bool) {
	for i := range rules {
		if rules[i].Matches(q) {
			return &rules[i], true
		}
	}
	return nil, false
}

// ErrBadCW reports a matching rule whose CW has a wrong checksum byte while
// the policy is cardreader.DropBadCWs.
var ErrBadCW = errors.New("constant.cw rule has a CW with a wrong checksum byte (dropbadcws refuses it)")

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("constant.cw syntax error")

// Parse reads a constant.cw file; name is used in errors, which name the
// line and field.
func Parse(name string, data []byte) ([]Rule, error) {
	var rules []Rule
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		r, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %s", name, line, ErrSyntax, err)
		}
		r.Line = line
		rules = append(rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return rules, nil
}

var fieldNames = [...]string{"CAID", "PROVID", "SID", "PMTPID", "ECMPID", "VPID"}
var fieldDigits = [...]int{4, 6, 4, 4, 4, 4}

func parseLine(text string) (Rule, error) {
	parts := strings.SplitN(text, ":", 7)
	if len(parts) != 7 {
		return Rule{}, fmt.Errorf("want CAID:PROVID:SID:PMTPID:ECMPID:[VPID]:CW, found %d fields", len(parts))
	}
	var v [6]uint64
	for i := range 6 {
		s := strings.TrimSpace(parts[i])
		if s == "" && i == 5 {
			continue // classic form: empty video PID
		}
		if s == "" || len(s) > fieldDigits[i] {
			return Rule{}, fmt.Errorf("%s %q: want 1-%d hex digits", fieldNames[i], s, fieldDigits[i])
		}
		n, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			return Rule{}, fmt.Errorf("%s %q: want hex digits", fieldNames[i], s)
		}
		v[i] = n
	}
	r := Rule{CAID: uint16(v[0]), PROVID: uint32(v[1]), SID: uint16(v[2]), PMTPID: uint16(v[3]), ECMPID: uint16(v[4]), VPID: uint16(v[5])}
	cw := strings.Fields(parts[6])
	if len(cw) != 16 {
		return Rule{}, fmt.Errorf("CW: want 16 hex bytes separated by spaces, found %d", len(cw))
	}
	for i, s := range cw {
		b, err := strconv.ParseUint(s, 16, 8)
		if err != nil || len(s) > 2 {
			return Rule{}, fmt.Errorf("CW byte %d %q: want two hex digits", i+1, s)
		}
		r.CW[i] = byte(b)
	}
	return r, nil
}

// File is a constant.cw file that is re-read when it changes. Its methods
// may be called from several goroutines.
type File struct {
	path   string
	policy cardreader.CWPolicy

	mu      sync.Mutex
	size    int64
	mod     time.Time
	loaded  bool
	rules   []Rule
	lastErr error
}

// Open returns a File for path; the file is read at the first lookup.
func Open(path string) *File { return &File{path: path} }

// SetCWPolicy sets what Lookup does with a CW whose checksum bytes are
// wrong (default cardreader.FixBadCWs). Call it before the first lookup.
func (f *File) SetCWPolicy(p cardreader.CWPolicy) { f.policy = p }

// Path returns the file name.
func (f *File) Path() string { return f.path }

// Lookup returns the control words of the first rule matching q. It
// re-reads the file when its size or modification time changed. A file
// that cannot be read or parsed gives an error (the last good rules are
// not used: a broken edit must be visible).
func (f *File) Lookup(q Query) ([16]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return [16]byte{}, false, err
	}
	if r, ok := Match(f.rules, q); ok {
		cw := r.CW
		if !f.policy.Apply(&cw) {
			return [16]byte{}, false, fmt.Errorf("%s:%d: %w", f.path, r.Line, ErrBadCW)
		}
		return cw, true, nil
	}
	return [16]byte{}, false, nil
}

// Rules returns the rules in force after re-reading a changed file.
func (f *File) Rules() ([]Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.refreshLocked()
	return append([]Rule(nil), f.rules...), err
}

// Present reports whether the file can be read and parsed (OSCam: "card
// inserted" when the file opens).
func (f *File) Present() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshLocked() == nil
}

func (f *File) refreshLocked() error {
	st, err := os.Stat(f.path)
	if err != nil {
		f.loaded, f.rules, f.lastErr = false, nil, fmt.Errorf("constcw: %w", err)
		return f.lastErr
	}
	if f.loaded && st.Size() == f.size && st.ModTime().Equal(f.mod) {
		return f.lastErr
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.loaded, f.rules, f.lastErr = false, nil, fmt.Errorf("constcw: %w", err)
		return f.lastErr
	}
	f.loaded, f.size, f.mod = true, st.Size(), st.ModTime()
	f.rules, f.lastErr = Parse(f.path, data)
	return f.lastErr
}
