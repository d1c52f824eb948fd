package web

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The pages are written by Go functions through html, not by html/template:
// text/template's executor calls reflect.Value.MethodByName, which makes the
// linker keep every exported method of every reachable type (about 1.5 MB of
// the stripped ARMv7 binary). See docs/web.md, "Rendering".
//
// html is safe by construction:
//   - markup comes only from raw, whose argument has the unexported type
//     markup; an untyped string constant converts to it implicitly, a string
//     variable does not, so untrusted text cannot reach raw by accident
//     (TestNoMarkupConversions refuses explicit conversions);
//   - everything else goes through text or attr, which escape & < > " ' and
//     replace NUL, so it can neither open a tag nor leave a quoted attribute;
//   - URL attributes go through url, which refuses every scheme but http
//     and https (so javascript: and data: never appear) and any byte a
//     browser would strip or reinterpret.

// markup is a piece of HTML written by the programmer: a constant.
type markup string

// html writes escaped HTML into a buffer.
type html struct{ b *bytes.Buffer }

// raw writes constant markup as it is.
func (h html) raw(m markup) { h.b.WriteString(string(m)) }

// rawIf writes constant markup when cond holds: the {{if}} of a template.
func (h html) rawIf(cond bool, m markup) {
	if cond {
		h.raw(m)
	}
}

// text writes s as text, escaped; it is also safe inside a quoted attribute.
func (h html) text(s string) { escapeTo(h.b, s) }

// int writes a number.
func (h html) int(n int64) { h.b.Write(strconv.AppendInt(h.b.AvailableBuffer(), n, 10)) }

// uint writes an unsigned number.
func (h html) uint(n uint64) { h.b.Write(strconv.AppendUint(h.b.AvailableBuffer(), n, 10)) }

// attr writes ` name="value"` with value escaped. It belongs inside a start
// tag opened by raw (`<input type="text"`) or open.
func (h html) attr(name markup, value string) {
	h.b.WriteByte(' ')
	h.raw(name)
	h.b.WriteString(`="`)
	escapeTo(h.b, value)
	h.b.WriteByte('"')
}

// invalidURL replaces a URL that url refuses, like html/template's
// "#ZgotmplZ": a fragment of the page itself, harmless when followed.
const invalidURL = "#invalid-url"

// url writes a URL attribute (href, action, data-…-url). u must be built by
// code: an internal path or query, or an http(s) address of the form itself.
func (h html) url(name markup, u string) {
	if !safeURL(u) {
		u = invalidURL
	}
	h.attr(name, u)
}

// safeURL reports whether u may be followed from a page: no scheme, or http
// or https, and no space, control character or backslash (browsers strip or
// reinterpret those, which could turn "java\tscript:" into a scheme).
func safeURL(u string) bool {
	if u == "" || !utf8.ValidString(u) {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch p.Scheme {
	case "":
		// Parse leaves a scheme-less reference with a colon in its first
		// segment as an error, so "javascript:x" never gets here.
		return !strings.HasPrefix(u, "//") || p.Host != ""
	case "http", "https":
		return p.Host != "" && p.Opaque == ""
	}
	return false
}

// open writes a start tag without attributes.
func (h html) open(tag markup) {
	h.b.WriteByte('<')
	h.raw(tag)
	h.b.WriteByte('>')
}

// close writes an end tag.
func (h html) close(tag markup) {
	h.b.WriteString("</")
	h.raw(tag)
	h.b.WriteByte('>')
}

// el writes a whole element with escaped text: <tag>text</tag>.
func (h html) el(tag markup, text string) {
	h.open(tag)
	h.text(text)
	h.close(tag)
}

// td writes a table cell with escaped text.
func (h html) td(text string) { h.el("td", text) }

// tds writes a table cell with escaped text for each of texts.
func (h html) tds(texts ...string) {
	for _, t := range texts {
		h.td(t)
	}
}

// tdMono writes a table cell in the monospace class.
func (h html) tdMono(text string) {
	h.raw(`<td class="mono">`)
	h.text(text)
	h.raw(`</td>`)
}

// escapeTo writes s with & < > " ' escaped as html/template does, and NUL
// replaced by U+FFFD, without allocating.
func escapeTo(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&#34;"
		case '\'':
			rep = "&#39;"
		case 0:
			rep = "\uFFFD"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(rep)
		last = i + 1
	}
	b.WriteString(s[last:])
}
