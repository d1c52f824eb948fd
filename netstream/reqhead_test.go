package netstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

var quickSeeds = []string{
	"GET /live HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nUser-Agent: icyload\r\n\r\n",
	"GET /live HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nRange: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1:8000\r\nIcy-MetaData: 1\r\n\r\n",
	"HEAD /live?x=1 HTTP/1.1\r\nhost: a\r\nicy-metadata:1\r\n\r\n",
	"GET /live HTTP/1.0\n\n",
	"GET /live HTTP/1.0\r\nIcy-MetaData: 0\r\nIcy-MetaData: 1\r\n\r\n",
	"GET /live HTTP/1.0\r\nAuthorization: Basic YTpi\r\n\r\n",
	"PUT /live HTTP/1.1\r\nContent-Type: audio/mpeg\r\n\r\n",
	"GET /li%76e HTTP/1.0\r\n\r\n",
	"GET /live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /live HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
	"GET /live HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	"GET /live HTTP/2.0\r\n\r\n",
	"GET //live HTTP/1.0\r\n\r\n",
	"GET /live HTTP/1.0\r\nBad Name: x\r\n\r\n",
	"GET /live HTTP/1.0\r\nX: a\x00b\r\n\r\n",
}

// TestParseQuick checks the listener fast path's parser on the requests of
// real players and on what it must leave to net/http.
func TestParseQuick(t *testing.T) {
	tests := []struct {
		req            string
		ok             bool
		head, meta, au bool
		path           string
	}{
		{quickSeeds[0], true, false, false, false, "/live"},
		{quickSeeds[1], true, false, true, false, "/live"},
		{quickSeeds[2], true, true, true, false, "/live"},
		{quickSeeds[3], true, false, false, false, "/live"},
		{quickSeeds[4], true, false, false, false, "/live"}, // the first value counts, as Header.Get
		{quickSeeds[5], true, false, false, true, "/live"},
		{quickSeeds[6], false, false, false, false, ""},
		{quickSeeds[7], false, false, false, false, ""},
		{quickSeeds[8], false, false, false, false, ""},
		{quickSeeds[9], false, false, false, false, ""},
		{quickSeeds[10], false, false, false, false, ""},
		{quickSeeds[11], false, false, false, false, ""},
		{quickSeeds[12], false, false, false, false, ""},
		{quickSeeds[13], false, false, false, false, ""},
		{quickSeeds[14], false, false, false, false, ""},
	}
	for _, tc := range tests {
		b := []byte(tc.req)
		if e := headEnd(b); e != len(b) {
			t.Fatalf("%q: head ends at %d of %d", tc.req, e, len(b))
		}
		q, ok := parseQuick(b)
		if ok != tc.ok {
			t.Fatalf("%q: ok %v, want %v", tc.req, ok, tc.ok)
		}
		if ok && (q.head != tc.head || q.metadata != tc.meta || q.auth != tc.au || string(q.path) != tc.path) {
			t.Fatalf("%q: got %+v", tc.req, q)
		}
	}
	ffmpeg := []byte(quickSeeds[1])
	if a := testing.AllocsPerRun(100, func() { parseQuick(ffmpeg) }); a != 0 {
		t.Fatalf("parseQuick: %v allocs", a)
	}
}

// TestReadHead checks head framing over several reads and its limits.
func TestReadHead(t *testing.T) {
	tests := []struct {
		in      string
		trickle bool
		size    int
		n, end  int
	}{
		{"GET / HTTP/1.0\r\n\r\nbody", false, 64, 22, 18}, // a PUT's body may follow at once
		{"GET / HTTP/1.0\r\n\r\nbody", true, 64, 18, 18},
		{"GET / HTTP/1.0\n\n", true, 64, 16, 16},
		{"GET / HTTP/1.0\r\n", true, 64, 16, -1},
		{"GET / HTTP/1.0\r\nX: 1234567890\r\n\r\n", true, 20, 20, -1},
	}
	for _, tc := range tests {
		var r io.Reader = bytes.NewReader([]byte(tc.in))
		if tc.trickle {
			r = &byteAtATime{b: []byte(tc.in)}
		}
		n, end, _ := readHead(r, make([]byte, tc.size))
		if n != tc.n || end != tc.end {
			t.Fatalf("%q: n=%d end=%d, want %d %d", tc.in, n, end, tc.n, tc.end)
		}
	}
}

// byteAtATime returns one byte per Read, like a client trickling its head.
type byteAtATime struct{ b []byte }

func (r *byteAtATime) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

// FuzzParseQuick checks that the fast path never accepts a request that
// net/http refuses or reads differently: same method, path, metadata flag
// and credentials.
func FuzzParseQuick(f *testing.F) {
	for _, s := range quickSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := headEnd(data)
		if e < 0 {
			return
		}
		head := data[:e]
		q, ok := parseQuick(head)
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("%q: accepted, net/http refuses: %v", head, err)
		}
		if (req.Method == http.MethodHead) != q.head || req.Method != http.MethodGet && req.Method != http.MethodHead {
			t.Fatalf("%q: method %q, quick head=%v", head, req.Method, q.head)
		}
		if req.URL.Path != string(q.path) {
			t.Fatalf("%q: path %q, quick %q", head, req.URL.Path, q.path)
		}
		if (req.Header.Get("Icy-MetaData") == "1") != q.metadata {
			t.Fatalf("%q: metadata %q, quick %v", head, req.Header.Get("Icy-MetaData"), q.metadata)
		}
		if _, has := req.Header["Authorization"]; has != q.auth {
			t.Fatalf("%q: authorization %v, quick %v", head, has, q.auth)
		}
	})
}
