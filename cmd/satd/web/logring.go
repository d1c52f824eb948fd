package web

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogEntry is one log record as the Log page shows it.
type LogEntry struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	Attrs string    `json:"attrs"` // key=value pairs, as in the text log
	level slog.Level
}

// LogRing is a slog.Handler that keeps the last records in a ring buffer for
// the Log page's live tail. Add it to the daemon's handler fan-out; it never
// blocks the logger (waiters are woken by closing a channel).
type LogRing struct {
	mu      sync.Mutex
	entries []LogEntry
	next    uint64 // sequence number of the next record
	changed chan struct{}
}

// NewLogRing returns a ring keeping the last n records.
func NewLogRing(n int) *LogRing {
	return &LogRing{entries: make([]LogEntry, n), next: 1}
}

type ringHandler struct {
	ring  *LogRing
	attrs string
	group string
}

var _ slog.Handler = ringHandler{}

// Handler returns the slog.Handler that feeds the ring.
func (r *LogRing) Handler() slog.Handler { return ringHandler{ring: r} }

func (h ringHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h ringHandler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(h.attrs)
	rec.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	h.ring.add(LogEntry{Time: rec.Time, Level: rec.Level.String(), Msg: rec.Message, Attrs: strings.TrimSpace(b.String()), level: rec.Level})
	return nil
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	b.WriteByte(' ')
	b.WriteString(key)
	b.WriteByte('=')
	v := a.Value.Resolve().String()
	if strings.ContainsAny(v, " \t\"=") {
		v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
	}
	b.WriteString(v)
}

func (h ringHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	h.attrs = b.String()
	return h
}

func (h ringHandler) WithGroup(name string) slog.Handler {
	if h.group != "" {
		name = h.group + "." + name
	}
	h.group = name
	return h
}

func (r *LogRing) add(e LogEntry) {
	r.mu.Lock()
	e.Seq = r.next
	r.entries[r.next%uint64(len(r.entries))] = e
	r.next++
	// The channel exists only while someone waits: made by Since, closed
	// here. Logging alone never creates one, so a record logged inside a
	// synctest bubble leaves nothing behind that belongs to the bubble.
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// Since returns the records after sequence number seq at or above min, oldest
// first, and a channel closed when a newer record arrives.
func (r *LogRing) Since(seq uint64, min slog.Level) ([]LogEntry, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := uint64(len(r.entries))
	first := seq + 1
	if r.next > n && first < r.next-n {
		first = r.next - n
	}
	var out []LogEntry
	for s := first; s < r.next; s++ {
		if e := r.entries[s%n]; e.level >= min {
			out = append(out, e)
		}
	}
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return out, r.changed
}
