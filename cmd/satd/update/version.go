package update

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a release version MAJOR.MINOR.PATCH with an optional
// pre-release suffix ("1.4.0", "v1.4.0-rc1"). A pre-release sorts before the
// release with the same numbers.
type Version struct {
	Major, Minor, Patch int
	Pre                 string
	dev                 bool
}

// ParseVersion parses s. The development version "dev" (an unstamped build)
// parses as a version older than every release, so a development build
// accepts any signed update.
func ParseVersion(s string) (Version, error) {
	if s == "dev" {
		return Version{dev: true}, nil
	}
	core, pre, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("version %q: %q is not a number", s, p)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], Pre: pre}, nil
}

// String returns the canonical form.
func (v Version) String() string {
	if v.dev {
		return "dev"
	}
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	if v.dev || w.dev {
		return cmpBool(w.dev, v.dev)
	}
	for _, d := range [3]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d != 0 {
			return sign(d)
		}
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	return strings.Compare(v.Pre, w.Pre)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func sign(d int) int {
	if d < 0 {
		return -1
	}
	return 1
}
