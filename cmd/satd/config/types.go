package config

import (
	"fmt"
	"strconv"
	"strings"

	"satd.dev/satd/internal/duration"
)

// Duration is a duration written as a Go duration string ("90s", "500ms").
type Duration = duration.Duration

// Size is a byte count written with an optional binary unit ("48MiB", "512KiB").
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(str, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 {
			break
		}
		*s = Size(n * u.mult)
		return nil
	}
	return fmt.Errorf("%q is not a size (write e.g. \"48MiB\", \"512KiB\")", b)
}

// MarshalText writes the size with the largest unit that divides it.
func (s Size) MarshalText() ([]byte, error) {
	for _, u := range sizeUnits[:3] {
		if s != 0 && int64(s)%u.mult == 0 {
			return []byte(strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix), nil
		}
	}
	return []byte(strconv.FormatInt(int64(s), 10) + "B"), nil
}
