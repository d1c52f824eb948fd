package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"satd.dev/satd/cmd/satd/config"
)

// The reader pages: a list of the configured readers with their state and
// actions (enable or disable, restart, reset statistics, delete), and one
// page per reader showing only the keys of its protocol. Saves go through
// the same validated save-and-apply as every configuration section.

// readersPath is the reader list; a reader's page is under it by label.
const readersPath = "/config/readers"

// newReaderPath is the page of a reader not saved yet.
const newReaderPath = "/config/newreader"

func (s *Server) readerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+readersPath, s.page(s.handleReaders))
	mux.HandleFunc("GET "+readersPath+"/{label}", s.page(s.handleReaderPage))
	mux.HandleFunc("POST "+readersPath+"/{label}", s.action(s.handleReaderSave))
	mux.HandleFunc("POST "+readersPath+"/{label}/{act}", s.action(s.handleReaderAction))
	mux.HandleFunc("GET "+newReaderPath, s.page(s.handleReaderPage))
	mux.HandleFunc("POST "+newReaderPath, s.action(s.handleReaderSave))
}

func readerPath(label string) string { return readersPath + "/" + url.PathEscape(label) }

func readerIndex(cfg *config.Config, label string) int {
	return slices.IndexFunc(cfg.Readers, func(r config.Reader) bool { return r.Label == label })
}

// readerKeyPart maps each key of a [[reader]] table to the part of
// config.Reader that holds it: "" for the reader's own keys, else the
// embedded struct's name (Config: the slot, Options: the card link,
// ReaderConfig: the load balancer).
var readerKeyPart = func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[config.Reader]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.Anonymous {
			m[tomlName(f)] = ""
			continue
		}
		for j := range f.Type.NumField() {
			if sf := f.Type.Field(j); sf.IsExported() && sf.Tag.Get("toml") != "-" {
				m[tomlName(sf)] = f.Name
			}
		}
	}
	return m
}()

// The slot and card-link keys used by the protocols that use only some.
var (
	mouseSlotKeys = []string{"device", "detect", "reset", "mhz", "echo", "reset_ms", "debounce_ms", "poll_ms"}
	pcscCardKeys  = []string{"init_delay", "reset_backoff_min", "reset_backoff_max", "dropbadcws"}
)

// readerKeyShown reports whether a reader of protocol uses key (relative to
// the reader table): the reader page shows only those. Keys not shown keep
// their values.
func readerKeyShown(protocol, key string) bool {
	switch readerKeyPart[key] {
	case "ReaderConfig":
		return true
	case "Options":
		switch protocol {
		case "internal", "mouse", "sim":
			return true
		case "pcsc":
			return slices.Contains(pcscCardKeys, key)
		}
		return protocol == "constcw" && key == "dropbadcws"
	case "Config":
		switch protocol {
		case "internal":
			return key != "detect" && key != "reset"
		case "mouse":
			return slices.Contains(mouseSlotKeys, key)
		}
		return key == "device" && (protocol == "pcsc" || protocol == "constcw")
	}
	switch key {
	case "system":
		return protocol == "sim"
	case "local":
		return protocol == "sim" || protocol == "constcw"
	case "pin":
		return protocol != "constcw"
	}
	return true
}

// protocolDocs are the descriptions of keys whose meaning depends on the
// protocol.
var protocolDocs = map[string]string{
	"constcw device": "path of the constant.cw file (OSCam: device); empty = <global.state_dir>/<label>.cw",
	"pcsc device":    "the reader's name in pcscd's list, or its index there, e.g. 0",
}

// readerData is one reader's page.
type readerData struct {
	Label    string // "" for a reader not saved yet
	Index    int
	Protocol formField // the protocol select, in the switching form
	Groups   []formTable
	Status   *ReaderStatus
	Other    []config.Problem
}

// newReaderData describes reader i of cfg for its page, with the fields of
// its protocol only, in three fieldsets.
func newReaderData(cfg *config.Config, i int, label string, problems, raw map[string]string) readerData {
	prefix := fmt.Sprintf("reader[%d]", i)
	t := buildTable(prefix, reflect.ValueOf(&cfg.Readers[i]).Elem(), defaultElement("reader", reflect.TypeFor[config.Reader]()), problems, raw)
	proto := cfg.Readers[i].Protocol
	d := readerData{Label: label, Index: i}
	groups := []formTable{{Title: "Reader"}, {Title: "Card and slot"}, {Title: "Load balancer"}}
	for _, f := range t.Fields {
		key := f.Name
		switch {
		case key == "protocol":
			d.Protocol = f
			continue
		case !readerKeyShown(proto, key):
			continue
		}
		if doc, ok := protocolDocs[proto+" "+key]; ok {
			f.Doc = doc
		}
		g := 0
		switch readerKeyPart[key] {
		case "Config", "Options":
			g = 1
		case "ReaderConfig":
			g = 2
		}
		groups[g].Fields = append(groups[g].Fields, f)
	}
	for _, sub := range t.Sub {
		if name := sub.Prefix[len(prefix)+1:]; readerKeyShown(proto, name) {
			sub.Title = name
			groups[1].Sub = append(groups[1].Sub, sub)
		}
	}
	for _, g := range groups {
		if len(g.Fields)+len(g.Sub) > 0 {
			d.Groups = append(d.Groups, g)
		}
	}
	return d
}

func (d readerData) write(h html) {
	writeTabs(h, sectionNames(), "reader")
	h.raw("\n<p><a href=\"" + readersPath + "\" id=\"all-readers\">← All readers</a></p>\n")
	if st := d.Status; st != nil {
		h.raw(`<p class="facts" id="reader-state"><span`)
		h.attr("class", "state "+st.State)
		h.raw(`>`)
		h.text(st.State)
		h.raw(`</span> ECM ok/nok/tout `)
		writeECMCounts(h, st)
		h.raw(` · avg `)
		h.text(msMeasured(st.AvgTime, st.ECMOK > 0))
		h.raw("</p>\n")
	}
	for _, p := range d.Other {
		h.raw(`<p class="error">`)
		h.text(p.Key + ": " + p.Msg)
		h.raw(`</p>`)
	}
	all := formSection{Tables: append([]formTable{{Fields: []formField{d.Protocol}}}, d.Groups...)}
	writeErrorSummary(h, &all)
	action := newReaderPath
	if d.Label != "" {
		action = readerPath(d.Label)
	}
	// The protocol select is part of the form: "Change" posts every field
	// back as a preview (nothing saved), so the page shows the new
	// protocol's fields with the edits kept; satd.js clicks it when the
	// select changes. The first submit button, the one Enter in a field
	// presses, is an off-screen Save, so Enter still saves.
	h.raw("<form method=\"post\" id=\"reader-form\" novalidate")
	h.url("action", action)
	h.raw(">\n<button class=\"offscreen\" tabindex=\"-1\" aria-hidden=\"true\">Save and apply</button>" +
		"<input type=\"hidden\" name=\"section\" value=\"reader\"><input type=\"hidden\" name=\"index\"")
	h.attr("value", itoa(d.Index))
	h.raw(`><input type="hidden" name="shown-protocol"`)
	h.attr("value", d.Protocol.Value)
	h.raw(">\n<div id=\"protocol-switch\">")
	writeField(h, &d.Protocol)
	h.raw("<button class=\"small\" id=\"change-protocol\" name=\"switch\" value=\"1\">Change protocol, keep the edits</button></div>\n")
	for i := range d.Groups {
		writeTable(h, &d.Groups[i])
	}
	h.raw("\n<label for=\"current\">Current password (only to change file paths)</label>\n" +
		"<input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\">" +
		"\n<div class=\"actions\"><button id=\"save\">Save and apply</button></div>\n</form>\n")
	if d.Label != "" {
		h.raw("<form method=\"post\" class=\"inline\"")
		h.url("action", readerPath(d.Label)+"/delete")
		h.raw("><button class=\"danger\" id=\"delete-reader\">Delete this reader</button></form>\n")
	}
}

func writeECMCounts(h html, st *ReaderStatus) {
	h.uint(st.ECMOK)
	h.raw(` / `)
	h.uint(st.ECMNotFound)
	h.raw(` / `)
	h.uint(st.ECMTimeout)
}

// readersData is the reader list.
type readersData struct {
	Readers    []config.Reader
	Status     map[string]*ReaderStatus
	CanRestart bool
}

func (d readersData) write(h html) {
	writeTabs(h, sectionNames(), "reader")
	h.raw("\n<div class=\"actions\"><a class=\"button\" href=\"" + newReaderPath + "\" id=\"add-reader\">Add reader</a>" +
		"<a class=\"button\" href=\"#import\" id=\"to-import\">Import from OSCam</a></div>\n")
	h.raw("<div class=\"scroll\"><table id=\"reader-list\"><thead><tr><th>Reader</th><th>Protocol</th><th>Enabled</th><th>Card state</th><th>ECM ok/nok/tout</th><th>Avg</th><th>Actions</th></tr></thead><tbody>\n")
	for i := range d.Readers {
		d.writeRow(h, &d.Readers[i])
	}
	h.rawIf(len(d.Readers) == 0, "<tr><td colspan=\"7\">No readers yet: add one, or import them from OSCam.</td></tr>\n")
	h.raw("</tbody></table></div>\n<div id=\"import\">")
	writeImportForm(h)
	h.raw("</div>\n")
}

func (d readersData) writeRow(h html, rd *config.Reader) {
	h.raw(`<tr`)
	h.attr("id", "reader-"+rd.Label)
	h.raw(`><td class="label"><a`)
	h.url("href", readerPath(rd.Label))
	h.raw(`>`)
	h.text(rd.Label)
	h.raw(`</a></td>`)
	h.td(rd.Protocol)
	if rd.Enable {
		h.td("yes")
	} else {
		h.td("no")
	}
	st := d.Status[rd.Label]
	if st == nil {
		st = &ReaderStatus{State: "not running"}
	}
	h.raw(`<td><span`)
	h.attr("class", "state "+st.State)
	h.raw(`>`)
	h.text(st.State)
	h.raw(`</span></td><td>`)
	writeECMCounts(h, st)
	h.raw(`</td>`)
	h.td(msMeasured(st.AvgTime, st.ECMOK > 0))
	h.raw("<td class=\"row-actions\">")
	act := func(what, button string, danger bool) {
		h.raw(`<form method="post" class="inline"`)
		h.url("action", readerPath(rd.Label)+"/"+what)
		h.raw(`><button class="small`)
		h.rawIf(danger, ` danger`)
		h.raw(`"`)
		h.attr("id", what+"-"+rd.Label)
		h.raw(`>`)
		h.text(button)
		h.raw(`</button></form>`)
	}
	if rd.Enable {
		act("disable", "Disable", true)
	} else {
		act("enable", "Enable", false)
	}
	if d.CanRestart && rd.Enable {
		act("restart", "Restart", true)
	}
	act("reset", "Reset stats", true)
	h.raw("</td></tr>\n")
}

// readerStatuses indexes the readers' state by label.
func (s *Server) readerStatuses() map[string]*ReaderStatus {
	m := map[string]*ReaderStatus{}
	st := s.opt.Status.Status()
	for i := range st.Readers {
		m[st.Readers[i].Label] = &st.Readers[i]
	}
	return m
}

// readerFlashes are the lines after a reader action, by the action's name
// in the redirect.
var readerFlashes = map[string]string{
	"enabled": "enabled", "disabled": "disabled", "deleted": "deleted", "saved": "saved",
	"restarted": "restarted", "reset": "statistics reset",
}

func (s *Server) handleReaders(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Readers", Active: "config",
		Content: readersData{Readers: s.opt.Config().Readers, Status: s.readerStatuses(), CanRestart: s.opt.Readers != nil}}
	q := r.URL.Query()
	if what, ok := readerFlashes[q.Get("done")]; ok {
		d.Flash = "Reader " + q.Get("reader") + " " + what + "."
		if q.Get("applied") != "" {
			d.Result = s.lastResult()
			d.Flash = savedFlash("Reader "+q.Get("reader")+" "+what, d.Result)
		}
	}
	s.render(w, r, http.StatusOK, d)
}

func (s *Server) handleReaderPage(w http.ResponseWriter, r *http.Request) {
	cfg, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Reader", err.Error())
		return
	}
	label := r.PathValue("label")
	i := readerIndex(cfg, label)
	switch {
	case label == "":
		rd := config.DefaultReader()
		rd.Protocol = "internal"
		cfg.Readers = append(cfg.Readers, rd)
		i = len(cfg.Readers) - 1
	case i < 0:
		s.message(w, r, http.StatusNotFound, "Reader", fmt.Sprintf("no reader %q", label))
		return
	}
	if p := r.URL.Query().Get("protocol"); p != "" {
		cfg.Readers[i].Protocol = p
	}
	d := pageData{Title: "Reader " + label, Active: "config"}
	if label == "" {
		d.Title = "New reader"
	}
	if r.URL.Query().Get("saved") != "" {
		d.Result = s.lastResult()
		d.Flash = savedFlash("Reader saved", d.Result)
	}
	s.renderReader(w, r, http.StatusOK, cfg, i, label, nil, nil, nil, d)
}

func (s *Server) renderReader(w http.ResponseWriter, r *http.Request, status int, cfg *config.Config, i int, label string, problems, raw map[string]string, other []config.Problem, d pageData) {
	rd := newReaderData(cfg, i, label, problems, raw)
	rd.Other = other
	rd.Status = s.readerStatuses()[label]
	if len(problems)+len(other) > 0 {
		d.Error = "Not saved: fix the fields marked below."
	}
	d.Content = rd
	s.render(w, r, status, d)
}

// handleReaderSave saves one reader's page. The form names the reader by
// its index, checked against the label in the URL, so a list changed in
// another tab is never edited in the wrong place.
func (s *Server) handleReaderSave(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Reader", err.Error())
		return
	}
	cur := s.opt.Config()
	label := r.PathValue("label")
	i, count := readerIndex(cur, label), len(cur.Readers)
	if label == "" {
		i, count = count, count+1
	}
	if i < 0 || r.PostForm.Get("index") != itoa(i) {
		s.message(w, r, http.StatusConflict, "Reader not saved", "the reader list changed since this page was loaded; open the reader again")
		return
	}
	form := url.Values{}
	prefix := fmt.Sprintf("reader[%d].", i)
	for k, v := range r.PostForm {
		if strings.HasPrefix(k, prefix) {
			form[k] = v
		}
	}
	form.Set("reader.count", itoa(count))
	cfg, problems, raw, other, err := s.editSection("reader", form)
	if err != nil {
		s.message(w, r, http.StatusBadRequest, "Reader", err.Error())
		return
	}
	d := pageData{Title: "Reader " + label, Active: "config"}
	if label == "" {
		d.Title = "New reader"
	}
	if isProtocolSwitch(r.PostForm, prefix) {
		// A preview: the new protocol's fields, with what was typed in
		// them; nothing is saved and no field is marked yet.
		d.Flash = "Showing the fields of protocol " + cfg.Readers[i].Protocol + ", with your edits. Not saved yet."
		// A secret is never sent back to the browser: the PIN field shows
		// the one in force again, and a typed one must be typed anew.
		cfg.Readers[i].PIN = ""
		if i < len(cur.Readers) {
			cfg.Readers[i].PIN = cur.Readers[i].PIN
		}
		if readerKeyShown(cfg.Readers[i].Protocol, "pin") && form.Get(prefix+"pin") != "" {
			d.Flash += " Type the PIN again."
		}
		s.renderReader(w, r, http.StatusOK, cfg, i, label, nil, raw, nil, d)
		return
	}
	if len(problems)+len(other) > 0 {
		s.renderReader(w, r, http.StatusUnprocessableEntity, cfg, i, label, problems, raw, other, d)
		return
	}
	s.saveReaders(w, r, cfg, readerPath(cfg.Readers[i].Label)+"?saved=1", func(msg string, res ApplyResult, status int) {
		d.Error, d.Result = msg, res
		s.renderReader(w, r, status, cfg, i, label, nil, nil, nil, d)
	})
}

// isProtocolSwitch reports whether a reader page's post asks to see
// another protocol's fields rather than to save: its Change button, or a
// protocol chosen but never shown (Save pressed without JavaScript right
// after changing the select), which must not save the old protocol's
// fields under the new one unseen.
func isProtocolSwitch(form url.Values, prefix string) bool {
	shown := form.Get("shown-protocol")
	return form.Get("switch") != "" || shown != "" && shown != form.Get(prefix+"protocol")
}

// saveReaders saves and applies cfg and sends the browser to next; on a
// refusal it calls fail with the message, the outcomes and the status.
func (s *Server) saveReaders(w http.ResponseWriter, r *http.Request, cfg *config.Config, next string, fail func(msg string, res ApplyResult, status int)) {
	if status, err := s.guardChange(r, cfg, r.PostForm.Get("current")); err != nil {
		fail("Not saved: "+err.Error(), nil, status)
		return
	}
	res, err := s.save(cfg)
	if err != nil {
		fail("Not saved: "+err.Error(), res.Result, http.StatusConflict)
		return
	}
	if res.Confirm {
		s.afterRisky(w, r)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// readerActions are the reader list's actions: the confirmation question
// of the destructive ones ("" for none) and the button that confirms.
var readerActions = map[string]struct{ question, button string }{
	"enable":  {},
	"disable": {"The balancer stops asking reader %s at once; it stays in the configuration, disabled.", "Disable the reader"},
	"restart": {"Restart reader %s? Its card is reset and answers no ECM for a few seconds.", "Restart the reader"},
	"reset":   {"Forget the statistics of reader %s? The balancer learns them again from the next ECMs.", "Reset statistics"},
	"delete":  {"Delete reader %s from the configuration?", "Delete the reader"},
}

func (s *Server) handleReaderAction(w http.ResponseWriter, r *http.Request) {
	label, act := r.PathValue("label"), r.PathValue("act")
	a, ok := readerActions[act]
	cur := s.opt.Config()
	i := readerIndex(cur, label)
	if !ok || i < 0 {
		s.message(w, r, http.StatusNotFound, "Reader", fmt.Sprintf("no reader %q or no action %q", label, act))
		return
	}
	if a.question != "" && !s.confirmed(w, r, "Reader "+label, fmt.Sprintf(a.question, label), a.button) {
		return
	}
	done := readersPath + "?reader=" + url.QueryEscape(label) + "&done="
	fail := func(title string, err error) { s.message(w, r, http.StatusConflict, title, err.Error()) }
	switch act {
	case "restart":
		if s.opt.Readers == nil {
			s.message(w, r, http.StatusNotImplemented, "Reader", "restarting a reader is not available")
			return
		}
		if err := s.opt.Readers.Restart(label); err != nil {
			fail("Restart failed", err)
			return
		}
		http.Redirect(w, r, done+"restarted", http.StatusSeeOther)
		return
	case "reset":
		if err := s.opt.Balancer.Reset(label); err != nil && !errors.Is(err, ErrNotAvailable) {
			fail("Reset failed", err)
			return
		}
		if s.opt.Readers != nil {
			if err := s.opt.Readers.ResetCounters(label); err != nil {
				fail("Reset failed", err)
				return
			}
		}
		http.Redirect(w, r, done+"reset", http.StatusSeeOther)
		return
	}
	cfg, err := cloneConfig(cur)
	if err != nil {
		fail("Reader", err)
		return
	}
	switch act {
	case "delete":
		cfg.Readers = slices.Delete(cfg.Readers, i, i+1)
		act = "deleted"
	default:
		cfg.Readers[i].Enable = act == "enable"
		act += "d"
	}
	if err := cfg.Validate(); err != nil {
		s.message(w, r, http.StatusUnprocessableEntity, "Reader not changed", err.Error())
		return
	}
	s.saveReaders(w, r, cfg, done+act+"&applied=1", func(msg string, res ApplyResult, status int) {
		s.render(w, r, status, pageData{Title: "Reader " + label, Active: "config", Error: msg, Result: res, Content: backLink{}})
	})
}
