package netstream

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Admission outcomes, as HTTP status codes.
const (
	admitOK        = http.StatusOK
	admitDeny      = http.StatusForbidden
	admitChallenge = http.StatusUnauthorized
	admitBusy      = http.StatusServiceUnavailable
)

// Sentinel errors of the admission path.
var (
	ErrBackendDown = errors.New("auth backend unavailable")
	ErrAuthBusy    = errors.New("auth queue full")
	ErrBadToken    = errors.New("invalid listener token")
)

// admitRequest is what admission knows about a new listener.
type admitRequest struct {
	uri, user, pass, token, ip, agent string
	header                            http.Header
	clientID                          uint64
}

// verdict is the admission decision.
type verdict struct {
	code     int
	identity string // key for "newest connection wins"; "" = anonymous
	reason   string
	limit    time.Duration // forced disconnect after (0 = none)
	cacheKey string
}

type cacheEntry struct {
	grant   bool
	limit   time.Duration
	expires time.Time // fresh until
	stale   time.Time // usable while the backend fails until
}

type flight struct {
	done chan struct{}
	v    verdict
	err  error
}

// admission is a mount's listener gate: local checks (users, tokens), then a
// cached, coalesced, bounded and breaker-protected URL-auth call. No
// infrastructure failure ever produces 401.
type admission struct {
	srv   *Server
	mount string
	cfg   AuthConfig
	keys  [][]byte
	users map[string]string

	client *http.Client
	sem    chan struct{}
	wait   atomic.Int64

	mu      sync.Mutex
	cache   map[string]*cacheEntry
	flights map[string]*flight

	bmu       sync.Mutex
	fails     int
	openUntil time.Time
	probing   bool

	calls     atomic.Uint64 // backend listener_add calls made
	failOpens atomic.Uint64
	busy      atomic.Uint64
}

func newAdmission(srv *Server, mount string, cfg AuthConfig) *admission {
	a := &admission{
		srv: srv, mount: mount, cfg: cfg, users: map[string]string{},
		cache: map[string]*cacheEntry{}, flights: map[string]*flight{},
		sem: make(chan struct{}, max(cfg.Handlers, 1)),
	}
	for _, k := range cfg.TokenKeys {
		if b, err := parseTokenKey(k); err == nil {
			a.keys = append(a.keys, b)
		}
	}
	for _, u := range cfg.Users {
		name, pw, _ := strings.Cut(u, ":")
		a.users[name] = pw
	}
	a.client = &http.Client{
		Timeout: cfg.Timeout.Std(),
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout.Std()}).DialContext,
			MaxIdleConnsPerHost: max(cfg.Handlers, 1),
			IdleConnTimeout:     90 * time.Second,
		},
	}
	return a
}

// breakerOpen reports whether the backend must not be called now. In the
// half-open state it lets exactly one probe through.
func (a *admission) breakerOpen(now time.Time) bool {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	if a.openUntil.IsZero() {
		return false
	}
	if now.Before(a.openUntil) || a.probing {
		return true
	}
	a.probing = true
	return false
}

// BreakerOpen reports whether the breaker currently refuses calls.
func (a *admission) BreakerOpen() bool {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	return !a.openUntil.IsZero() && time.Now().Before(a.openUntil)
}

func (a *admission) record(ok bool) {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	a.probing = false
	if ok {
		a.fails, a.openUntil = 0, time.Time{}
		return
	}
	a.fails++
	if a.fails >= 5 {
		w := a.cfg.OnErrorWait.Std()
		a.openUntil = time.Now().Add(w/2 + rand.N(w+1))
	}
}

// anonymous reports whether the admission admits every listener without
// looking at the request: no auth type, no token keys.
func (a *admission) anonymous() bool {
	return (a.cfg.Type == "" || a.cfg.Type == "none") && len(a.keys) == 0
}

// check decides on a listener. It never blocks longer than the configured
// timeout.
func (a *admission) check(ctx context.Context, r admitRequest) verdict {
	identity := ""
	if r.user != "" {
		identity = "u:" + r.user
	}
	if r.token != "" && len(a.keys) > 0 {
		sub, limit, err := verifyToken(a.keys, a.mount, r.token, r.ip, time.Now())
		if err != nil {
			return verdict{code: admitDeny, reason: err.Error()}
		}
		return verdict{code: admitOK, identity: "t:" + sub, limit: limit}
	}
	switch a.cfg.Type {
	case "", "none":
		return verdict{code: admitOK, identity: identity}
	case "token":
		return verdict{code: admitDeny, reason: "token required"}
	case "users":
		pw, ok := a.users[r.user]
		if r.user == "" || !ok || subtle.ConstantTimeCompare([]byte(pw), []byte(r.pass)) != 1 {
			return verdict{code: admitChallenge, reason: "bad credentials"}
		}
		return verdict{code: admitOK, identity: identity}
	}
	if a.cfg.Challenge && r.user == "" {
		return verdict{code: admitChallenge, reason: "credentials required"}
	}
	v := a.checkURL(ctx, r)
	if v.code == admitOK {
		v.identity = identity
	}
	return v
}

func (a *admission) key(r admitRequest) string {
	h := sha256.New()
	who := r.user
	if who == "" {
		who = "ip:" + r.ip
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s", r.uri, who, r.pass)
	return string(h.Sum(nil))
}

func (a *admission) deny() verdict {
	if a.cfg.Challenge {
		return verdict{code: admitChallenge, reason: "refused by auth backend"}
	}
	return verdict{code: admitDeny, reason: "refused by auth backend"}
}

// onError applies the mount's failure policy.
func (a *admission) onError(reason string) verdict {
	if a.cfg.OnError == "closed" {
		a.busy.Add(1)
		return verdict{code: admitBusy, reason: reason}
	}
	a.failOpens.Add(1)
	return verdict{code: admitOK, reason: "fail-open: " + reason}
}

func (a *admission) checkURL(ctx context.Context, r admitRequest) verdict {
	now := time.Now()
	key := a.key(r)
	a.mu.Lock()
	e := a.cache[key]
	if e != nil && now.Before(e.expires) {
		a.mu.Unlock()
		if e.grant {
			return verdict{code: admitOK, limit: e.limit, cacheKey: key, reason: "cached"}
		}
		return a.deny()
	}
	stale := e != nil && e.grant && now.Before(e.stale)
	if a.breakerOpen(now) {
		a.mu.Unlock()
		if stale {
			return verdict{code: admitOK, cacheKey: key, reason: "stale grant, breaker open"}
		}
		return a.onError("auth breaker open")
	}
	f := a.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		a.flights[key] = f
		a.mu.Unlock()
		go a.fly(key, f, r)
	} else {
		a.mu.Unlock()
	}
	t := time.NewTimer(a.cfg.Timeout.Std())
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		if stale {
			return verdict{code: admitOK, cacheKey: key, reason: "stale grant, backend slow"}
		}
		return a.onError("auth deadline passed")
	case <-ctx.Done():
		return verdict{code: admitBusy, reason: "client gone"}
	}
	if f.err != nil {
		if stale {
			return verdict{code: admitOK, cacheKey: key, reason: "stale grant: " + f.err.Error()}
		}
		return a.onError(f.err.Error())
	}
	v := f.v
	v.cacheKey = key
	return v
}

// fly performs one coalesced backend call for key and caches the result.
func (a *admission) fly(key string, f *flight, r admitRequest) {
	defer func() {
		a.mu.Lock()
		delete(a.flights, key)
		a.mu.Unlock()
		close(f.done)
	}()
	if a.wait.Add(1) > int64(a.cfg.Pending)+int64(cap(a.sem)) {
		a.wait.Add(-1)
		f.err = ErrAuthBusy
		return
	}
	deadline := time.NewTimer(a.cfg.Timeout.Std())
	defer deadline.Stop()
	select {
	case a.sem <- struct{}{}:
	case <-deadline.C:
		a.wait.Add(-1)
		f.err = fmt.Errorf("%w: no handler free within %s", ErrAuthBusy, a.cfg.Timeout.Std())
		return
	}
	defer func() { <-a.sem; a.wait.Add(-1) }()
	grant, limit, err := a.callAdd(r)
	a.record(err == nil)
	if err != nil {
		f.err = err
		return
	}
	now := time.Now()
	e := &cacheEntry{grant: grant, limit: limit}
	if grant {
		e.expires, e.stale = now.Add(a.cfg.CacheTTL.Std()), now.Add(a.cfg.StaleTTL.Std())
		f.v = verdict{code: admitOK, limit: limit}
	} else {
		e.expires = now.Add(a.cfg.NegativeTTL.Std())
		f.v = a.deny()
	}
	a.mu.Lock()
	a.cache[key] = e
	if len(a.cache) > 100000 {
		a.pruneLocked(now)
	}
	a.mu.Unlock()
}

func (a *admission) pruneLocked(now time.Time) {
	for k, e := range a.cache {
		if now.After(e.expires) && now.After(e.stale) {
			delete(a.cache, k)
		}
	}
}

// released extends a grant by the reconnect grace when a listener leaves.
func (a *admission) released(key string) {
	if key == "" {
		return
	}
	a.mu.Lock()
	if e := a.cache[key]; e != nil && e.grant {
		if g := time.Now().Add(a.cfg.ReconnectGrace.Std()); g.After(e.expires) {
			e.expires = g
		}
	}
	a.mu.Unlock()
}

// icecastForm builds the POST body of an Icecast URL-auth call, with
// Icecast's field names and order.
func icecastForm(action, server, port string, r admitRequest, extra ...string) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	add("action", action)
	add("server", server)
	add("port", port)
	add("client", strconv.FormatUint(r.clientID, 10))
	add("mount", r.uri)
	add("user", r.user)
	add("pass", r.pass)
	for i := 0; i+1 < len(extra); i += 2 {
		add(extra[i], extra[i+1])
	}
	add("ip", r.ip)
	agent := r.agent
	if agent == "" {
		agent = "-"
	}
	add("agent", agent)
	return b.String()
}

// callAdd POSTs listener_add. err is set for infrastructure failures (no
// answer, timeout, 5xx without grant); a reachable backend that does not
// grant is a deny.
func (a *admission) callAdd(r admitRequest) (grant bool, limit time.Duration, err error) {
	a.calls.Add(1)
	body := icecastForm("listener_add", a.srv.cfg.Hostname, a.srv.port(), r)
	if a.cfg.Headers != "" {
		var b strings.Builder
		b.WriteString(body)
		for _, h := range strings.Split(a.cfg.Headers, ",") {
			h = strings.TrimSpace(h)
			if v := r.header.Get(h); v != "" {
				b.WriteString("&" + url.QueryEscape(a.cfg.HeaderPrefix+strings.ToLower(h)) + "=" + url.QueryEscape(v))
			}
		}
		body = b.String()
	}
	req, err := http.NewRequest(http.MethodPost, a.cfg.ListenerAdd, strings.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("listener_add %s: %w", a.cfg.ListenerAdd, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "satd")
	if a.cfg.Username != "" {
		req.SetBasicAuth(a.cfg.Username, a.cfg.Password)
	} else if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return false, 0, fmt.Errorf("listener_add %s: %w", a.cfg.ListenerAdd, ErrBackendDown)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	name, want, _ := strings.Cut(a.cfg.AuthHeader, ":")
	want = strings.TrimSpace(want)
	for _, v := range resp.Header.Values(strings.TrimSpace(name)) {
		if v == want {
			grant = true
		}
	}
	if tl, _, _ := strings.Cut(a.cfg.TimelimitHeader, ":"); grant && tl != "" {
		if s, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get(tl))); perr == nil && s > 0 {
			limit = time.Duration(s) * time.Second
		}
	}
	if !grant && resp.StatusCode >= 500 {
		return false, 0, fmt.Errorf("listener_add %s: status %d: %w", a.cfg.ListenerAdd, resp.StatusCode, ErrBackendDown)
	}
	return grant, limit, nil
}

// Signed listener tokens.
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// without padding, where payload is
//
//	v1|<mount>|<subject>|<expiry unix seconds>|<client IP prefix or empty>
//
// and is passed as the "token" query parameter. The relay verifies it
// locally against every configured key (rotation), with no backend call.

// SignToken issues a listener token for mount and subject, valid until
// expiry, optionally bound to an IP prefix such as "192.168.1.0/24".
func SignToken(key []byte, mount, subject string, expiry time.Time, ipPrefix string) string {
	payload := fmt.Sprintf("v1|%s|%s|%d|%s", mount, subject, expiry.Unix(), ipPrefix)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(mac.Sum(nil))
}

// verifyToken checks a token and returns its subject and remaining life.
func verifyToken(keys [][]byte, mount, tok, ip string, now time.Time) (string, time.Duration, error) {
	p64, s64, ok := strings.Cut(tok, ".")
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(s64)
	if !ok || err1 != nil || err2 != nil {
		return "", 0, fmt.Errorf("%w: not payload.signature in base64url", ErrBadToken)
	}
	good := false
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write(payload)
		if hmac.Equal(mac.Sum(nil), sig) {
			good = true
		}
	}
	if !good {
		return "", 0, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	f := strings.Split(string(payload), "|")
	if len(f) != 5 || f[0] != "v1" {
		return "", 0, fmt.Errorf("%w: payload is not v1|mount|subject|expiry|prefix", ErrBadToken)
	}
	if f[1] != mount {
		return "", 0, fmt.Errorf("%w: issued for mount %q", ErrBadToken, f[1])
	}
	exp, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: expiry %q", ErrBadToken, f[3])
	}
	left := time.Unix(exp, 0).Sub(now)
	if left <= 0 {
		return "", 0, fmt.Errorf("%w: expired", ErrBadToken)
	}
	if f[4] != "" {
		pfx, err := netip.ParsePrefix(f[4])
		addr, err2 := netip.ParseAddr(ip)
		if err != nil || err2 != nil || !pfx.Contains(addr.Unmap()) {
			return "", 0, fmt.Errorf("%w: client address not in %q", ErrBadToken, f[4])
		}
	}
	return f[2], left, nil
}

func parseTokenKey(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < 16 {
		return nil, fmt.Errorf("must be at least 32 hex digits (16 bytes)")
	}
	return b, nil
}
