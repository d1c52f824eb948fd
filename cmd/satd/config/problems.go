package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string
	Line int // 0 when the key is not in the file (a default is at fault)
	Key  string
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Key == "" {
		return fmt.Sprintf("%s: %s", loc, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Msg)
}

// Problems is every problem found in a configuration file. Load returns it as
// its error so that a user fixes the whole file in one pass, not one line at
// a time.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Key < ps[j].Key
	})
}

// reporter collects problems of one section, prefixing keys with its path.
type reporter struct {
	file  string
	lines keyLines
	out   *Problems
}

func (r reporter) section(prefix string) func(key, msg string) {
	return func(key, msg string) {
		full := joinPrefix(prefix, key)
		*r.out = append(*r.out, Problem{File: r.file, Line: r.lines.line(full), Key: full, Msg: msg})
	}
}
