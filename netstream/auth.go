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

// Admission outcomes, as HTTP status codes. admitRedirect sends a newly
// granted listener back with a re-admission token in its URL.
const (
	admitOK        = http.StatusOK
	admitRedirect  = http.StatusFound
	admitDeny      = http.StatusForbidden
	admitChallenge = http.StatusUnauthorized
	admitBusy      = http.StatusServiceUnavailable
)

// Sentinel errors of the admission path.
var (
	ErrBackendDown  = errors.New("auth backend unavailable")
	ErrBackendFault = errors.New("auth backend answered neither a grant nor an explicit deny")
	ErrAuthBusy     = errors.New("auth queue full")
	ErrBadToken     = errors.New("invalid listener token")
)

// admitRequest is what admission knows about a new listener.
type admitRequest struct {
	uri, user, pass, token, ip, agent string
	readmit                           string // re-admission token from the URL
	proxied                           bool   // ip came from a PROXY protocol header
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
	// provisional: admitted without a backend decision (fail-open); the
	// backend is asked later and a deny closes the listener.
	provisional bool
	// readmitted: admitted on a re-admission token; the backend is told
	// asynchronously (listener_add with readmit=1) unless this relay
	// issued the token moments ago after a synchronous grant.
	readmitted bool
	location   string // redirect target for admitRedirect
	cookie     string // Set-Cookie value sent with the redirect (the same token)
}

type cacheEntry struct {
	grant    bool
	limitEnd time.Time // absolute end of the granted time limit (zero = none)
	expires  time.Time // fresh until
	stale    time.Time // usable while the backend fails until
}

// remaining returns the time left of a grant's time limit (0 = none) and
// whether the grant still has time.
func (e *cacheEntry) remaining(now time.Time) (time.Duration, bool) {
	if e.limitEnd.IsZero() {
		return 0, true
	}
	left := e.limitEnd.Sub(now)
	return left, left > 0
}

type flight struct {
	done chan struct{}
	v    verdict
	err  error
}

// admission is a mount's listener gate: local checks (users, tokens,
// re-admission tokens), then a cached, coalesced, bounded and
// breaker-protected URL-auth call. No infrastructure failure ever produces
// 401; fail-open admissions are throttled per address and verified later.
type admission struct {
	srv   *Server
	mount string
	cfg   AuthConfig
	keys  [][]byte
	users map[string]string
	sizes admissionSizes

	client *http.Client
	sem    chan struct{}
	wait   atomic.Int64

	mu      sync.Mutex
	cache   *lru[string, *cacheEntry]
	flights map[string]*flight
	issued  *lru[string, time.Time] // re-admission tokens issued after a synchronous grant

	bmu       sync.Mutex
	fails     int
	openUntil time.Time
	probing   bool

	failOpen *addrBuckets
	verify   *verifier

	calls     atomic.Uint64 // synchronous backend listener_add calls made
	asyncAdds atomic.Uint64 // background listener_add calls (verify-later, re-admission reports)
	failOpens atomic.Uint64
	busy      atomic.Uint64
	evicted   atomic.Uint64 // decision cache entries evicted to stay within the cap
	readmits  atomic.Uint64 // listeners admitted on a re-admission token
	revoked   atomic.Uint64 // provisional listeners closed after a deny
	// unreported counts re-admissions the backend was not told of because
	// the verify queue was full.
	unreported atomic.Uint64
}

func newAdmission(srv *Server, mount string, cfg AuthConfig) *admission {
	sizes := sizeAdmission(srv.budget, cfg.Pending)
	if cfg.CacheSize > 0 {
		sizes.cache = cfg.CacheSize
	}
	a := &admission{
		srv: srv, mount: mount, cfg: cfg, users: map[string]string{}, sizes: sizes,
		cache: newLRU[string, *cacheEntry](sizes.cache), flights: map[string]*flight{},
		issued:   newLRU[string, time.Time](sizes.cache),
		sem:      make(chan struct{}, max(cfg.Handlers, 1)),
		failOpen: newAddrBuckets(cfg.FailOpenBurst, cfg.FailOpenEvery.Std(), 4096),
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
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: cfg.Timeout.Std()}).DialContext,
			MaxIdleConnsPerHost:    max(cfg.Handlers, 1),
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cfg.Type == "url" {
		a.verify = newVerifier(a)
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

// readmitEnabled reports whether granted listeners get re-admission tokens.
func (a *admission) readmitEnabled() bool {
	return a.cfg.Type == "url" && len(a.keys) > 0 && a.cfg.ReadmitTTL > 0
}

// check decides on a listener. It never blocks longer than the configured
// timeout.
func (a *admission) check(ctx context.Context, r admitRequest) verdict {
	identity := ""
	if r.user != "" {
		identity = "u:" + r.user
	}
	if r.readmit != "" && a.readmitEnabled() {
		if v, ok := a.checkReadmit(r, identity, time.Now()); ok {
			return v
		}
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
		if !v.provisional && a.readmitEnabled() && a.cfg.ReadmitRedirect {
			v = a.redirect(v, r, time.Now())
		}
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

// onError applies the mount's failure policy. A fail-open admission is
// provisional (verified later) and limited per client address; when the
// address used its quota or the verify queue is full, the listener gets
// 503 + Retry-After, never a free stream and never a challenge.
func (a *admission) onError(r admitRequest, reason string) verdict {
	if a.cfg.OnError == "closed" {
		a.busy.Add(1)
		return verdict{code: admitBusy, reason: reason}
	}
	if a.verify != nil && !a.verify.room() {
		a.busy.Add(1)
		return verdict{code: admitBusy, reason: reason + "; verify queue full"}
	}
	if !a.failOpen.take(r.ip, time.Now()) {
		a.busy.Add(1)
		return verdict{code: admitBusy, reason: reason + "; fail-open quota of " + r.ip + " used"}
	}
	a.failOpens.Add(1)
	return verdict{code: admitOK, reason: "fail-open: " + reason, provisional: true, cacheKey: a.key(r)}
}

// lookup returns the fresh cache entry for key, or nil.
func (a *admission) lookupLocked(key string, now time.Time) *cacheEntry {
	e, ok := a.cache.get(key)
	if !ok {
		return nil
	}
	if _, left := e.remaining(now); !left {
		a.cache.remove(key) // the granted time is used up: ask again, as Icecast does
		return nil
	}
	return e
}

func (a *admission) checkURL(ctx context.Context, r admitRequest) verdict {
	now := time.Now()
	key := a.key(r)
	a.mu.Lock()
	e := a.lookupLocked(key, now)
	if e != nil && now.Before(e.expires) {
		a.mu.Unlock()
		if e.grant {
			limit, _ := e.remaining(now)
			return verdict{code: admitOK, limit: limit, cacheKey: key, reason: "cached"}
		}
		return a.deny()
	}
	stale := e != nil && e.grant && now.Before(e.stale)
	var staleLimit time.Duration
	if stale {
		staleLimit, _ = e.remaining(now)
	}
	staleGrant := func(why string) verdict {
		return verdict{code: admitOK, cacheKey: key, limit: staleLimit, reason: "stale grant: " + why}
	}
	if a.breakerOpen(now) {
		a.mu.Unlock()
		if stale {
			return staleGrant("breaker open")
		}
		return a.onError(r, "auth breaker open")
	}
	f := a.startFlightLocked(key, r)
	a.mu.Unlock()
	t := time.NewTimer(a.cfg.Timeout.Std())
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		if stale {
			return staleGrant("backend slow")
		}
		return a.onError(r, "auth deadline passed")
	case <-ctx.Done():
		return verdict{code: admitBusy, reason: "client gone"}
	}
	if f.err != nil {
		if stale {
			return staleGrant(f.err.Error())
		}
		return a.onError(r, f.err.Error())
	}
	v := f.v
	v.cacheKey = key
	return v
}

// startFlightLocked returns the in-flight backend call for key, starting
// one when there is none. a.mu is held.
func (a *admission) startFlightLocked(key string, r admitRequest) *flight {
	f := a.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		a.flights[key] = f
		go a.fly(key, f, r)
	}
	return f
}

// fly performs one coalesced backend call for key and caches the result.
func (a *admission) fly(key string, f *flight, r admitRequest) {
	defer func() {
		a.mu.Lock()
		delete(a.flights, key)
		a.mu.Unlock()
		close(f.done)
	}()
	if a.wait.Add(1) > int64(a.sizes.pending)+int64(cap(a.sem)) {
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
	a.calls.Add(1)
	grant, limit, err := a.callAdd(r)
	a.record(err == nil)
	if err != nil {
		f.err = err
		return
	}
	f.v = a.remember(key, grant, limit, time.Now())
}

// remember caches a backend decision and returns it as a verdict. A grant's
// time limit is stored as an absolute end, so a reconnect from the cache
// gets what is left of it, not a fresh one.
func (a *admission) remember(key string, grant bool, limit time.Duration, now time.Time) verdict {
	e := &cacheEntry{grant: grant}
	v := a.deny()
	if grant {
		e.expires, e.stale = now.Add(a.cfg.CacheTTL.Std()), now.Add(a.cfg.StaleTTL.Std())
		if limit > 0 {
			e.limitEnd = now.Add(limit)
		}
		v = verdict{code: admitOK, limit: limit}
	} else {
		e.expires = now.Add(a.cfg.NegativeTTL.Std())
	}
	a.mu.Lock()
	if a.cache.put(key, e) {
		a.evicted.Add(1)
	}
	a.mu.Unlock()
	return v
}

// released extends a grant by the reconnect grace when a listener leaves.
func (a *admission) released(key string) {
	if key == "" {
		return
	}
	a.mu.Lock()
	if e, ok := a.cache.get(key); ok && e.grant {
		if g := time.Now().Add(a.cfg.ReconnectGrace.Std()); g.After(e.expires) {
			e.expires = g
		}
	}
	a.mu.Unlock()
}

// cacheLen returns the number of cached decisions.
func (a *admission) cacheLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cache.len()
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

// callAdd POSTs listener_add (extra are more field pairs, such as
// readmit=1). Only a grant or an explicit deny is a decision: the grant
// header (whatever the status, as Icecast) grants; a 2xx or 403 answer that
// names the grant header with another value or carries icecast-auth-message
// denies. Everything else — no answer, a timeout, garbage, 5xx, 401/407
// (wrong backend credentials), 404, 408, 429, a 200 error page — is a
// fault (err set) that follows the mount's on-error policy.
func (a *admission) callAdd(r admitRequest, extra ...string) (grant bool, limit time.Duration, err error) {
	body := icecastForm("listener_add", a.srv.cfg.Hostname, a.srv.port(), r, extra...)
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
	where := redactURL(a.cfg.ListenerAdd)
	req, err := http.NewRequest(http.MethodPost, a.cfg.ListenerAdd, strings.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("listener_add %s: %w", where, err)
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
		return false, 0, fmt.Errorf("listener_add %s: %w", where, ErrBackendDown)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return a.decide(resp.StatusCode, resp.Header, where)
}

// decide classifies a listener_add answer (see callAdd).
func (a *admission) decide(status int, h http.Header, where string) (grant bool, limit time.Duration, err error) {
	name, want, _ := strings.Cut(a.cfg.AuthHeader, ":")
	name, want = strings.TrimSpace(name), strings.TrimSpace(want)
	named := false
	for _, v := range h.Values(name) {
		named = true
		if v == want {
			grant = true
		}
	}
	if grant {
		if tl, _, _ := strings.Cut(a.cfg.TimelimitHeader, ":"); tl != "" {
			if s, perr := strconv.Atoi(strings.TrimSpace(h.Get(tl))); perr == nil && s > 0 {
				limit = time.Duration(s) * time.Second
			}
		}
		return true, limit, nil
	}
	explicit := named || len(h.Values("Icecast-Auth-Message")) > 0
	if explicit && (status/100 == 2 || status == http.StatusForbidden) {
		return false, 0, nil
	}
	return false, 0, fmt.Errorf("listener_add %s: status %d without a grant or an explicit deny: %w", where, status, ErrBackendFault)
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
	return sealToken(key, fmt.Sprintf("v1|%s|%s|%d|%s", mount, subject, expiry.Unix(), ipPrefix))
}

// sealToken returns base64url(payload) "." base64url(HMAC-SHA256(key, payload)).
func sealToken(key []byte, payload string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(mac.Sum(nil))
}

// openToken checks a token's signature against every key (rotation) and
// returns its payload split at "|".
func openToken(keys [][]byte, tok string) ([]string, error) {
	p64, s64, ok := strings.Cut(tok, ".")
	enc := base64.RawURLEncoding
	if !ok || len(tok) > 1024 {
		return nil, fmt.Errorf("%w: not payload.signature in base64url", ErrBadToken)
	}
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: not payload.signature in base64url", ErrBadToken)
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
		return nil, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	return strings.Split(string(payload), "|"), nil
}

// verifyToken checks a token and returns its subject and remaining life.
func verifyToken(keys [][]byte, mount, tok, ip string, now time.Time) (string, time.Duration, error) {
	f, err := openToken(keys, tok)
	if err != nil {
		return "", 0, err
	}
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
