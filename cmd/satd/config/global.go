package config

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// Global holds process-wide settings.
type Global struct {
	MemoryLimit     Size     `toml:"memory_limit" comment:"soft memory cap of the Go runtime (GOMEMLIMIT); 48MiB suits a 256 MB receiver that also runs the TV stack, 0 = no limit. The GOMEMLIMIT environment variable wins."`
	ShutdownTimeout Duration `toml:"shutdown_timeout" comment:"how long a SIGTERM may take to drain listeners and save state before satd exits anyway"`
	StateDir        string   `toml:"state_dir" comment:"directory for state that survives restarts (balancer stats, update downloads)"`
}

// DefaultGlobal returns the [global] defaults.
func DefaultGlobal() Global {
	return Global{
		MemoryLimit:     48 << 20,
		ShutdownTimeout: Duration(10 * time.Second),
		StateDir:        "/var/lib/satd",
	}
}

// Validate reports every problem of the [global] table.
func (g *Global) Validate(report func(key, msg string)) {
	if g.MemoryLimit != 0 && g.MemoryLimit < 8<<20 {
		report("memory_limit", "must be 0 (no limit) or at least 8MiB")
	}
	if d := g.ShutdownTimeout.Std(); d < 100*time.Millisecond || d > 5*time.Minute {
		report("shutdown_timeout", "must be between 100ms and 5m")
	}
	if g.StateDir == "" {
		report("state_dir", "must not be empty")
	}
}

// Log configures logging.
type Log struct {
	Level     string            `toml:"level" comment:"default level: debug, info, warn or error"`
	Format    string            `toml:"format" comment:"text or json, on stderr"`
	Syslog    bool              `toml:"syslog" comment:"also send logs to the local syslog daemon"`
	SyslogTag string            `toml:"syslog_tag" comment:"syslog tag"`
	Levels    map[string]string `toml:"levels" comment:"level per component, e.g. { balancer = \"debug\", stream = \"warn\" }"`
}

// DefaultLog returns the [log] defaults.
func DefaultLog() Log {
	return Log{Level: "info", Format: "text", SyslogTag: "satd", Levels: map[string]string{}}
}

// Components are the names accepted in [log] levels.
var Components = []string{"main", "config", "hal", "cardreader", "balancer", "dvbapi", "stream", "web", "update"}

// Validate reports every problem of the [log] table.
func (l *Log) Validate(report func(key, msg string)) {
	if _, err := ParseLevel(l.Level); err != nil {
		report("level", err.Error())
	}
	if l.Format != "text" && l.Format != "json" {
		report("format", fmt.Sprintf("%q is not text or json", l.Format))
	}
	names := make([]string, 0, len(l.Levels))
	for name := range l.Levels {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !knownComponent(name) {
			report("levels."+name, "unknown component; known: "+strings.Join(Components, ", "))
		}
		if _, err := ParseLevel(l.Levels[name]); err != nil {
			report("levels."+name, err.Error())
		}
	}
}

func knownComponent(name string) bool {
	for _, c := range Components {
		if c == name {
			return true
		}
	}
	return false
}

// ParseLevel parses a level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		err := l.UnmarshalText([]byte(s))
		return l, err
	}
	return l, fmt.Errorf("%q is not a level (debug, info, warn, error)", s)
}
