// Package duration is the configuration files' duration: a time.Duration
// written as a Go duration string ("500ms", "10s", "2m") in TOML. Every
// package with duration options uses this one type (under its own alias), so
// parsing, error messages and the web form's handling are the same
// everywhere.
package duration

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes as a duration string.
type Duration time.Duration

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write e.g. \"500ms\", \"10s\", \"2m\")", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
