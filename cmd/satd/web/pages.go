package web

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// assets are the stylesheet and the script, served under /static/.
//
//go:embed assets
var assets embed.FS

// content is the main part of a page; each page's data writes itself.
type content interface {
	write(h html)
}

// pageData is what the layout of every page receives.
type pageData struct {
	Title    string
	Active   string // nav entry
	Flash    string
	Error    string
	LoggedIn bool
	ReadOnly bool
	Pending  bool // a change awaits confirmation
	// Restart lists the components waiting for a restart (the banner).
	Restart ApplyResult
	// Result is every component's outcome of the save just made.
	Result  ApplyResult
	Version string
	Content content
}

// render writes a page into a buffer first and sends it with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	d.LoggedIn = s.loggedIn(r)
	d.ReadOnly = s.guard.policy.Load().ro
	_, d.Pending = s.confirm.pending()
	if d.LoggedIn {
		d.Restart = s.pendingRestart()
	}
	d.Version = s.opt.Version
	var b bytes.Buffer
	b.Grow(16 << 10)
	writeLayout(html{&b}, &d)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// message renders a short page with a title and a message.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, r, status, pageData{Title: title, Error: msg, Content: backLink{}})
}

// backLink is the content of a message page.
type backLink struct{}

func (backLink) write(h html) { h.raw(`<p><a href="/">Back to the status page</a></p>`) }

// linkTo is the content of a message page that sends the user on.
type linkTo struct{ Href, Text string }

func (l linkTo) write(h html) {
	h.raw(`<p><a id="go-on"`)
	h.url("href", l.Href)
	h.raw(`>`)
	h.text(l.Text)
	h.raw(`</a></p>`)
}

// navEntries are the pages of the navigation bar.
var navEntries = []struct {
	active string
	href   string
	label  string
}{
	{"status", "/", "Status"},
	{"balancer", "/balancer", "Load balancer"},
	{"config", "/config", "Configuration"},
	{"log", "/log", "Log"},
	{"system", "/system", "System"},
}

func writeLayout(h html, d *pageData) {
	h.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
	h.text(d.Title)
	h.raw(" · satd</title>\n<link rel=\"stylesheet\" href=\"/static/satd.css\">\n" +
		"<script src=\"/static/satd.js\" defer></script>\n</head><body>\n<header><span class=\"brand\">satd</span>\n")
	if d.LoggedIn {
		writeNav(h, d.Active)
	}
	h.raw("</header>\n<main>\n")
	h.el("h1", d.Title)
	h.raw("\n")
	writeNotices(h, d)
	d.Content.write(h)
	h.raw("\n</main>\n<footer>satd ")
	h.text(d.Version)
	h.raw("</footer>\n</body></html>")
}

func writeNav(h html, active string) {
	h.raw("<nav>\n")
	for _, e := range navEntries {
		h.raw(`<a`)
		h.url("href", e.href)
		h.rawIf(e.active == active, ` class="on" aria-current="page"`)
		h.raw(`>`)
		h.text(e.label)
		h.raw("</a>\n")
	}
	h.raw("</nav>\n<form method=\"post\" action=\"/logout\" class=\"logout\"><button>Log out</button></form>")
}

// writeNotices writes the read-only, pending, flash and error lines.
func writeNotices(h html, d *pageData) {
	h.rawIf(d.ReadOnly, "<p class=\"note\">The web form is read-only (web.readonly): no changes are possible.</p>\n")
	h.rawIf(d.Pending, "<p class=\"note\"><a href=\"/confirm\">A change is waiting for confirmation.</a></p>\n")
	writeRestartBanner(h, d.Restart)
	if d.Flash != "" {
		h.raw(`<p class="flash" role="status">`)
		h.text(d.Flash)
		h.raw("</p>\n")
	}
	writeResult(h, d.Result)
	if d.Error != "" {
		h.raw(`<p class="error" role="alert" id="page-error">`)
		h.text(d.Error)
		h.raw("</p>\n")
	}
}

// writeRestartBanner names what waits for a restart, with the button that
// does it; every page shows it until then.
func writeRestartBanner(h html, waiting ApplyResult) {
	if len(waiting) == 0 {
		return
	}
	h.raw("<div class=\"note restart\" id=\"restart-banner\" role=\"status\"><b>Restart needed</b> to put the saved configuration fully in force:<ul>\n")
	for _, c := range waiting {
		h.raw("<li>")
		h.text(c.Component + ": " + c.Reason)
		h.raw("</li>\n")
	}
	h.raw("</ul><form method=\"post\" action=\"/system/restart\"><button id=\"restart-now\">Restart satd now</button></form></div>\n")
}

// writeResult lists every component's outcome of a save.
func writeResult(h html, res ApplyResult) {
	if len(res) == 0 {
		return
	}
	h.raw("<ul class=\"results\" id=\"apply-result\">\n")
	for _, c := range res {
		switch c.Outcome {
		case Failed:
			h.raw(`<li class="failed">`)
		case RestartNeeded:
			h.raw(`<li class="restart">`)
		default:
			h.raw(`<li class="applied">`)
		}
		h.text(c.Component + ": " + string(c.Outcome))
		if c.Reason != "" {
			h.text(" (" + c.Reason + ")")
		}
		h.raw("</li>\n")
	}
	h.raw("</ul>\n")
}

// savedFlash is the line above the outcomes of a save: "applied" only when
// every component applied it.
func savedFlash(what string, res ApplyResult) string {
	switch {
	case len(res.only(Failed)) > 0:
		return what + " but not applied."
	case len(res.only(RestartNeeded)) > 0:
		return what + "; part of it waits for a restart (below)."
	}
	return what + " and applied."
}

// ms formats a duration in whole milliseconds, "–" for none.
func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// msMeasured formats a time that was measured when measured holds: a card
// that answers within a millisecond shows "0 ms", not "–".
func msMeasured(d time.Duration, measured bool) string {
	if !measured {
		return "–"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// date formats a day, "–" for none.
func date(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Format("2006-01-02")
}

// clock formats a time of day with its date, "–" for none.
func clock(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Format("2006-01-02 15:04:05")
}

func hex4(v uint16) string { return fmt.Sprintf("%04X", v) }
func hex6(v uint32) string { return fmt.Sprintf("%06X", v) }

// mib formats a byte count in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// textareaRows sizes a textarea to its content, at most 12 rows.
func textareaRows(s string) int { return min(12, strings.Count(s, "\n")+2) }

func staticHandler() http.Handler {
	sub, _ := fs.Sub(assets, "assets")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
