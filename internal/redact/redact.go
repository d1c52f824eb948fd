// Package redact hides the passwords of URLs ("http://user:pass@host/")
// wherever satd shows or logs text: pages, API answers, log records. The
// password becomes Mask; the user name and the rest of the URL stay, so the
// owner still sees which upstream is meant.
package redact

import (
	"context"
	"log/slog"
	"strings"
)

// Mask replaces a URL's password (as url.URL.Redacted does).
const Mask = "xxxxx"

// Text returns s with the password of every URL in it masked. Text without
// "://" and "@" is returned as is, without allocating.
func Text(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		start := i + 3
		b.WriteString(rest[:start])
		rest = rest[start:]
		// The authority ends at the first '/', '?', '#', space or quote.
		end := strings.IndexAny(rest, "/?# \t\n\"'<>`")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			userinfo := auth[:at]
			if c := strings.IndexByte(userinfo, ':'); c >= 0 {
				b.WriteString(userinfo[:c+1])
				b.WriteString(Mask)
				b.WriteString(auth[at:])
				rest = rest[end:]
				continue
			}
		}
		b.WriteString(auth)
		rest = rest[end:]
	}
	b.WriteString(rest)
	return b.String()
}

// Restore undoes Text for a value sent back unchanged by a form: if s is
// the masked form of one of olds, that old value is returned. Otherwise s
// is returned, and hidden reports whether it still holds a masked password
// (an edited URL whose password must be typed again).
func Restore(s string, olds []string) (v string, hidden bool) {
	if !strings.Contains(s, ":"+Mask+"@") {
		return s, false
	}
	for _, o := range olds {
		if Text(o) == s {
			return o, false
		}
	}
	return s, true
}

// Handler wraps h so that every record's message and string, error and
// stringer attributes have their URL passwords masked.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ inner slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(attr(a))
		return true
	})
	return h.inner.Handle(ctx, nr)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = attr(a)
	}
	return handler{h.inner.WithAttrs(out)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.inner.WithGroup(name)} }

// attr masks the URL passwords in one attribute.
func attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); Text(s) != s {
			return slog.String(a.Key, Text(s))
		}
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = attr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case interface{ String() string }:
			s = x.String()
		default:
			return a
		}
		if m := Text(s); m != s {
			return slog.String(a.Key, m)
		}
	}
	return a
}
