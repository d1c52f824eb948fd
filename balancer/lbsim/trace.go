// Package lbsim replays a trace of ECMs through the real balancer
// Dispatcher on virtual time, with simulated readers that answer as the
// trace says, and reports what happened per ECM. It backs `satd lbsim`.
package lbsim

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"satd.dev/satd/balancer"
)

// EventKind says what a trace line does.
type EventKind uint8

// Trace event kinds.
const (
	EventECM EventKind = iota
	EventAdvance
	EventRemove
	EventInsert
)

// Reply is what a simulated reader does when asked.
type Reply struct {
	// Silent readers never answer.
	Silent  bool
	Result  balancer.Result
	DelayMs int64
}

// TraceECM is the ECM of a trace line.
type TraceECM struct {
	CAID   uint16
	PRID   uint32
	SrvID  uint16
	CHID   uint16
	Len    uint16
	Client string
	Data   []byte
}

// Event is one line of a trace.
type Event struct {
	Line    int
	T       int64
	Kind    EventKind
	ECM     TraceECM
	Answers map[string]Reply
	Reader  string
}

type rawECM struct {
	CAID   string `json:"caid"`
	PRID   string `json:"prid"`
	SrvID  string `json:"srvid"`
	CHID   string `json:"chid"`
	Len    *int   `json:"len"`
	Client string `json:"client"`
	Data   string `json:"data"`
}

type rawEvent struct {
	T       *int64            `json:"t"`
	ECM     *rawECM           `json:"ecm"`
	Answers map[string]string `json:"answers"`
	Advance bool              `json:"advance"`
	Remove  string            `json:"remove"`
	Insert  string            `json:"insert"`
}

// maxTraceLine bounds one trace line.
const maxTraceLine = 64 << 10

// ParseTrace reads a JSON-lines trace. Every error names the line and
// what is wrong; times must not go backwards.
func ParseTrace(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxTraceLine)
	var out []Event
	line := 0
	last := int64(0)
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		ev, err := parseEvent(b)
		if err != nil {
			return nil, fmt.Errorf("trace line %d: %w", line, err)
		}
		if ev.T < last {
			return nil, fmt.Errorf("trace line %d: t %d is before the previous event's t %d", line, ev.T, last)
		}
		last, ev.Line = ev.T, line
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trace line %d: %w", line+1, err)
	}
	return out, nil
}

func parseEvent(b []byte) (Event, error) {
	var raw rawEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Event{}, fmt.Errorf("not a trace event: %w", err)
	}
	if dec.More() {
		return Event{}, errors.New("more than one JSON value on the line")
	}
	if raw.T == nil || *raw.T < 0 || *raw.T > 1<<40 {
		return Event{}, errors.New(`"t" must be a number of milliseconds from 0`)
	}
	ev := Event{T: *raw.T}
	kinds := 0
	if raw.ECM != nil {
		kinds++
		ecm, err := parseECM(raw.ECM)
		if err != nil {
			return Event{}, err
		}
		ev.Kind, ev.ECM, ev.Answers = EventECM, ecm, map[string]Reply{}
		for name, s := range raw.Answers {
			rep, err := parseReply(s)
			if err != nil {
				return Event{}, fmt.Errorf("answer of %s: %w", name, err)
			}
			ev.Answers[name] = rep
		}
	} else if raw.Answers != nil {
		return Event{}, errors.New(`"answers" without "ecm"`)
	}
	if raw.Advance {
		kinds++
		ev.Kind = EventAdvance
	}
	if raw.Remove != "" {
		kinds++
		ev.Kind, ev.Reader = EventRemove, raw.Remove
	}
	if raw.Insert != "" {
		kinds++
		ev.Kind, ev.Reader = EventInsert, raw.Insert
	}
	if kinds != 1 {
		return Event{}, errors.New(`want exactly one of "ecm", "advance", "remove", "insert"`)
	}
	return ev, nil
}

func parseECM(r *rawECM) (TraceECM, error) {
	var e TraceECM
	var err error
	fields := []struct {
		name string
		s    string
		bits int
		dst  func(uint64)
	}{
		{"caid", r.CAID, 16, func(v uint64) { e.CAID = uint16(v) }},
		{"prid", r.PRID, 24, func(v uint64) { e.PRID = uint32(v) }},
		{"srvid", r.SrvID, 16, func(v uint64) { e.SrvID = uint16(v) }},
		{"chid", r.CHID, 16, func(v uint64) { e.CHID = uint16(v) }},
	}
	for _, f := range fields {
		if f.s == "" && f.name != "caid" {
			continue
		}
		v, perr := strconv.ParseUint(f.s, 16, f.bits)
		if perr != nil || len(f.s) > f.bits/4 {
			return e, fmt.Errorf("ecm %s %q: want up to %d hex digits", f.name, f.s, f.bits/4)
		}
		f.dst(v)
	}
	if r.Len == nil || *r.Len < 0 || *r.Len > balancer.MaxECMLen {
		return e, fmt.Errorf(`ecm "len" must be from 0 to %d`, balancer.MaxECMLen)
	}
	e.Len = uint16(*r.Len)
	if r.Client == "" {
		return e, errors.New(`ecm "client" is missing`)
	}
	e.Client = r.Client
	if r.Data != "" {
		if e.Data, err = hex.DecodeString(r.Data); err != nil {
			return e, fmt.Errorf("ecm data: not hex: %w", err)
		}
		if len(e.Data) > balancer.MaxECMLen {
			return e, fmt.Errorf("ecm data: %d bytes, at most %d", len(e.Data), balancer.MaxECMLen)
		}
	}
	return e, nil
}

// parseReply reads "found:120", "notfound:40", "timeout:300" or "timeout"
// (never answers).
func parseReply(s string) (Reply, error) {
	res, delay, hasDelay := strings.Cut(s, ":")
	var rep Reply
	switch res {
	case "found":
		rep.Result = balancer.Found
	case "notfound":
		rep.Result = balancer.NotFound
	case "timeout":
		rep.Result = balancer.Timeout
		if !hasDelay {
			return Reply{Silent: true, Result: balancer.Timeout}, nil
		}
	default:
		return rep, fmt.Errorf("%q: want found:MS, notfound:MS, timeout:MS or timeout", s)
	}
	if !hasDelay {
		return rep, fmt.Errorf("%q: missing :MS delay", s)
	}
	d, err := strconv.ParseInt(delay, 10, 64)
	if err != nil || d < 0 || d > 1<<30 {
		return rep, fmt.Errorf("%q: delay must be milliseconds from 0", s)
	}
	rep.DelayMs = d
	return rep, nil
}
