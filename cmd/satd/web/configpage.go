package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/oscamimport"
)

// configData is the Configuration page.
type configData struct {
	Sections []string
	Section  formSection
	Count    int // elements of an array section, with the one being added
	Other    []config.Problem
}

// problemMap indexes the problems by key; the rest (keys of other
// sections, or none) are returned apart.
func problemMap(err error, section string) (map[string]string, []config.Problem) {
	m := map[string]string{}
	var ps config.Problems
	if !errors.As(err, &ps) {
		if err != nil {
			return m, []config.Problem{{Msg: err.Error()}}
		}
		return m, nil
	}
	var other []config.Problem
	for _, p := range ps {
		if inSection(p.Key, section) {
			m[p.Key] = p.Msg
		} else {
			other = append(other, p)
		}
	}
	return m, other
}

func inSection(key, section string) bool {
	return len(key) > len(section) && key[:len(section)] == section && (key[len(section)] == '.' || key[len(section)] == '[')
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("section")
	if name == "" {
		name = sectionNames()[0]
	}
	if name == "reader" {
		// The form of every reader at once is retired: one page per reader.
		to := readersPath
		if r.URL.Query().Get("add") != "" {
			to = newReaderPath
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	cfg, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Configuration", err.Error())
		return
	}
	if r.URL.Query().Get("add") != "" {
		if err := appendDefault(cfg, name); err != nil {
			s.message(w, r, http.StatusBadRequest, "Configuration", err.Error())
			return
		}
	}
	d := pageData{Title: "Configuration", Active: "config"}
	if r.URL.Query().Get("saved") != "" {
		d.Result = s.lastResult()
		d.Flash = savedFlash("Configuration saved", d.Result)
	}
	s.renderConfig(w, r, http.StatusOK, cfg, name, nil, nil, nil, d)
}

// appendDefault adds a default element to an array section (the "add"
// button); it is saved only when the form is submitted and valid.
func appendDefault(cfg *config.Config, name string) error {
	f, v, ok := sectionField(cfg, name)
	if !ok || v.Kind() != reflect.Slice {
		return fmt.Errorf("%q is not a list section", name)
	}
	v.Set(reflect.Append(v, defaultElement(name, f.Type.Elem())))
	return nil
}

func (s *Server) renderConfig(w http.ResponseWriter, r *http.Request, status int, cfg *config.Config, name string, problems, raw map[string]string, other []config.Problem, d pageData) {
	sec, ok := buildSection(cfg, name, problems, raw)
	if !ok {
		s.message(w, r, http.StatusNotFound, "Configuration", fmt.Sprintf("no configuration section %q", name))
		return
	}
	d.Content = configData{Sections: sectionNames(), Section: sec, Count: len(sec.Tables), Other: other}
	if len(problems)+len(other) > 0 {
		d.Error = "Not saved: fix the fields marked below."
	}
	s.render(w, r, status, d)
}

// editSection applies form to a copy of the configuration in force and
// validates it; ok is false with the problems when it is not valid.
func (s *Server) editSection(name string, form url.Values) (cfg *config.Config, problems, raw map[string]string, other []config.Problem, err error) {
	cfg, err = cloneConfig(s.opt.Config())
	if err != nil {
		return nil, nil, nil, nil, err
	}
	problems, raw, err = applyForm(cfg, name, form)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// Values that did not parse keep their old ones; the rest is validated
	// all the same, so every bad field shows at once.
	valid, other := problemMap(cfg.Validate(), name)
	for k, m := range valid {
		if _, ok := problems[k]; !ok {
			problems[k] = m
		}
	}
	return cfg, problems, raw, other, nil
}

func (s *Server) handleConfigSave(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Configuration", err.Error())
		return
	}
	name := r.PostForm.Get("section")
	if name == "reader" {
		// A form of the retired all-readers page (an old tab) would save
		// over readers edited since, without the reader pages' label check.
		s.render(w, r, http.StatusConflict, pageData{Title: "Readers not saved", Active: "config",
			Error:   "Not saved: readers are edited one at a time on their own pages now; nothing was changed.",
			Content: linkTo{readersPath, "Open the reader list"}})
		return
	}
	cfg, problems, raw, other, err := s.editSection(name, r.PostForm)
	if err != nil {
		s.message(w, r, http.StatusBadRequest, "Configuration", err.Error())
		return
	}
	d := pageData{Title: "Configuration", Active: "config"}
	if len(problems)+len(other) > 0 {
		s.renderConfig(w, r, http.StatusUnprocessableEntity, cfg, name, problems, raw, other, d)
		return
	}
	if !s.deletionConfirmed(w, r, name) {
		return
	}
	if status, err := s.guardChange(r, cfg, r.PostForm.Get("current")); err != nil {
		d.Error = "Not saved: " + err.Error()
		s.renderConfig(w, r, status, cfg, name, nil, nil, nil, d)
		return
	}
	res, err := s.save(cfg)
	if err != nil {
		d.Error = "Not saved: " + err.Error()
		d.Result = res.Result
		s.renderConfig(w, r, http.StatusConflict, cfg, name, nil, nil, nil, d)
		return
	}
	if res.Confirm {
		s.afterRisky(w, r)
		return
	}
	http.Redirect(w, r, "/config?section="+url.QueryEscape(name)+"&saved=1", http.StatusSeeOther)
}

// confirmData is the countdown page of a change awaiting confirmation.
type confirmData struct {
	Pending   bool
	Deadline  time.Time
	Seconds   int
	Outcome   string
	NewURL    string // where the form now listens, when that moved
	RevertURL string // where it listens again after a revert
}

func (s *Server) handleConfirmPage(w http.ResponseWriter, r *http.Request) {
	deadline, pending := s.confirm.pending()
	d := confirmData{Pending: pending, Deadline: deadline, Outcome: s.confirm.outcome()}
	if pending {
		d.Seconds = int(time.Until(deadline).Seconds())
		if u := urlFor(r, s.opt.Config().Web.Listen, "/confirm"); u != "http://"+r.Host+"/confirm" {
			d.NewURL = u
		}
		if old := s.confirm.oldListen(); old != "" {
			d.RevertURL = urlFor(r, old, "/confirm")
		}
	}
	s.render(w, r, http.StatusOK, pageData{Title: "Confirm the change", Active: "config", Content: d})
}

// afterRisky sends the browser to the countdown page. When the form moved,
// the page is rendered here (CSP form-action forbids redirecting a form post
// to another origin) and its script follows the link to the new address.
func (s *Server) afterRisky(w http.ResponseWriter, r *http.Request) {
	if urlFor(r, s.opt.Config().Web.Listen, "/confirm") != "http://"+r.Host+"/confirm" {
		s.handleConfirmPage(w, r)
		return
	}
	http.Redirect(w, r, "/confirm", http.StatusSeeOther)
}

// urlFor is the URL of path on the form listening at listen, as the browser
// that sent r reaches it (an unspecified listen host means: the host the
// browser used).
func urlFor(r *http.Request, listen, path string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return path
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = stripPort(r.Host)
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	if !s.confirm.confirm() {
		s.message(w, r, http.StatusConflict, "Nothing to confirm", "no change is waiting for confirmation (it may have been reverted already)")
		return
	}
	http.Redirect(w, r, "/config?section=web&saved=1", http.StatusSeeOther)
}

// handleBackup downloads the configuration in force as TOML. The password
// hash lives in its own file and is not part of it.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := s.opt.Config().Encode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	name := "satd-" + s.opt.Now().Format("20060102-150405") + ".toml"
	w.Header().Set("Content-Type", "application/toml")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b.Bytes())
}

// handleRestore validates an uploaded (or pasted) configuration as a whole,
// then saves and applies it like any other change.
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	doc, err := formFile(r, "backup")
	if err != nil {
		s.message(w, r, http.StatusBadRequest, "Restore", err.Error())
		return
	}
	cfg, err := config.Parse("uploaded configuration", doc)
	if err != nil {
		s.message(w, r, http.StatusUnprocessableEntity, "Restore refused", "The file is not a valid configuration; nothing was changed.\n"+err.Error())
		return
	}
	if status, err := s.guardChange(r, cfg, r.FormValue("current")); err != nil {
		s.message(w, r, status, "Restore refused", err.Error())
		return
	}
	res, err := s.save(cfg)
	if err != nil {
		s.message(w, r, http.StatusConflict, "Restore failed", err.Error())
		return
	}
	if r.FormValue("names") == "1" {
		if err := s.applyNames(cfg); err != nil {
			s.message(w, r, http.StatusInternalServerError, "Channel names not saved", err.Error())
			return
		}
	}
	if res.Confirm {
		s.afterRisky(w, r)
		return
	}
	http.Redirect(w, r, "/system?done=restored", http.StatusSeeOther)
}

// formFile returns the uploaded file field, or the text field "toml".
func formFile(r *http.Request, field string) ([]byte, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	if t := r.FormValue("toml"); t != "" {
		return []byte(t), nil
	}
	f, _, err := r.FormFile(field)
	if err != nil {
		return nil, fmt.Errorf("no file in the upload field %q", field)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// importData is the result page of an OSCam import.
type importData struct {
	Report   oscamimport.Report
	TOML     string
	Problems string
	// NoReader refuses the Apply: the import recognised no reader, and
	// applying it would delete every reader.
	NoReader bool
	// Names is what the channel name files gave, applied with the rest.
	Names namesImport
	// OldListen and NewListen name a move of the web form (OSCam httpport)
	// before the Apply; empty when it stays.
	OldListen, NewListen string
}

// handleImport converts uploaded oscam.conf / oscam.server / oscam.user into
// a satd configuration and shows it with the report; the user then restores
// it (the same validated path as a backup).
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
	if err := r.ParseMultipartForm(4 << 20); err != nil {
		s.message(w, r, http.StatusBadRequest, "Import", "expected an upload of OSCam files: "+err.Error())
		return
	}
	var in oscamimport.Files
	var nf channels.Files
	for _, f := range []struct {
		field string
		dst   *[]byte
	}{{"conf", &in.Conf}, {"server", &in.Server}, {"user", &in.User}, {"srvid", &nf.Srvid}, {"srvid2", &nf.Srvid2}, {"lamedb", &nf.Lamedb}} {
		if file, _, err := r.FormFile(f.field); err == nil {
			*f.dst, _ = io.ReadAll(file)
			file.Close()
		}
	}
	base, err := cloneConfig(s.opt.Config())
	if err != nil {
		s.message(w, r, http.StatusInternalServerError, "Import failed", err.Error())
		return
	}
	res := oscamimport.Result{Config: base}
	if len(in.Conf)+len(in.Server)+len(in.User) > 0 || nf.Empty() {
		if res, err = oscamimport.Convert(in, base); err != nil {
			s.message(w, r, http.StatusUnprocessableEntity, "Import failed", err.Error())
			return
		}
	}
	names, err := s.importNames(nf)
	if err != nil {
		s.message(w, r, http.StatusUnprocessableEntity, "Import failed", err.Error())
		return
	}
	var b bytes.Buffer
	res.Config.Encode(&b)
	d := importData{Report: res.Report, TOML: b.String(), NoReader: len(res.Config.Readers) == 0, Names: names}
	if err := res.Config.Validate(); err != nil {
		d.Problems = err.Error()
	}
	if was := s.opt.Config().Web.Listen; res.Config.Web.Listen != was {
		d.OldListen, d.NewListen = was, res.Config.Web.Listen
	}
	s.render(w, r, http.StatusOK, pageData{Title: "OSCam import", Active: "config", Content: d})
}
