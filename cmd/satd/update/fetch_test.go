package update

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// newLocalServer starts an httptest server bound to 127.0.0.1.
func newLocalServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func testPayload() []byte { return bytes.Repeat([]byte("satd payload 0123456789\n"), 4096) }

func parsedManifest(t *testing.T, payload []byte, edit func(*Manifest)) *Manifest {
	t.Helper()
	m, err := ParseManifest("test", manifestFor(t, payload, edit))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPayloadRejects(t *testing.T) {
	payload := testPayload()
	tampered := bytes.Clone(payload)
	tampered[100] ^= 1
	longer := append(bytes.Clone(payload), "extra"...)
	tests := []struct {
		name    string
		serve   []byte
		chunked bool // no Content-Length: the excess shows only in the body
		want    error
	}{
		{name: "intact", serve: payload},
		{name: "tampered payload", serve: tampered, want: ErrPayloadDigest},
		{name: "larger than announced (Content-Length)", serve: longer, want: ErrPayloadTooLarge},
		{name: "larger than announced (chunked)", serve: longer, chunked: true, want: ErrPayloadTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.serve)))
				}
				w.Write(tc.serve)
			}))
			path := filepath.Join(t.TempDir(), "payload.part")
			err := (&Fetcher{}).Payload(context.Background(), srv.URL, path, parsedManifest(t, payload, nil), nil)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Payload: %v, want %v", err, tc.want)
			}
			if _, statErr := os.Stat(path); (err == nil) != (statErr == nil) {
				t.Errorf("file present = %v after error %v", statErr == nil, err)
			}
		})
	}
}

// TestPayloadTruncatedThenResumed cuts the first download in the middle;
// the second attempt must ask for the rest only and succeed.
func TestPayloadTruncatedThenResumed(t *testing.T) {
	payload := testPayload()
	half := len(payload) / 2
	var mu sync.Mutex
	var ranges []string
	var served int
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := len(ranges) == 0
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		if first {
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			w.Write(payload[:half])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}
		cw := &countingWriter{ResponseWriter: w, count: func(n int) { mu.Lock(); served += n; mu.Unlock() }}
		http.ServeContent(cw, r, "satd", time.Time{}, bytes.NewReader(payload))
	}))
	path := filepath.Join(t.TempDir(), "payload.part")
	m := parsedManifest(t, payload, nil)
	f := &Fetcher{}
	err := f.Payload(context.Background(), srv.URL, path, m, nil)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("first attempt: %v, want ErrTruncated", err)
	}
	fi, statErr := os.Stat(path)
	if statErr != nil || fi.Size() == 0 || fi.Size() >= int64(len(payload)) {
		t.Fatalf("partial file after truncation: %v, %v", fi, statErr)
	}
	var last int64
	if err := f.Payload(context.Background(), srv.URL, path, m, func(done, total int64) { last = done }); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "bytes=" + strconv.FormatInt(fi.Size(), 10) + "-"; ranges[1] != want {
		t.Errorf("resume asked for %q, want %q", ranges[1], want)
	}
	if served != len(payload)-int(fi.Size()) || last != int64(len(payload)) {
		t.Errorf("resume transferred %d bytes (progress %d), want the missing %d", served, last, len(payload)-int(fi.Size()))
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, payload) {
		t.Error("resumed file differs from the payload")
	}
}

// countingWriter reports the body bytes before they go out.
type countingWriter struct {
	http.ResponseWriter
	count func(int)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.count(len(b))
	return c.ResponseWriter.Write(b)
}

// TestPayloadRestartsWhenServerIgnoresRange: a server without Range support
// answers 200 with the whole file; the partial file is replaced.
func TestPayloadRestartsWhenServerIgnoresRange(t *testing.T) {
	payload := testPayload()
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	path := filepath.Join(t.TempDir(), "payload.part")
	os.WriteFile(path, payload[:1000], 0o600)
	if err := (&Fetcher{}).Payload(context.Background(), srv.URL, path, parsedManifest(t, payload, nil), nil); err != nil {
		t.Fatal(err)
	}
}

func TestReceiveUpload(t *testing.T) {
	payload := testPayload()
	m := parsedManifest(t, payload, nil)
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"intact", payload, nil},
		{"short", payload[:100], ErrTruncated},
		{"long", append(bytes.Clone(payload), 'x'), ErrPayloadTooLarge},
		{"tampered", append([]byte{'X'}, payload[1:]...), ErrPayloadDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := receive(bytes.NewReader(tc.body), filepath.Join(t.TempDir(), "p"), m, nil)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("receive: %v, want %v", err, tc.want)
			}
		})
	}
}
