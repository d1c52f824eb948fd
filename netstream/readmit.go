package netstream

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Re-admission tokens.
//
// A listener granted by the backend is redirected (302) to its own URL with
// a "readmit" query parameter holding a token sealed like listener tokens
// (sealToken, the mount's token-keys: the first signs, every key verifies),
// whose payload is
//
//	r1|<mount>|<identity>|<expiry unix seconds>|<end of the time limit, unix seconds, 0 = none>
//
// where identity is base64url of the first 12 bytes of SHA-256 over the
// request URI without the readmit parameter and the Basic-auth user. The
// redirect also sets the token as a cookie (Path = the mount): some players
// reconnect to the URL they were redirected to, others (ffmpeg, mpv) to the
// URL they were first given, carrying the cookie. Either way, when its relay
// dies any relay holding the key admits it on the token alone, with no
// backend call, and tells the backend afterwards (listener_add with readmit=1,
// through the verifier: a deny then closes the listener after the grace).
// The time limit travels as an absolute end, so reconnecting never renews
// it. An invalid, foreign or expired token is ignored: the listener is
// checked as if it had none.

// readmitParam is the query parameter carrying a re-admission token.
const readmitParam = "readmit"

// redirectHop is how long after issuing a token its first use on this relay
// counts as the redirect's own second connection (not reported: the
// backend was just asked). Behind a balancer that hop may land on another
// relay, which reports it; the same token coming back here later is a
// re-admission (this listener's relay died) and is reported. A player
// follows a 302 at once; the window allows for a loaded machine.
const redirectHop = 10 * time.Second

// readmitCookie returns the re-admission token of a request's readmit
// cookie, or "".
func readmitCookie(h http.Header) string {
	for _, line := range h.Values("Cookie") {
		for _, kv := range strings.Split(line, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(kv), readmitParam+"="); ok {
				return v
			}
		}
	}
	return ""
}

// splitReadmit removes the readmit parameter from a request URI and returns
// the URI without it and the token.
func splitReadmit(uri string) (rest, token string) {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || !strings.Contains(query, readmitParam+"=") {
		return uri, ""
	}
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if v, found := strings.CutPrefix(kv, readmitParam+"="); found {
			token, _ = url.QueryUnescape(v)
			continue
		}
		kept = append(kept, kv)
	}
	if len(kept) == 0 {
		return path, token
	}
	return path + "?" + strings.Join(kept, "&"), token
}

// readmitIdentity binds a token to what the backend decided on.
func readmitIdentity(uri, user string) string {
	h := sha256.Sum256([]byte(uri + "\x00" + user))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// issueReadmit seals a re-admission token for r, valid for readmit-ttl, with
// the grant's time limit (0 = none) as an absolute end.
func (a *admission) issueReadmit(r admitRequest, limit time.Duration, now time.Time) string {
	end := int64(0)
	if limit > 0 {
		end = now.Add(limit).Unix()
	}
	payload := "r1|" + a.mount + "|" + readmitIdentity(r.uri, r.user) + "|" +
		strconv.FormatInt(now.Add(a.cfg.ReadmitTTL.Std()).Unix(), 10) + "|" + strconv.FormatInt(end, 10)
	return sealToken(a.keys[0], payload)
}

// redirect turns a synchronous grant into a 302 to the same URI with a
// re-admission token (also set as a cookie: ffmpeg and mpv reconnect to the
// URL they were first given, but send the cookies they were handed), remembering the token so its first use here within
// redirectHop does not report the listener to the backend a second time.
func (a *admission) redirect(v verdict, r admitRequest, now time.Time) verdict {
	tok := a.issueReadmit(r, v.limit, now)
	sep := "?"
	if strings.Contains(r.uri, "?") {
		sep = "&"
	}
	a.mu.Lock()
	a.issued.put(tokenSig(tok), now)
	a.mu.Unlock()
	cookie := readmitParam + "=" + tok + "; Path=" + a.mount + "; Max-Age=" + strconv.Itoa(int(a.cfg.ReadmitTTL.Std().Seconds())) + "; HttpOnly"
	return verdict{code: admitRedirect, location: r.uri + sep + readmitParam + "=" + tok, cookie: cookie, reason: "granted; redirected with a re-admission token"}
}

// checkReadmit admits r on its re-admission token. ok is false when the
// token does not admit (bad, foreign, expired, or its time limit is used
// up); the caller then checks r as if it carried no token.
func (a *admission) checkReadmit(r admitRequest, identity string, now time.Time) (verdict, bool) {
	f, err := openToken(a.keys, r.readmit)
	if err != nil || len(f) != 5 || f[0] != "r1" || f[1] != a.mount || f[2] != readmitIdentity(r.uri, r.user) {
		return verdict{}, false
	}
	exp, err1 := strconv.ParseInt(f[3], 10, 64)
	end, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || !now.Before(time.Unix(exp, 0)) {
		return verdict{}, false
	}
	var limit time.Duration
	if end != 0 {
		if limit = time.Unix(end, 0).Sub(now); limit <= 0 {
			return verdict{}, false
		}
	}
	sig := tokenSig(r.readmit)
	a.mu.Lock()
	at, fresh := a.issued.get(sig)
	if fresh {
		a.issued.remove(sig)
		fresh = now.Sub(at) < redirectHop
	}
	a.mu.Unlock()
	a.readmits.Add(1)
	return verdict{code: admitOK, identity: identity, limit: limit, cacheKey: a.key(r),
		readmitted: !fresh, reason: "re-admission token"}, true
}

// tokenSig returns the signature part of a sealed token: what the table of
// issued tokens keys on (43 bytes rather than the whole token).
func tokenSig(tok string) string {
	_, sig, _ := strings.Cut(tok, ".")
	return sig
}

// redactURL drops the userinfo (user:password@) of a URL for display and
// logs; a string that does not parse is shown up to its first '@' removed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndexByte(raw, '@'); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + raw[i+1:]
			}
			return raw[i+1:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
