package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"satd.dev/satd/cmd/satd/config"
)

// The JSON API mirrors the pages under /api/ with the same session, the
// same guards and the same validation (the form code path).
func (s *Server) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/status", s.api(s.apiStatus))
	mux.HandleFunc("GET /api/balancer", s.api(s.apiBalancer))
	mux.HandleFunc("POST /api/balancer/reset", s.action(s.apiBalancerReset))
	mux.HandleFunc("POST /api/balancer/clear", s.action(s.apiBalancerClear))
	mux.HandleFunc("GET /api/config", s.api(s.apiConfig))
	mux.HandleFunc("POST /api/config/{section}", s.action(s.apiConfigSave))
	mux.HandleFunc("GET /api/pending", s.api(s.apiPending))
	mux.HandleFunc("POST /api/confirm", s.action(s.apiConfirm))
	mux.HandleFunc("GET /api/log", s.api(s.apiLog))
	mux.HandleFunc("GET /api/update", s.api(s.apiUpdate))
	mux.HandleFunc("POST /api/restart", s.action(s.apiRestart))
}

// currentPasswordHeader carries the current password of an API change to
// guarded settings (update trust, file paths).
const currentPasswordHeader = "X-Current-Password"

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	d := s.statusData()
	writeJSON(w, http.StatusOK, map[string]any{
		"version": s.opt.Version, "uptime_s": int64(d.Uptime.Seconds()), "started": d.Started,
		"memory": d.Memory, "readers": d.Status.Readers, "services": d.Status.Services, "mounts": d.Status.Mounts,
	})
}

func (s *Server) apiBalancer(w http.ResponseWriter, r *http.Request) {
	stats, decisions := s.opt.Balancer.Stats(), s.opt.Balancer.Decisions()
	s.nameStats(stats)
	s.nameDecisions(decisions)
	writeJSON(w, http.StatusOK, map[string]any{"stats": stats, "decisions": decisions})
}

type balancerAction struct {
	Reader string `json:"reader"`
	Key    string `json:"key"`
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "request body: " + err.Error()})
		return false
	}
	return true
}

func (s *Server) apiBalancerReset(w http.ResponseWriter, r *http.Request) {
	var a balancerAction
	if readJSON(w, r, &a) {
		s.apiResult(w, s.opt.Balancer.Reset(a.Reader))
	}
}

func (s *Server) apiBalancerClear(w http.ResponseWriter, r *http.Request) {
	var a balancerAction
	if readJSON(w, r, &a) {
		s.apiResult(w, s.opt.Balancer.Clear(a.Reader, a.Key))
	}
}

func (s *Server) apiResult(w http.ResponseWriter, err error) {
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// apiConfig returns the configuration in force with the TOML key names;
// passwords, tokens and keys show as "(set)".
func (s *Server) apiConfig(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := masked(s.opt.Config()).Encode(&b); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	var m map[string]any
	if err := toml.Unmarshal(b.Bytes(), &m); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// masked returns a copy of cfg with its secrets masked.
func masked(cfg *config.Config) *config.Config {
	c, err := cloneConfig(cfg)
	if err != nil {
		return config.Default() // cannot happen: cfg is in force, so valid
	}
	maskSecrets(reflect.ValueOf(c))
	return c
}

// problemJSON is one validation problem in an API answer.
type problemJSON struct {
	Key string `json:"key"`
	Msg string `json:"msg"`
}

// apiConfigSave changes one section: the body is an object of the keys to
// change (or, for a list section such as reader, the whole list). The values
// go through the same form code, so the same validation applies.
func (s *Server) apiConfigSave(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("section")
	var body any
	if !readJSON(w, r, &body) {
		return
	}
	form, err := jsonToForm(name, body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	cfg, problems, _, other, err := s.editSection(name, form)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if len(problems)+len(other) > 0 {
		var ps []problemJSON
		for k, m := range problems {
			ps = append(ps, problemJSON{k, m})
		}
		for _, p := range other {
			ps = append(ps, problemJSON{p.Key, p.Msg})
		}
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"problems": ps})
		return
	}
	if status, err := s.guardChange(r, cfg, r.Header.Get(currentPasswordHeader)); err != nil {
		writeJSON(w, status, map[string]any{"error": err.Error()})
		return
	}
	res, err := s.save(cfg)
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "result": res.Result})
		return
	}
	out := map[string]any{"saved": true, "result": res.Result}
	if res.Confirm {
		out["confirm_by"] = res.Deadline.Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, out)
}

// jsonToForm turns a JSON section body into the form values the page posts.
func jsonToForm(name string, body any) (url.Values, error) {
	form := url.Values{}
	switch b := body.(type) {
	case map[string]any:
		if err := objectToForm(form, name, b); err != nil {
			return nil, err
		}
		// Only the keys given change: unchanged booleans keep their value
		// because their ".present" marker is absent.
	case []any:
		form.Set(name+".count", strconv.Itoa(len(b)))
		for i, e := range b {
			obj, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: want an object", name, i)
			}
			if err := objectToForm(form, fmt.Sprintf("%s[%d]", name, i), obj); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("body: want an object of %s keys, or a list for a list section", name)
	}
	return form, nil
}

func objectToForm(form url.Values, prefix string, obj map[string]any) error {
	for k, v := range obj {
		key := prefix + "." + k
		switch v := v.(type) {
		case bool:
			form.Set(key+".present", "1")
			if v {
				form.Set(key, "on")
			}
		case string:
			form.Set(key, v)
		case float64:
			form.Set(key, strconv.FormatFloat(v, 'f', -1, 64))
		case []any:
			lines := make([]string, len(v))
			for i, e := range v {
				lines[i] = fmt.Sprint(e)
			}
			form.Set(key, strings.Join(lines, "\n"))
		case map[string]any:
			if err := objectToForm(form, key, v); err != nil {
				return err
			}
			var lines []string
			for mk, mv := range v {
				lines = append(lines, mk+" = "+fmt.Sprint(mv))
			}
			form.Set(key, strings.Join(lines, "\n"))
		default:
			return fmt.Errorf("%s: unsupported value %v", key, v)
		}
	}
	return nil
}

func (s *Server) apiPending(w http.ResponseWriter, r *http.Request) {
	deadline, pending := s.confirm.pending()
	out := map[string]any{"pending": pending, "last": s.confirm.outcome()}
	if pending {
		out["deadline"] = deadline.Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiConfirm(w http.ResponseWriter, r *http.Request) {
	if !s.confirm.confirm() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "nothing to confirm"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"confirmed": true})
}

func (s *Server) apiLog(w http.ResponseWriter, r *http.Request) {
	if s.opt.Logs == nil {
		writeJSON(w, http.StatusOK, []LogEntry{})
		return
	}
	lv, _ := parseLevel(r.URL.Query().Get("level"))
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	e, _ := s.opt.Logs.Since(since, lv)
	if e == nil {
		e = []LogEntry{}
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) apiUpdate(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opt.Updater.State())
}

func (s *Server) apiRestart(w http.ResponseWriter, r *http.Request) {
	if s.opt.Restart == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "restart is not available"})
		return
	}
	s.apiResult(w, s.opt.Restart())
}
