package netstream

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxHead bounds a request head (request line and headers).
const maxHead = 8 << 10

// quickHead is the size of the buffers request heads are first read into.
// A player's head is 100-600 bytes; a longer one (cookies, many headers)
// continues in net/http's reader up to maxHead. The pool keeps one buffer
// per concurrent handshake, so 1 KiB rather than 8 KiB keeps it at 0.25-1
// MiB at the handshake limit instead of 2-8 MiB (memory per listener).
const quickHead = 1 << 10

// headBufs holds the buffers request heads are read into; a listener's
// handshake borrows one instead of allocating a bufio.Reader and the
// http.Request tree, which is most of the garbage a connection leaves.
var headBufs = sync.Pool{New: func() any { b := make([]byte, quickHead); return &b }}

// readHead reads from r into buf until buf holds a complete request head,
// buf is full, or r fails. It returns the bytes read and the length of the
// head (-1 when incomplete).
func readHead(r io.Reader, buf []byte) (n, end int, err error) {
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		from := max(0, n-2)
		n += k
		if e := headEnd(buf[from:n]); e >= 0 {
			return n, from + e, nil
		}
		if err != nil {
			return n, -1, err
		}
	}
	return n, -1, nil
}

// headEnd returns the length of the head in b through its blank line
// ("\n\n" or "\n\r\n", as net/http accepts both), or -1.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// quickRequest is what a plain GET or HEAD request head says, parsed
// without allocating: enough to serve an anonymous listener. It refers to
// the bytes it was parsed from.
type quickRequest struct {
	head     bool   // HEAD rather than GET
	path     []byte // absolute path, without the query
	metadata bool   // the first Icy-MetaData header is "1"
	auth     bool   // the request carries credentials
}

// parseQuick parses a complete request head (as delimited by headEnd). It
// accepts only plain requests: GET or HEAD of an unescaped absolute path
// over HTTP/1.0 or 1.1, well-formed header lines, no body headers, at most
// one Host. Anything else returns ok false and is left to net/http, so both
// parsers answer every request the same way (FuzzParseQuick checks it).
func parseQuick(b []byte) (q quickRequest, ok bool) {
	line, rest := nextLine(b)
	var method, target, proto []byte
	var found bool
	if method, line, found = bytes.Cut(line, []byte(" ")); !found {
		return q, false
	}
	if target, proto, found = bytes.Cut(line, []byte(" ")); !found {
		return q, false
	}
	switch string(method) {
	case "GET":
	case "HEAD":
		q.head = true
	default:
		return q, false
	}
	if string(proto) != "HTTP/1.0" && string(proto) != "HTTP/1.1" || !plainTarget(target) {
		return q, false
	}
	q.path, _, _ = bytes.Cut(target, []byte("?"))
	hosts, metaSeen := 0, false
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			return q, len(rest) == 0
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !tokenBytes(name) || !fieldValue(value) {
			return q, false
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Icy-MetaData")):
			if !metaSeen {
				q.metadata, metaSeen = string(value) == "1", true
			}
		case bytes.EqualFold(name, []byte("Authorization")):
			q.auth = true
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			if hosts > 1 || !plainHost(value) {
				return q, false
			}
		case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return q, false
		}
	}
}

// nextLine splits b after its first line and strips the line's "\r\n" or
// "\n". A line without a newline is returned whole.
func nextLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}

// plainTarget reports whether t is an absolute path (and query) of visible
// ASCII without escapes or a fragment, which needs no unescaping.
func plainTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' || bytes.HasPrefix(t, []byte("//")) {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return false
		}
	}
	return true
}

// plainHost accepts a Host value of letters, digits, '.', '-', ':' and
// brackets, which no parser disagrees about.
func plainHost(h []byte) bool {
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// tokenBytes reports whether b is a non-empty HTTP token (a header name).
func tokenBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// fieldValue reports whether b holds no control byte other than tab.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
