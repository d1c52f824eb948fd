package config

import (
	"bytes"
	"slices"
	"strings"
)

// keepComments returns the newly encoded document out with the comment
// blocks of the file it replaces (old) carried over: the block above each
// key or table header goes above the same key in out, less the lines the
// encoder already wrote there (the keys' own documentation); the comment
// lines at the top of old stay at the top. A block whose key is gone is kept
// at the end, so that nothing the owner wrote is lost. Comments at the end
// of a value line are not carried over.
func keepComments(old, out []byte) []byte {
	if !bytes.Contains(old, []byte("#")) {
		return out
	}
	oldLines := strings.Split(string(old), "\n")
	newLines := strings.Split(string(out), "\n")
	oldKeys, newKeys := scanKeyLines(old), scanKeyLines(out)
	header := leadingComments(oldLines)
	insert := map[int][]string{} // line of out (1-based) -> comments to put above it
	var orphans []string
	for key, n := range oldKeys {
		block := commentsAbove(oldLines, n, len(header))
		if len(block) == 0 {
			continue
		}
		m, ok := newKeys[key]
		if !ok {
			orphans = append(orphans, block...)
			continue
		}
		have := commentsAbove(newLines, m, 0)
		for _, l := range block {
			if !slices.Contains(have, l) {
				insert[m] = append(insert[m], l)
			}
		}
	}
	var b strings.Builder
	for _, l := range header {
		b.WriteString(l + "\n")
	}
	if len(header) > 0 {
		b.WriteString("\n")
	}
	for i, l := range newLines {
		for _, c := range insert[i+1] {
			b.WriteString(indentOf(l) + strings.TrimSpace(c) + "\n")
		}
		b.WriteString(l)
		if i < len(newLines)-1 {
			b.WriteString("\n")
		}
	}
	tail := trailingComments(oldLines)
	if len(orphans) > 0 && len(tail) == 0 {
		tail = []string{"# Comments kept from settings no longer in this file:"}
	}
	tail = append(tail, orphans...)
	if len(tail) > 0 {
		b.WriteString("\n")
		for _, l := range tail {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}

// trailingComments returns the comment lines after the last key or table of
// a file (a note at its end, or comments kept by an earlier save).
func trailingComments(lines []string) []string {
	end := len(lines)
	for end > 0 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	i := end
	for i > 0 && (strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") || strings.TrimSpace(lines[i-1]) == "") {
		i--
	}
	var out []string
	for _, l := range lines[i:end] {
		if t := strings.TrimSpace(l); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// leadingComments returns the comment lines at the top of a file, up to the
// first blank or other line.
func leadingComments(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			break
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// commentsAbove returns the comment lines directly above line n (1-based),
// trimmed, top first, not reaching into the first skip lines.
func commentsAbove(lines []string, n, skip int) []string {
	i := n - 2
	for i >= skip && i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
		i--
	}
	var out []string
	for j := i + 1; j <= n-2 && j < len(lines); j++ {
		out = append(out, strings.TrimSpace(lines[j]))
	}
	return out
}

func indentOf(l string) string { return l[:len(l)-len(strings.TrimLeft(l, " \t"))] }
