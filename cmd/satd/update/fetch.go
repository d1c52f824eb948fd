package update

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Fetcher downloads manifests and payloads over HTTP(S). Every step has a
// deadline, so a server that accepts and never answers (or stops sending)
// fails the update instead of holding it "in progress" forever.
type Fetcher struct {
	// Client is the HTTP client; nil means one with connect, TLS and
	// response-header deadlines (defaultClient).
	Client *http.Client
	// SmallTimeout bounds a whole manifest or signature fetch; 0 means
	// DefaultSmallTimeout.
	SmallTimeout time.Duration
	// Stall bounds how long a payload download may wait for its answer or
	// for its next bytes; 0 means DefaultStall.
	Stall time.Duration
}

// Deadlines of the update fetches (docs/update.md, "Limits").
const (
	DefaultSmallTimeout = time.Minute
	DefaultStall        = time.Minute
	connectTimeout      = 15 * time.Second
	headerTimeout       = 30 * time.Second
)

// defaultClient is the update client: deadlines on every step before the body.
var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: connectTimeout}).DialContext,
	TLSHandshakeTimeout:   connectTimeout,
	ResponseHeaderTimeout: headerTimeout,
	IdleConnTimeout:       90 * time.Second,
}}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return defaultClient
}

// Small fetches a document of at most max bytes (a manifest or signature)
// within SmallTimeout.
func (f *Fetcher) Small(ctx context.Context, url string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(f.SmallTimeout, DefaultSmallTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("fetch %s: more than %d bytes", url, max)
	}
	return b, nil
}

// Payload downloads the payload m describes from url into path, resuming a
// partial file left by an interrupted attempt with an HTTP Range request.
// It never writes more than m.Size bytes, and it returns nil only when the
// file is complete and its SHA-256 matches the manifest. On ErrTruncated the
// partial file is kept for the next attempt; on a digest mismatch or an
// oversized payload it is removed. progress, if not nil, is called with the
// bytes present so far.
func (f *Fetcher) Payload(ctx context.Context, url, path string, m *Manifest, progress func(done, total int64)) error {
	have, err := partialSize(path, m.Size)
	if err != nil {
		return err
	}
	if have < m.Size {
		if err := f.resume(ctx, url, path, have, m.Size, progress); err != nil {
			if !errors.Is(err, ErrTruncated) {
				os.Remove(path)
			}
			return err
		}
	}
	if err := checkDigest(path, m); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// partialSize returns the size of a partial download, removing one that is
// already larger than the payload can be.
func partialSize(path string, size int64) (int64, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("partial download %s: %w", path, err)
	case fi.Size() > size:
		return 0, os.Remove(path)
	}
	return fi.Size(), nil
}

func (f *Fetcher) resume(ctx context.Context, url, path string, have, size int64, progress func(done, total int64)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := cmp.Or(f.Stall, DefaultStall)
	watchdog := time.AfterFunc(stall, func() { cancel(fmt.Errorf("%w: nothing received for %v", ErrStalled, stall)) })
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w: %v", url, ErrTruncated, cmp.Or(context.Cause(ctx), err))
	}
	defer resp.Body.Close()
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0 && rangeStart(resp) == have:
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusOK:
		have, flags = 0, flags|os.O_TRUNC // server ignored the range
	default:
		return fmt.Errorf("download %s: HTTP %s", url, resp.Status)
	}
	if resp.ContentLength > size-have {
		return fmt.Errorf("download %s: %w: server announces %d more bytes, manifest allows %d", url, ErrPayloadTooLarge, resp.ContentLength, size-have)
	}
	out, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	kick := func(done, total int64) {
		watchdog.Reset(stall)
		if progress != nil {
			progress(done, total)
		}
	}
	n, copyErr := io.Copy(out, &progressReader{r: io.LimitReader(resp.Body, size-have), done: have, total: size, fn: kick})
	if copyErr != nil && context.Cause(ctx) != nil && ctx.Err() != nil {
		copyErr = context.Cause(ctx)
	}
	if err := closeSynced(out); err != nil && copyErr == nil {
		copyErr = err
	}
	return finishDownload(url, resp.Body, have+n, size, copyErr)
}

// finishDownload classifies the end of a download: short, too long, or whole.
func finishDownload(url string, body io.Reader, got, size int64, copyErr error) error {
	if copyErr != nil || got < size {
		return fmt.Errorf("download %s: %w at %d of %d bytes: %v", url, ErrTruncated, got, size, copyErr)
	}
	var one [1]byte
	if n, _ := io.ReadFull(body, one[:]); n > 0 {
		return fmt.Errorf("download %s: %w: more than %d bytes", url, ErrPayloadTooLarge, size)
	}
	return nil
}

// rangeStart returns the first byte offset of a 206 response.
func rangeStart(resp *http.Response) int64 {
	cr := strings.TrimPrefix(resp.Header.Get("Content-Range"), "bytes ")
	first, _, _ := strings.Cut(cr, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkDigest compares the file's SHA-256 with the manifest's.
func checkDigest(path string, m *Manifest) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, m.Size+1))
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if n != m.Size {
		return fmt.Errorf("verify %s: %w: %d bytes, manifest says %d", path, ErrTruncated, n, m.Size)
	}
	if [32]byte(h.Sum(nil)) != m.digest {
		return fmt.Errorf("verify %s: %w", path, ErrPayloadDigest)
	}
	return nil
}

// progressReader reports the running byte count after every read.
type progressReader struct {
	r           io.Reader
	done, total int64
	fn          func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.done, p.total)
	}
	return n, err
}
