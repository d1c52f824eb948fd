package config

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps every key path present in a document ("balancer.lb_mode",
// "reader[1].caid", "reader[1]") to the line it is on, so that validation
// problems found after decoding can still name their line.
type keyLines map[string]int

// scanKeyLines walks the document's syntax tree. It ignores syntax errors:
// the decoder reports those with their own positions.
func scanKeyLines(doc []byte) keyLines {
	lines := keyLines{}
	arrays := map[string]int{} // array-of-tables path -> elements seen
	var p unstable.Parser
	p.Reset(doc)
	prefix := ""
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table:
			prefix = resolvePath(arrays, keyParts(n.Key()))
			lines[prefix] = lineOf(doc, n)
		case unstable.ArrayTable:
			parts := keyParts(n.Key())
			base := joinPrefix(resolvePath(arrays, parts[:len(parts)-1]), parts[len(parts)-1])
			idx := arrays[base]
			arrays[base] = idx + 1
			prefix = base + "[" + strconv.Itoa(idx) + "]"
			lines[prefix] = lineOf(doc, n)
		case unstable.KeyValue:
			lines.addKeyValue(doc, prefix, n)
		}
	}
	return lines
}

// resolvePath joins key parts, giving every array of tables on the way the
// index of its latest element: after [[reader]] twice, [reader.pins] is
// reader[1].pins.
func resolvePath(arrays map[string]int, parts []string) string {
	cur := ""
	for _, part := range parts {
		cur = joinPrefix(cur, part)
		if n, ok := arrays[cur]; ok {
			cur += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return cur
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func (l keyLines) addKeyValue(doc []byte, prefix string, n *unstable.Node) {
	key := joinPrefix(prefix, joinKey(n.Key()))
	l[key] = lineOf(doc, n)
	v := n.Value()
	if v == nil || v.Kind != unstable.InlineTable {
		return
	}
	it := v.Children()
	for it.Next() {
		if c := it.Node(); c.Kind == unstable.KeyValue {
			l.addKeyValue(doc, key, c)
		}
	}
}

// lineOf returns the 1-based line of a node, or of its first key part when the
// node itself carries no range.
func lineOf(doc []byte, n *unstable.Node) int {
	off := int(n.Raw.Offset)
	if n.Raw.Length == 0 {
		if it := n.Key(); it.Next() {
			off = int(it.Node().Raw.Offset)
		}
	}
	if off > len(doc) {
		off = len(doc)
	}
	return 1 + bytes.Count(doc[:off], []byte{'\n'})
}

func joinKey(it unstable.Iterator) string {
	return strings.Join(keyParts(it), ".")
}

func joinPrefix(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// line returns the line of key, or of its nearest enclosing table present in
// the document, or 0 when nothing of it is there (a problem with a default).
func (l keyLines) line(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

// has reports whether key is set in the document.
func (l keyLines) has(key string) bool {
	_, ok := l[key]
	return ok
}

// keyAt returns the full path (with array indexes) of the key on line whose
// path without indexes is plain, or plain itself when there is none.
func (l keyLines) keyAt(line int, plain string) string {
	for k, n := range l {
		if n == line && stripIndexes(k) == plain {
			return k
		}
	}
	return plain
}

func stripIndexes(k string) string {
	var b strings.Builder
	depth := 0
	for _, r := range k {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
