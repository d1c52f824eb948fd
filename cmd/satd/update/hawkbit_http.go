package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// authClient talks to a hawkBit server: it adds the Authorization header
// to requests for the server's host only (an artifact link may point to a
// CDN, which must not see the token), bounds every body it reads, and marks
// the failures worth retrying.
type authClient struct {
	http *http.Client
}

// authTransport adds the DDI Authorization header for one host.
type authTransport struct {
	base   http.RoundTripper
	host   string
	header string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.base.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", t.header)
	return t.base.RoundTrip(req)
}

func newAuthClient(base http.RoundTripper, host, targetToken, gatewayToken string) *authClient {
	if base == nil {
		base = http.DefaultTransport
	}
	header := "TargetToken " + targetToken
	if gatewayToken != "" {
		header = "GatewayToken " + gatewayToken
	}
	return &authClient{http: &http.Client{Transport: &authTransport{base: base, host: host, header: header}}}
}

// transientError is a failure worth retrying later: the server could not
// be reached, timed out, or answered 5xx or 429.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// transient tells whether err should be retried rather than reported as a
// refusal of the deployment.
func transient(err error) bool {
	var t transientError
	return errors.As(err, &t) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrBusy) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *authClient) get(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	return c.getMax(ctx, url, maxDDIBody, timeout)
}

// getMax GETs url and returns a body of at most max bytes.
func (c *authClient) getMax(ctx context.Context, url string, max int64, timeout time.Duration) ([]byte, error) {
	return c.do(ctx, http.MethodGet, url, nil, max, timeout)
}

// send PUTs or POSTs v as JSON to url.
func (c *authClient) send(ctx context.Context, method, url string, v any, timeout time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	_, err = c.do(ctx, method, url, b, maxDDIBody, timeout)
	return err
}

func (c *authClient) do(ctx context.Context, method, url string, body []byte, max int64, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	req.Header.Set("Accept", "application/hal+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transientError{fmt.Errorf("%s %s: %w", method, url, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, transientError{fmt.Errorf("%s %s: reading the answer: %w", method, url, err)}
	}
	if err := statusError(method, url, resp.StatusCode, resp.Status); err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s %s: %w: answer longer than %d bytes", method, url, ErrDDI, max)
	}
	return b, nil
}

// statusError turns a non-2xx status into an error, transient for 5xx and 429.
func statusError(method, url string, code int, status string) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 500 || code == http.StatusTooManyRequests:
		return transientError{fmt.Errorf("%s %s: HTTP %s", method, url, status)}
	}
	return fmt.Errorf("%s %s: HTTP %s", method, url, status)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
