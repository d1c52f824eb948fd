package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// pageNames are the templates with a page of their own; each is parsed
// together with layout.html.
var pageNames = []string{"status", "balancer", "config", "log", "system", "login", "setup", "confirm", "import", "message"}

// pages holds the parsed templates.
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"ms": func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return fmt.Sprintf("%d ms", d.Milliseconds())
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.Format("2006-01-02")
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.Format("2006-01-02 15:04:05")
	},
	"hex4": func(v uint16) string { return fmt.Sprintf("%04X", v) },
	"hex6": func(v uint32) string { return fmt.Sprintf("%06X", v) },
	"join": strings.Join,
	"mib":  func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) },
	"rows": func(s string) int { return min(12, strings.Count(s, "\n")+2) },
}

func loadPages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// pageData is what every page template receives.
type pageData struct {
	Title    string
	Active   string // nav entry
	Flash    string
	Error    string
	LoggedIn bool
	ReadOnly bool
	Pending  bool // a change awaits confirmation
	Version  string
	Data     any
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 and not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	d.LoggedIn = s.loggedIn(r)
	d.ReadOnly = s.guard.policy.Load().ro
	_, d.Pending = s.confirm.pending()
	d.Version = s.opt.Version
	var b bytes.Buffer
	if err := s.pages.byName[name].ExecuteTemplate(&b, "layout", d); err != nil {
		s.opt.Log.Error("web: render", "page", name, "err", err)
		http.Error(w, "500 page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// message renders a short page with a title and a message.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, r, status, "message", pageData{Title: title, Error: msg})
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(assets, "assets")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".html") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}
