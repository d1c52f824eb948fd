package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"time"

	"satd.dev/satd/internal/redact"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	mux.HandleFunc("GET /{$}", s.page(s.handleStatus))
	mux.HandleFunc("GET /balancer", s.page(s.handleBalancer))
	mux.HandleFunc("POST /balancer/reset", s.action(s.handleBalancerReset))
	mux.HandleFunc("POST /balancer/clear", s.action(s.handleBalancerClear))
	mux.HandleFunc("GET /config", s.page(s.handleConfig))
	mux.HandleFunc("POST /config", s.action(s.handleConfigSave))
	mux.HandleFunc("POST /config/import", s.upload(s.handleImport))
	s.readerRoutes(mux)
	mux.HandleFunc("GET /mounts", s.page(s.handleMounts))
	mux.HandleFunc("GET /mounts/edit", s.page(s.handleMountPage))
	mux.HandleFunc("POST /mounts/edit", s.action(s.handleMountSave))
	mux.HandleFunc("POST /mounts/delete", s.action(s.handleMountDelete))
	mux.HandleFunc("GET /log", s.page(s.handleLog))
	mux.HandleFunc("GET /log/events", s.api(s.handleLogEvents))
	mux.HandleFunc("GET /system", s.page(s.handleSystem))
	mux.HandleFunc("GET /system/backup", s.page(s.handleBackup))
	mux.HandleFunc("POST /system/restore", s.upload(s.handleRestore))
	mux.HandleFunc("POST /system/restart", s.action(s.handleRestart))
	mux.HandleFunc("POST /system/password", s.action(s.handlePassword))
	mux.HandleFunc("POST /system/firmware", s.upload(s.handleFirmware))
	mux.HandleFunc("GET /confirm", s.page(s.handleConfirmPage))
	mux.HandleFunc("POST /confirm", s.action(s.handleConfirm))
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("GET /setup", s.handleSetupPage)
	mux.HandleFunc("POST /setup", s.handleSetup)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	s.apiRoutes(mux)
	return s.wrap(mux)
}

// statusData is the Status page.
type statusData struct {
	Uptime   time.Duration
	Started  time.Time
	Memory   memInfo
	Status   Status
	Now      time.Time
	Services int
}

type memInfo struct {
	Total      uint64 `json:"total_bytes"` // all memory mapped by the Go runtime
	Heap       uint64 `json:"heap_bytes"`
	Limit      int64  `json:"limit_bytes"`
	Goroutines int    `json:"goroutines"`
}

var memSamples = []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/gomemlimit:bytes"}}

func readMem() memInfo {
	ss := make([]metrics.Sample, len(memSamples))
	copy(ss, memSamples)
	metrics.Read(ss)
	var m memInfo
	if ss[0].Value.Kind() == metrics.KindUint64 {
		m.Total = ss[0].Value.Uint64()
	}
	if ss[1].Value.Kind() == metrics.KindUint64 {
		m.Heap = ss[1].Value.Uint64()
	}
	if ss[2].Value.Kind() == metrics.KindUint64 {
		m.Limit = int64(ss[2].Value.Uint64())
	}
	m.Goroutines = runtime.NumGoroutine()
	return m
}

func (s *Server) statusData() statusData {
	now := s.opt.Now()
	st := s.opt.Status.Status()
	// The Status page and /api/status show where each mount plays from;
	// an upstream URL's password is never part of that.
	for i := range st.Mounts {
		st.Mounts[i].Upstream, st.Mounts[i].Source = redact.Text(st.Mounts[i].Upstream), redact.Text(st.Mounts[i].Source)
	}
	s.nameServices(st.Services)
	return statusData{Uptime: now.Sub(s.started).Truncate(time.Second), Started: s.started, Memory: readMem(), Status: st, Now: now}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, pageData{Title: "Status", Active: "status", Content: s.statusData()})
}

// balancerData is the Load balancer page.
type balancerData struct {
	Stats     []StatsRow
	Decisions []Decision
	Total     int
	Page      int
	Pages     int
	PageLinks []int
}

// statsPerPage keeps the Load balancer page far below 100 KB however many
// statistics rows the balancer has (the JSON API returns them all).
const statsPerPage = 100

func (s *Server) handleBalancer(w http.ResponseWriter, r *http.Request) {
	rows := s.opt.Balancer.Stats()
	bd := balancerData{Decisions: s.opt.Balancer.Decisions(), Total: len(rows), Pages: max(1, (len(rows)+statsPerPage-1)/statsPerPage)}
	bd.Page = min(max(1, atoiOr(r.URL.Query().Get("page"), 1)), bd.Pages)
	bd.Stats = rows[(bd.Page-1)*statsPerPage : min(len(rows), bd.Page*statsPerPage)]
	s.nameStats(bd.Stats)
	s.nameDecisions(bd.Decisions)
	for i := 1; i <= bd.Pages && i <= 50; i++ {
		bd.PageLinks = append(bd.PageLinks, i)
	}
	d := pageData{Title: "Load balancer", Active: "balancer", Content: bd}
	if r.URL.Query().Get("done") != "" {
		d.Flash = "Statistics " + r.URL.Query().Get("done") + "."
	}
	s.render(w, r, http.StatusOK, d)
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func (s *Server) handleBalancerReset(w http.ResponseWriter, r *http.Request) {
	what := "every reader's statistics"
	if rd := r.FormValue("reader"); rd != "" {
		what = "the statistics of reader " + rd
	}
	if !s.confirmed(w, r, "Reset statistics", "Forget "+what+"? The balancer learns them again from the next ECMs.", "Reset statistics") {
		return
	}
	if err := s.opt.Balancer.Reset(r.FormValue("reader")); err != nil {
		s.message(w, r, http.StatusConflict, "Reset failed", err.Error())
		return
	}
	http.Redirect(w, r, "/balancer?done=reset", http.StatusSeeOther)
}

func (s *Server) handleBalancerClear(w http.ResponseWriter, r *http.Request) {
	if !s.confirmed(w, r, "Clear statistics row", "Clear the row "+r.FormValue("key")+" of reader "+r.FormValue("reader")+"?", "Clear the row") {
		return
	}
	if err := s.opt.Balancer.Clear(r.FormValue("reader"), r.FormValue("key")); err != nil {
		s.message(w, r, http.StatusConflict, "Clear failed", err.Error())
		return
	}
	http.Redirect(w, r, "/balancer?done=cleared", http.StatusSeeOther)
}

// logData is the Log page.
type logData struct {
	Level     string
	Levels    []string
	Entries   []LogEntry
	Connected bool
	Last      uint64
}

func parseLevel(s string) (slog.Level, string) {
	var l slog.Level
	if s == "" || l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo, "INFO"
	}
	return l, l.String()
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	lv, name := parseLevel(r.URL.Query().Get("level"))
	d := logData{Level: name, Levels: []string{"DEBUG", "INFO", "WARN", "ERROR"}}
	if s.opt.Logs != nil {
		d.Connected = true
		d.Entries, _ = s.opt.Logs.Since(0, lv)
		if n := len(d.Entries); n > 0 {
			d.Last = d.Entries[n-1].Seq
			if n > 200 {
				d.Entries = d.Entries[n-200:]
			}
		}
	}
	s.render(w, r, http.StatusOK, pageData{Title: "Log", Active: "log", Content: d})
}

// handleLogEvents streams new log records as server-sent events. Each stream
// ends after a while; EventSource reconnects with Last-Event-ID, so a stream
// never pins a server that is moving or stopping.
func (s *Server) handleLogEvents(w http.ResponseWriter, r *http.Request) {
	if s.opt.Logs == nil {
		http.Error(w, "log tail not connected", http.StatusNotFound)
		return
	}
	lv, _ := parseLevel(r.URL.Query().Get("level"))
	since, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if since == 0 {
		since, _ = strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	end := time.NewTimer(25 * time.Second)
	defer end.Stop()
	for {
		entries, changed := s.opt.Logs.Since(since, lv)
		for _, e := range entries {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b)
			since = e.Seq
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-changed:
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// systemData is the System page.
type systemData struct {
	CanRestart bool
	Update     UpdateState
	ConfigPath string
}

func (s *Server) handleSystem(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "System", Active: "system", Content: systemData{s.opt.Restart != nil, s.opt.Updater.State(), s.opt.ConfigPath}}
	switch r.URL.Query().Get("done") {
	case "password":
		d.Flash = "Password changed; other sessions were logged out."
	case "restarting":
		d.Flash = "satd is restarting; reload this page in a few seconds."
	case "restored":
		d.Result = s.lastResult()
		d.Flash = savedFlash("Configuration restored", d.Result)
	}
	s.render(w, r, http.StatusOK, d)
}

func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	if s.opt.Restart == nil {
		s.message(w, r, http.StatusNotImplemented, "Restart", "restart is not available")
		return
	}
	if !s.confirmed(w, r, "Restart satd", "Restart satd now? Descrambling and streams stop for a few seconds.", "Restart satd") {
		return
	}
	s.opt.Log.Warn("web: restart requested", "from", r.RemoteAddr)
	if err := s.opt.Restart(); err != nil {
		s.message(w, r, http.StatusInternalServerError, "Restart failed", err.Error())
		return
	}
	s.restartNeeded.Store(nil) // the restart puts everything saved in force
	// POST, redirect, GET: reloading the page after a restart must not
	// post the confirmed restart again.
	http.Redirect(w, r, "/system?done=restarting", http.StatusSeeOther)
}

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	if !s.recheck(w, r, "Password not changed") {
		return
	}
	if r.FormValue("new") != r.FormValue("repeat") {
		s.message(w, r, http.StatusUnprocessableEntity, "Password not changed", "the two new passwords differ")
		return
	}
	if err := s.setPassword(r, r.FormValue("new")); err != nil {
		s.message(w, r, http.StatusUnprocessableEntity, "Password not changed", err.Error())
		return
	}
	s.sess.endAll()
	s.setSessionCookie(w, r, s.sess.create(), 0)
	http.Redirect(w, r, "/system?done=password", http.StatusSeeOther)
}

// recheck asks for the current password again (field "current") before a
// change that a stolen session must not make: the password itself, the
// update keys, file paths. It answers the refusal itself and reports false.
func (s *Server) recheck(w http.ResponseWriter, r *http.Request, title string) bool {
	status, err := s.recheckPassword(r, r.FormValue("current"))
	if err != nil {
		s.message(w, r, status, title, err.Error())
	}
	return err == nil
}

// recheckPassword checks the current password sent with a guarded change;
// wrong tries count against the client's login attempts. On refusal it
// returns the status to answer with.
func (s *Server) recheckPassword(r *http.Request, password string) (int, error) {
	who := clientKey(r)
	if ok, wait := s.thr.attempt(who); !ok {
		s.opt.Metrics.auth("recheck_throttled")
		return http.StatusTooManyRequests, fmt.Errorf("too many wrong passwords; try again in %v", wait.Round(time.Second))
	}
	switch err := s.checkPassword(r, password); {
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable, err
	case err != nil:
		s.opt.Metrics.auth("password_change_refused")
		return http.StatusForbidden, errors.New("the current password is wrong")
	}
	s.thr.succeed(who)
	return 0, nil
}

func (s *Server) handleFirmware(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opt.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		s.message(w, r, http.StatusBadRequest, "Firmware update", "expected a multipart upload: "+err.Error())
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			s.message(w, r, http.StatusBadRequest, "Firmware update", "no file named image in the upload")
			return
		}
		if part.FormName() != "image" {
			continue
		}
		err = s.opt.Updater.Install(r.Context(), part.FileName(), part, r.ContentLength)
		if err != nil {
			s.message(w, r, http.StatusUnprocessableEntity, "Firmware update refused", err.Error())
			return
		}
		s.render(w, r, http.StatusOK, pageData{Title: "Firmware update", Content: backLink{}, Flash: "Image verified; installation started. Progress: " + s.opt.Updater.State().Phase})
		return
	}
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if !s.pw.isSet() {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, pageData{Title: "Log in", Content: loginForm{Next: localPath(r.URL.Query().Get("next"))}})
}

// clientKey is the address the login throttle counts by: the IPv4 address,
// or the IPv6 /64 (one host picks any address of its /64 at will).
func clientKey(r *http.Request) string {
	ip, ok := remoteIP(r.RemoteAddr)
	switch {
	case !ok:
		return r.RemoteAddr
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.smallForm(w, r) {
		return
	}
	who := clientKey(r)
	if ok, wait := s.thr.attempt(who); !ok {
		s.opt.Metrics.auth("login_throttled")
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.render(w, r, http.StatusTooManyRequests, pageData{Title: "Log in", Content: loginForm{}, Error: fmt.Sprintf("Too many failed logins; try again in %v.", wait.Round(time.Second))})
		return
	}
	err := s.checkPassword(r, r.PostForm.Get("password"))
	switch {
	case errors.Is(err, ErrBusy):
		s.opt.Metrics.auth("login_busy")
		w.Header().Set("Retry-After", "1")
		s.render(w, r, http.StatusServiceUnavailable, pageData{Title: "Log in", Content: loginForm{}, Error: "Too many logins at once; try again in a moment."})
		return
	case errors.Is(err, ErrNoPassword), errors.Is(err, ErrBadHash):
		s.thr.succeed(who) // not the client's failure
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	case err != nil:
		s.opt.Metrics.auth("login_failed")
		msg := "Wrong password."
		if s.thr.lockedOut(who) {
			s.opt.Log.Warn("web: login locked out after repeated failures", "client", who)
			msg = "Wrong password. Too many failures: this address is locked out for a while."
		}
		s.render(w, r, http.StatusUnauthorized, pageData{Title: "Log in", Content: loginForm{Next: localPath(r.PostForm.Get("next"))}, Error: msg})
		return
	}
	s.thr.succeed(who)
	s.opt.Metrics.auth("login_ok")
	s.setSessionCookie(w, r, s.sess.create(), 0)
	http.Redirect(w, r, localPath(r.PostForm.Get("next")), http.StatusSeeOther)
}

// checkPassword checks password in a hashing slot (ErrBusy if none frees
// while the request lasts or too many wait).
func (s *Server) checkPassword(r *http.Request, password string) error {
	var err error
	if gerr := s.hash.do(r.Context(), func() { err = s.pw.check(password) }); gerr != nil {
		return ErrBusy
	}
	return err
}

// setPassword hashes and stores password in a hashing slot.
func (s *Server) setPassword(r *http.Request, password string) error {
	var err error
	if gerr := s.hash.do(r.Context(), func() { err = s.pw.set(password) }); gerr != nil {
		return ErrBusy
	}
	return err
}

// maxLoginBody bounds the body of the unauthenticated forms (login, setup):
// a password and a setup code.
const maxLoginBody = 4 << 10

// smallForm reads the urlencoded body of an unauthenticated form, at most
// maxLoginBody bytes, before anything else looks at it. Multipart is refused
// unread, so nothing an anonymous peer sends is spooled to disk.
func (s *Server) smallForm(w http.ResponseWriter, r *http.Request) bool {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		s.opt.Metrics.auth("form_refused")
		http.Error(w, "415 this form takes application/x-www-form-urlencoded", http.StatusUnsupportedMediaType)
		return false
	}
	if r.ContentLength > maxLoginBody {
		s.opt.Metrics.auth("form_refused")
		http.Error(w, fmt.Sprintf("413 a login body is at most %d bytes", maxLoginBody), http.StatusRequestEntityTooLarge)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		s.opt.Metrics.auth("form_refused")
		http.Error(w, "400 "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sess.end(c.Value)
	}
	s.setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) handleSetupPage(w http.ResponseWriter, r *http.Request) {
	if s.pw.isSet() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, pageData{Title: "Set the password", Content: setupForm{NeedCode: !isLoopback(r)}})
}

// handleSetup sets the first password: from loopback freely, from elsewhere
// only with the one-time code from the log.
func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	if s.pw.isSet() {
		http.Error(w, "403 the password is already set; log in and change it on the System page", http.StatusForbidden)
		return
	}
	if !s.smallForm(w, r) {
		return
	}
	d := pageData{Title: "Set the password", Content: setupForm{NeedCode: !isLoopback(r)}}
	who := clientKey(r)
	if !isLoopback(r) {
		if ok, _ := s.thr.attempt(who); !ok {
			s.opt.Metrics.auth("setup_throttled")
			d.Error = "Too many wrong setup codes; wait a while."
			s.render(w, r, http.StatusTooManyRequests, d)
			return
		}
		if !s.pw.checkSetupCode(r.PostForm.Get("code")) {
			s.opt.Metrics.auth("setup_refused")
			d.Error = "Wrong setup code. It is printed in satd's log."
			s.render(w, r, http.StatusForbidden, d)
			return
		}
		s.thr.succeed(who)
	}
	if r.PostForm.Get("password") != r.PostForm.Get("repeat") {
		d.Error = "The two passwords differ."
		s.render(w, r, http.StatusUnprocessableEntity, d)
		return
	}
	if err := s.setPassword(r, r.PostForm.Get("password")); err != nil {
		d.Error = err.Error()
		s.render(w, r, http.StatusUnprocessableEntity, d)
		return
	}
	s.opt.Log.Info("web: password set", "from", who)
	s.opt.Metrics.auth("setup_ok")
	s.setSessionCookie(w, r, s.sess.create(), 0)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}
