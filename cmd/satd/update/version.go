package update

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version MAJOR.MINOR.PATCH with an optional
// pre-release ("1.4.0", "v1.4.0-rc.1") and build metadata ("+20260101").
// A pre-release sorts before the release with the same numbers, and
// pre-releases are ordered as semver 2.0.0 §11 says: identifier by
// identifier, numeric ones by value, numeric before alphanumeric, fewer
// identifiers first. One departure: inside an alphanumeric identifier, runs
// of digits compare by value, so "rc9" < "rc10" (semver's ASCII order
// would rank rc9 above rc10 and let the older build in as an upgrade).
// Build metadata takes no part in the order.
//
// A version also names files (the staged executable satd-VERSION), so
// ParseVersion accepts only the characters semver allows: no "/", no "..".
type Version struct {
	Major, Minor, Patch int
	Pre                 string
	Build               string
	dev                 bool
}

// ParseVersion parses s. The development version "dev" (an unstamped build)
// parses as a version older than every release, so a development build
// accepts any signed update.
func ParseVersion(s string) (Version, error) {
	if s == "dev" {
		return Version{dev: true}, nil
	}
	if len(s) > maxVersionLen {
		return Version{}, fmt.Errorf("version %q: longer than %d characters", s[:maxVersionLen]+"...", maxVersionLen)
	}
	rest, build, hasBuild := strings.Cut(strings.TrimPrefix(s, "v"), "+")
	if hasBuild {
		if err := checkIdents(build, false); err != nil {
			return Version{}, fmt.Errorf("version %q: build metadata: %w", s, err)
		}
	}
	core, pre, hasPre := strings.Cut(rest, "-")
	if hasPre {
		if err := checkIdents(pre, true); err != nil {
			return Version{}, fmt.Errorf("version %q: pre-release: %w", s, err)
		}
	}
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
	return Version{Major: n[0], Minor: n[1], Patch: n[2], Pre: pre, Build: build}, nil
}

// maxVersionLen bounds a version string (it becomes part of a file name).
const maxVersionLen = 64

// checkIdents checks dot-separated semver identifiers: non-empty, of
// [0-9A-Za-z-] only, and for a pre-release no numeric one with a leading 0.
func checkIdents(s string, pre bool) error {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return fmt.Errorf("empty identifier in %q", s)
		}
		for _, r := range id {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
				return fmt.Errorf("%q: only letters, digits and '-' are allowed", id)
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("%q: numeric identifier with a leading zero", id)
		}
	}
	return nil
}

func isNumeric(id string) bool {
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return id != ""
}

// comparePre orders two non-empty pre-releases (semver §11.4).
func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		x, y := as[i], bs[i]
		xn, yn := isNumeric(x), isNumeric(y)
		switch {
		case xn && yn:
			// Numeric: by length first (no leading zeros), then digits.
			if c := cmp.Compare(len(x), len(y)); c != 0 {
				return c
			}
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		case xn != yn:
			return cmpBool(yn, xn) // numeric sorts before alphanumeric
		default:
			if c := compareNatural(x, y); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(as), len(bs))
}

// compareNatural compares two identifiers run by run: digit runs by value,
// other runs as text.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		ra, rb := leadingRun(a), leadingRun(b)
		var c int
		if isNumeric(ra) && isNumeric(rb) {
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			c = cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb))
		} else {
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return cmp.Compare(len(a), len(b))
}

// leadingRun returns the leading run of digits, or of non-digits, of s.
func leadingRun(s string) string {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i]
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
	if v.Build != "" {
		s += "+" + v.Build
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
	return comparePre(v.Pre, w.Pre)
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
