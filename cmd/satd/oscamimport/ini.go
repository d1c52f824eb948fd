// Package oscamimport converts an OSCam configuration (oscam.conf,
// oscam.server, oscam.user) into satd's, reporting for every OSCam key what
// it became or why it was left out.
package oscamimport

import (
	"fmt"
	"strings"
)

// Section is one [name] block of an OSCam file, in file order.
type Section struct {
	Name string
	Line int
	Keys []KeyValue
}

// KeyValue is one "key = value" line.
type KeyValue struct {
	Key, Value string
	Line       int
}

// maxLine bounds a line: OSCam's own reader stops far below this.
const maxLine = 64 << 10

// ParseINI parses OSCam's INI dialect: [section] headers, key = value lines,
// and lines starting with # or ; as comments. Keys before the first header
// and lines that are not key = value are returned as problems (with their
// line), not as a failure: OSCam skips them too.
func ParseINI(name string, doc []byte) ([]Section, []string) {
	var secs []Section
	var problems []string
	for i, line := range strings.Split(string(doc), "\n") {
		n := i + 1
		if len(line) > maxLine {
			problems = append(problems, fmt.Sprintf("%s:%d: line longer than %d bytes skipped", name, n, maxLine))
			continue
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				problems = append(problems, fmt.Sprintf("%s:%d: section header %q has no closing ]", name, n, line))
				continue
			}
			secs = append(secs, Section{Name: strings.ToLower(strings.TrimSpace(line[1:end])), Line: n})
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			problems = append(problems, fmt.Sprintf("%s:%d: %q is not key = value", name, n, line))
			continue
		}
		if len(secs) == 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: key %q before any [section]", name, n, strings.TrimSpace(k)))
			continue
		}
		s := &secs[len(secs)-1]
		s.Keys = append(s.Keys, KeyValue{Key: strings.ToLower(strings.TrimSpace(k)), Value: strings.TrimSpace(v), Line: n})
	}
	return secs, problems
}
