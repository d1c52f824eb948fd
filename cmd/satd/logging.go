package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"log/syslog"
	"sync/atomic"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/redact"
)

// levels is the level in force for each component; it is swapped as a whole
// when the configuration is reloaded.
type levels struct {
	def          slog.Level
	perComponent map[string]slog.Level
}

func levelsFrom(c config.Log) *levels {
	lv := &levels{perComponent: map[string]slog.Level{}}
	lv.def, _ = config.ParseLevel(c.Level)
	for name, s := range c.Levels {
		lv.perComponent[name], _ = config.ParseLevel(s)
	}
	return lv
}

// componentHandler filters records by the level of the component named in
// the logger's "component" attribute.
type componentHandler struct {
	inner     slog.Handler
	levels    *atomic.Pointer[levels]
	component string
}

func (h *componentHandler) Enabled(_ context.Context, l slog.Level) bool {
	lv := h.levels.Load()
	want, ok := lv.perComponent[h.component]
	if !ok {
		want = lv.def
	}
	return l >= want
}

func (h *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *componentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "component" {
			c.component = a.Value.String()
		}
	}
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *componentHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

// fanout sends each record to several handlers (stderr and syslog).
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		errs = append(errs, h.Handle(ctx, r.Clone()))
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithAttrs(attrs)
	}
	return g
}

func (f fanout) WithGroup(name string) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithGroup(name)
	}
	return g
}

// syslogHandler formats records as text and writes them with the syslog
// priority matching their level.
type syslogHandler struct {
	w     *syslog.Writer
	attrs []slog.Attr
	group string
}

func (h *syslogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *syslogHandler) Handle(_ context.Context, r slog.Record) error {
	var buf bytes.Buffer
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{} // syslog adds both
			}
			return a
		},
	})
	th = th.WithAttrs(h.attrs)
	if h.group != "" {
		th = th.WithGroup(h.group)
	}
	th.Handle(context.Background(), r)
	msg := buf.String()
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	}
	return h.w.Debug(msg)
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}

// logSetup is the process's logging: a root logger and the levels it obeys.
type logSetup struct {
	root   *slog.Logger
	levels *atomic.Pointer[levels]
	closer io.Closer
}

func newLogging(c config.Log, stderr io.Writer) (*logSetup, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	}
	s := &logSetup{levels: new(atomic.Pointer[levels])}
	// The web form's Log page tails the same records.
	handlers := fanout{h, webLogs.Handler()}
	if c.Syslog {
		w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, c.SyslogTag)
		if err != nil {
			return nil, err
		}
		handlers = append(handlers, &syslogHandler{w: w})
		s.closer = w
	}
	// No log line, on stderr, syslog or the Log page, shows a URL's password.
	h = redact.Handler(handlers)
	s.levels.Store(levelsFrom(c))
	s.root = slog.New(&componentHandler{inner: h, levels: s.levels, component: "main"})
	return s, nil
}

// component returns the logger of a named component.
func (s *logSetup) component(name string) *slog.Logger {
	return s.root.With("component", name)
}

// reload applies new levels; format and syslog changes need a restart.
func (s *logSetup) reload(c config.Log) { s.levels.Store(levelsFrom(c)) }

func (s *logSetup) close() {
	if s.closer != nil {
		s.closer.Close()
	}
}
