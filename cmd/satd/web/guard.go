package web

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// csp allows nothing inline: scripts and styles come from the embedded files.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// guard holds the request filters that depend on [web]: the Host allow-list
// (against DNS rebinding) and the client address allow-list (httpallowed).
type guard struct {
	policy atomic.Pointer[guardPolicy]
}

type guardPolicy struct {
	hosts   map[string]bool
	clients []netip.Prefix // empty: everyone
	public  bool           // /metrics without login
	ro      bool
}

func (g *guard) update(w config.Web) {
	p := &guardPolicy{hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}, public: w.MetricsPublic, ro: w.ReadOnly}
	if h, _, err := net.SplitHostPort(w.Listen); err == nil && h != "" {
		p.hosts[strings.ToLower(h)] = true
	}
	for _, h := range w.AllowedHosts {
		p.hosts[strings.ToLower(stripPort(h))] = true
	}
	// The box's own addresses: a browser that types the IP must get in.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				p.hosts[ipn.IP.String()] = true
			}
		}
	}
	for _, a := range w.Allow {
		if pfx, err := netip.ParsePrefix(a); err == nil {
			p.clients = append(p.clients, pfx.Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			p.clients = append(p.clients, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	g.policy.Store(p)
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// hostAllowed reports whether the Host header names this box.
func (p *guardPolicy) hostAllowed(host string) bool {
	return p.hosts[strings.ToLower(stripPort(host))]
}

// clientAllowed reports whether the remote address may use the form.
// Loopback always may, so a wrong allow-list cannot lock out the box itself.
func (p *guardPolicy) clientAllowed(remote string) bool {
	ip, ok := remoteIP(remote)
	if !ok {
		return false
	}
	if len(p.clients) == 0 || ip.IsLoopback() {
		return true
	}
	for _, pfx := range p.clients {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

func remoteIP(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func isLoopback(r *http.Request) bool {
	ip, ok := remoteIP(r.RemoteAddr)
	return ok && ip.IsLoopback()
}

// wrap puts the guards around the site: headers first, then the address and
// Host checks, then Go's cross-origin protection for every unsafe method.
//
// A browser on the LAN reaches the box over plain http at a private address,
// which is not a "potentially trustworthy" origin, so it sends no
// Sec-Fetch-Site. The protection then compares Origin with Host, and Host has
// passed the allow-list just before: the form's own origin is admitted from
// any address the box is reached at, while another origin or "Origin: null"
// is refused. That is why the referrer policy is same-origin: under
// no-referrer Chromium sends "Origin: null" on every form post, and nobody on
// the LAN could log in.
func (s *Server) wrap(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.opt.Metrics.auth("cross_origin")
		http.Error(w, "403 cross-origin request refused", http.StatusForbidden)
	}))
	inner := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		p := s.guard.policy.Load()
		if !p.clientAllowed(r.RemoteAddr) {
			s.opt.Metrics.auth("client_refused")
			http.Error(w, "403 your address is not in web.allow", http.StatusForbidden)
			return
		}
		if !p.hostAllowed(r.Host) {
			s.opt.Metrics.auth("host_refused")
			http.Error(w, "421 unknown Host "+sanitizeHeader(r.Host)+"; add it to web.allowed_hosts", http.StatusMisdirectedRequest)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// sanitizeHeader keeps an echoed header printable (the error is plain text).
func sanitizeHeader(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

const sessionCookie = "satd_session"

// loggedIn reports whether r carries a live session.
func (s *Server) loggedIn(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && s.sess.valid(c.Value)
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// page requires a session for a browser page: without one it sends the
// browser to the login (or first-time setup) page.
func (s *Server) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.loggedIn(r) {
			to := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
			if !s.pw.isSet() {
				to = "/setup"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

// maxFormBody bounds the body of a state change after login (a section of
// the configuration form); uploads have their own bound.
const maxFormBody = 1 << 20

// action requires a session for a state change, and refuses it in read-only
// mode. It answers 401/403 rather than redirecting: a refused POST must not
// look like success to a script. The body is bounded before the handler
// parses it.
func (s *Server) action(h http.HandlerFunc) http.HandlerFunc {
	return s.authorised(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		h(w, r)
	})
}

// upload is action for a file upload (restore, import, firmware): the
// handler bounds the body itself, and the connection's deadlines are
// pushed out to Limits.Upload once the session is known.
func (s *Server) upload(h http.HandlerFunc) http.HandlerFunc {
	return s.authorised(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		until := time.Now().Add(s.limits.Upload)
		rc.SetReadDeadline(until)
		rc.SetWriteDeadline(until)
		h(w, r)
	})
}

func (s *Server) authorised(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.loggedIn(r) {
			s.opt.Metrics.auth("no_session")
			if strings.Contains(r.Header.Get("Accept"), "text/html") && s.pw.isSet() {
				// A browser whose session expired: the login page, which
				// returns to the page the form was on (satd.js puts the
				// edits back there). Still 401: nothing was done.
				s.render(w, r, http.StatusUnauthorized, pageData{Title: "Log in", Content: loginForm{Next: returnPath(r)},
					Error: "Your session has expired, so nothing was saved. Log in to return to the form with your edits."})
				return
			}
			http.Error(w, "401 log in first", http.StatusUnauthorized)
			return
		}
		if s.guard.policy.Load().ro {
			http.Error(w, "403 the web form is read-only (web.readonly)", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// api requires a session for a read-only API call.
func (s *Server) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.loggedIn(r) {
			s.opt.Metrics.auth("no_session")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in first"})
			return
		}
		h(w, r)
	}
}

// returnPath is the page a form was posted from (the Referer, which the
// same-origin referrer policy sends), or "/".
func returnPath(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Host != r.Host {
		return "/"
	}
	return localPath(ref.RequestURI())
}

// localPath keeps p when it is a path on this site, else "/": a login never
// sends the browser elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") ||
		strings.HasPrefix(p, "/login") || strings.HasPrefix(p, "/logout") || strings.HasPrefix(p, "/setup") {
		return "/"
	}
	return p
}
