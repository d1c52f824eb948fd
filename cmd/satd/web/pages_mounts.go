package web

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/redact"
	"satd.dev/satd/netstream"
)

// The Stream mounts pages: a list of the [[stream.mount]] tables with add,
// edit and delete, and one page per mount. A mount's fields are built by
// reflection like the Configuration page (form.go), so the inputs are typed,
// secrets never reach the browser (an empty secret keeps the one in force)
// and a refused value is listed at the top with a link to its field. Saves
// go through the same apply transaction as every other change.

// mountsKey is the configuration key of the mount list.
const mountsKey = "stream.mount"

// errMountsChanged refuses an edit made on a page older than the list.
var errMountsChanged = errors.New("the mount list changed since this page was loaded; open it again")

// mountsData is the list page.
type mountsData struct {
	Mounts []netstream.MountConfig
}

// mountData is the page of one mount.
type mountData struct {
	Index int    // position in the list; len(list) when adding
	Was   string // mount-name when the page was made ("" when adding)
	Table formTable
	Other []config.Problem
}

// mountDeleteData asks before a mount is deleted; Password asks for the
// current password when the deletion moves a guarded file path.
type mountDeleteData struct {
	Index    int
	Name     string
	Password bool
}

func (s *Server) handleMounts(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Stream mounts", Active: "config", Content: mountsData{Mounts: s.opt.Config().Stream.Mounts}}
	if r.URL.Query().Get("saved") != "" {
		d.Result = s.lastResult()
		d.Flash = savedFlash("Mounts saved", d.Result)
	}
	s.render(w, r, http.StatusOK, d)
}

func (s *Server) handleMountPage(w http.ResponseWriter, r *http.Request) {
	cfg, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Stream mount", err.Error())
		return
	}
	i, was, err := mountAt(cfg, r.URL.Query().Get("i"), "")
	if err != nil {
		s.message(w, r, http.StatusNotFound, "Stream mount", err.Error())
		return
	}
	s.renderMount(w, r, http.StatusOK, cfg, i, was, nil, nil, nil, pageData{})
}

// mountAt finds the mount a page or a post is about: an index into the
// list, or "new" for one appended with the defaults. was, when not empty,
// is the name the mount had on the page; a different one means the list
// changed in between.
func mountAt(cfg *config.Config, index, was string) (int, string, error) {
	ms := &cfg.Stream.Mounts
	if index == "new" {
		if len(*ms) >= 256 {
			return 0, "", fmt.Errorf("%s: at most 256 mounts", mountsKey)
		}
		*ms = append(*ms, netstream.DefaultMount())
		return len(*ms) - 1, "", nil
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= len(*ms) {
		return 0, "", fmt.Errorf("%s: no mount number %q", mountsKey, index)
	}
	if was != "" && (*ms)[i].Name != was {
		return 0, "", errMountsChanged
	}
	return i, (*ms)[i].Name, nil
}

func mountPrefix(i int) string { return fmt.Sprintf("%s[%d]", mountsKey, i) }

func (s *Server) renderMount(w http.ResponseWriter, r *http.Request, status int, cfg *config.Config, i int, was string, problems, raw map[string]string, other []config.Problem, d pageData) {
	m := reflect.ValueOf(&cfg.Stream.Mounts[i]).Elem()
	t := buildTable(mountPrefix(i), m, reflect.ValueOf(netstream.DefaultMount()), problems, raw)
	t.Title = "Mount " + cfg.Stream.Mounts[i].Name
	for j := range t.Sub {
		t.Sub[j].Title = strings.TrimPrefix(t.Sub[j].Prefix, mountPrefix(i)+".")
	}
	d.Title, d.Active = "Stream mount", "config"
	if was == "" {
		d.Title, t.Title = "New stream mount", "New mount"
	}
	d.Content = mountData{Index: i, Was: was, Table: t, Other: other}
	if len(problems)+len(other) > 0 {
		d.Error = "Not saved: fix the fields marked below."
	}
	s.render(w, r, status, d)
}

func (s *Server) handleMountSave(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Stream mount", err.Error())
		return
	}
	f := r.PostForm
	cfg, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Stream mount", err.Error())
		return
	}
	i, was, err := mountAt(cfg, f.Get("i"), f.Get("was"))
	if err == nil && f.Get("prefix") != mountPrefix(i) {
		err = errMountsChanged // an add while another was added
	}
	if err != nil {
		s.message(w, r, http.StatusConflict, "Stream mount not saved", err.Error())
		return
	}
	problems, raw := map[string]string{}, map[string]string{}
	applyTable(mountPrefix(i), reflect.ValueOf(&cfg.Stream.Mounts[i]).Elem(), f, problems, raw)
	var other []config.Problem
	if len(problems) == 0 {
		problems, other = problemMap(cfg.Validate(), mountPrefix(i))
	}
	if len(problems)+len(other) > 0 {
		s.renderMount(w, r, http.StatusUnprocessableEntity, cfg, i, was, problems, raw, other, pageData{})
		return
	}
	d := pageData{}
	if status, err := s.guardChange(r, cfg, f.Get("current")); err != nil {
		d.Error = "Not saved: " + err.Error()
		s.renderMount(w, r, status, cfg, i, was, nil, nil, nil, d)
		return
	}
	if s.saveMounts(w, r, cfg, &d) {
		return
	}
	s.renderMount(w, r, http.StatusConflict, cfg, i, was, nil, nil, nil, d)
}

// saveMounts saves and applies cfg and answers with the list (POST, redirect,
// GET); when the apply fails it fills d with the outcome and the caller shows
// the page again.
func (s *Server) saveMounts(w http.ResponseWriter, r *http.Request, cfg *config.Config, d *pageData) bool {
	res, err := s.save(cfg)
	if err != nil {
		d.Error, d.Result = "Not saved: "+err.Error(), res.Result
		return false
	}
	if res.Confirm {
		s.afterRisky(w, r)
		return true
	}
	http.Redirect(w, r, "/mounts?saved=1", http.StatusSeeOther)
	return true
}

// handleMountDelete asks first, then deletes the mount and applies the list.
func (s *Server) handleMountDelete(w http.ResponseWriter, r *http.Request) {
	cfg, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Delete mount", err.Error())
		return
	}
	if r.FormValue("i") == "new" {
		s.message(w, r, http.StatusBadRequest, "Mount not deleted", "no mount named")
		return
	}
	i, was, err := mountAt(cfg, r.FormValue("i"), r.FormValue("was"))
	if err != nil {
		s.message(w, r, http.StatusConflict, "Mount not deleted", err.Error())
		return
	}
	cfg.Stream.Mounts = append(cfg.Stream.Mounts[:i], cfg.Stream.Mounts[i+1:]...)
	keys, _ := guardedChanges(s.opt.Config(), cfg)
	if r.FormValue("confirmed") != "1" {
		s.render(w, r, http.StatusOK, pageData{Title: "Delete mount", Active: "config",
			Content: mountDeleteData{Index: i, Name: was, Password: len(keys) > 0}})
		return
	}
	if err := cfg.Validate(); err != nil {
		s.message(w, r, http.StatusUnprocessableEntity, "Mount not deleted", err.Error())
		return
	}
	if status, err := s.guardChange(r, cfg, r.FormValue("current")); err != nil {
		s.message(w, r, status, "Mount not deleted", err.Error())
		return
	}
	d := pageData{Title: "Mount not deleted", Content: backLink{}}
	if !s.saveMounts(w, r, cfg, &d) {
		s.render(w, r, http.StatusConflict, d)
	}
}

func (d mountsData) write(h html) {
	h.raw("<p class=\"doc\">The LAN radio relay's mount points ([[stream.mount]]); the relay itself is set on the <a href=\"/config?section=stream\">stream</a> tab.</p>\n" +
		"<div class=\"scroll\"><table id=\"mount-list\"><thead><tr><th>Mount</th><th>Plays from</th><th>Listener admission</th><th>Max listeners</th><th></th></tr></thead><tbody>\n")
	for i := range d.Mounts {
		writeMountRow(h, i, &d.Mounts[i])
	}
	h.rawIf(len(d.Mounts) == 0, "<tr><td colspan=\"5\">No mounts.</td></tr>\n")
	h.raw("</tbody></table></div>\n<div class=\"actions\"><a class=\"button\" id=\"add-mount\" href=\"/mounts/edit?i=new\">Add mount</a></div>\n")
}

func writeMountRow(h html, i int, m *netstream.MountConfig) {
	from := m.File
	if len(m.Upstreams) > 0 {
		from = redact.Text(strings.Join(m.Upstreams, ", "))
	}
	auth := m.Auth.Type
	if auth == "" {
		auth = "none"
	}
	h.raw(`<tr><td class="label"><a`)
	h.url("href", "/mounts/edit?i="+itoa(i))
	h.raw(`>`)
	h.text(m.Name)
	h.raw(`</a></td>`)
	h.tds(from, auth, maxListeners(m.MaxListeners))
	h.raw("<td><form method=\"post\" action=\"/mounts/delete\" class=\"inline\"><input type=\"hidden\" name=\"i\"")
	h.attr("value", itoa(i))
	h.raw(`><input type="hidden" name="was"`)
	h.attr("value", m.Name)
	h.raw("><button class=\"small danger\">Delete</button></form></td></tr>\n")
}

func maxListeners(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return itoa(n)
}

func (d mountData) write(h html) {
	for _, p := range d.Other {
		h.raw(`<p class="error">`)
		h.text(p.Key + ": " + p.Msg)
		h.raw(`</p>`)
	}
	writeErrorSummary(h, &formSection{Tables: []formTable{d.Table}})
	h.raw("<form method=\"post\" action=\"/mounts/edit\" id=\"mount-form\" novalidate>\n<input type=\"hidden\" name=\"i\"")
	if d.Was == "" {
		h.attr("value", "new")
	} else {
		h.attr("value", itoa(d.Index))
	}
	h.raw(`><input type="hidden" name="was"`)
	h.attr("value", d.Was)
	h.raw(`><input type="hidden" name="prefix"`)
	h.attr("value", mountPrefix(d.Index))
	h.raw(">\n")
	writeTable(h, &d.Table)
	h.raw("\n<label for=\"current\">Current password (only to change the file path)</label>\n" +
		"<input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\">" +
		"\n<div class=\"actions\"><button id=\"save\">Save and apply</button> <a href=\"/mounts\">Back to the mounts</a></div>\n</form>\n")
}

func (d mountDeleteData) write(h html) {
	h.raw(`<p id="confirm-question">Delete the mount `)
	h.text(d.Name)
	h.raw("? Its listeners are disconnected.</p>\n<form method=\"post\" action=\"/mounts/delete\" class=\"inline\"><input type=\"hidden\" name=\"i\"")
	h.attr("value", itoa(d.Index))
	h.raw(`><input type="hidden" name="was"`)
	h.attr("value", d.Name)
	h.raw(`><input type="hidden" name="confirmed" value="1">`)
	h.rawIf(d.Password, "<label for=\"current\">Current password (a file path moves)</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\"> ")
	h.raw("<button id=\"confirm-action\" class=\"danger\">Delete mount</button> <a href=\"/mounts\">Cancel</a></form>\n")
}

// writeMountsLink replaces the mount list on the stream tab: the mounts have
// pages of their own.
func writeMountsLink(h html, f *formField) {
	h.raw(`<p`)
	h.attr("id", f.ID)
	h.raw(`><a href="/mounts">Edit the stream mounts</a></p>`)
}
