package dvbapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLimiter rate-limits log lines: per kind (the message text) at most
// burst lines per interval (one per connection; a few for the server's
// connect and close lines, which many connections share); the lines held back are
// counted and the count rides on the next line of that kind, or on a
// summary when the connection closes. A client can thus not turn its
// input into log volume: however many messages it sends, each kind costs
// one line per interval.
type logLimiter struct {
	l     *slog.Logger
	every time.Duration
	burst int
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	start      time.Time // of the current interval
	lines      int       // written in the current interval
	suppressed int
}

// maxLogKinds bounds the limiter's map; the kinds are the package's
// constant messages, far fewer.
const maxLogKinds = 64

func newLogLimiter(l *slog.Logger, every time.Duration, burst int) *logLimiter {
	return &logLimiter{l: l, every: every, burst: max(burst, 1), now: time.Now, kinds: map[string]*logKind{}}
}

// log writes msg to the limiter's logger unless burst lines of the same
// kind were written in the current interval.
func (l *logLimiter) log(level slog.Level, msg string, args ...any) {
	l.logTo(l.l, level, msg, args...)
}

// logTo is log writing to to (a logger with a connection's attributes).
func (l *logLimiter) logTo(to *slog.Logger, level slog.Level, msg string, args ...any) {
	if !to.Enabled(context.Background(), level) {
		return
	}
	now := l.now()
	l.mu.Lock()
	k := l.kinds[msg]
	if k == nil {
		if len(l.kinds) >= maxLogKinds {
			clear(l.kinds)
		}
		k = &logKind{start: now}
		l.kinds[msg] = k
	}
	if l.every > 0 && now.Sub(k.start) >= l.every {
		k.start, k.lines = now, 0
	}
	if l.every > 0 && k.lines >= l.burst {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	n := k.suppressed
	k.lines++
	k.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	to.Log(context.Background(), level, msg, args...)
}

// flush logs one summary line per kind with lines still held back.
func (l *logLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for msg, k := range l.kinds {
		if k.suppressed > 0 {
			l.l.Info("log lines suppressed", "kind", msg, "suppressed", k.suppressed)
			k.suppressed = 0
		}
	}
}
