package update

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ddiServer is a loopback stand-in for an Eclipse hawkBit server's Direct
// Device Integration API. The real server is a Java application that needs
// a database or Docker, neither of which this machine has, so the tests run
// against this handler instead. It follows the DDI documentation: HAL
// _links with the ?c= hash on deploymentBase, string action ids, artifacts
// under softwaremodules/…/artifacts/…, configData with a mode, and it
// validates every feedback body strictly (JSON shape, unknown fields, the
// id against the URL, the time format, execution and result values,
// progress bounds), failing the test on any violation. It records every
// feedback in order.
type ddiServer struct {
	t      *testing.T
	tenant string
	ctrl   string
	auth   string
	url    string // set once the server runs

	mu         sync.Mutex
	sleep      string
	wantConfig bool
	config     map[string]string
	action     *ddiTestAction
	cancel     bool // offer cancelAction for the action
	feedback   []ddiRecord
	fail       int  // answer 503 to this many polls
	hang       int  // hang this many polls until the client gives up
	failPost   int  // answer 503 to this many feedback POSTs
	truncate   bool // cut the next payload download in the middle
	ranges     []string
	polls      []time.Time
	payloadURL string // if set, the payload artifact's download link (a CDN)
}

// ddiTestAction is one deployment offered to the controller.
type ddiTestAction struct {
	id                 string
	download, update   string
	window             string
	files              []ddiTestFile
	closed, cancelled  bool
	cancelRejectedOnce bool
}

// ddiTestFile is an artifact; announced size and sha256 default to the
// real ones.
type ddiTestFile struct {
	name   string
	data   []byte
	sha256 string
	size   int64
}

// ddiRecord is one feedback as the server received it.
type ddiRecord struct {
	Kind      string // "deployment" or "cancel"
	ID        string
	Execution string
	Finished  string
	Progress  *ddiProgress
	Details   []string
}

func (r ddiRecord) String() string {
	return fmt.Sprintf("%s %s %s/%s %v", r.Kind, r.ID, r.Execution, r.Finished, r.Details)
}

func newDDIServer(t *testing.T) *ddiServer {
	return &ddiServer{t: t, tenant: "DEFAULT", ctrl: "satrx-armv7-box1", auth: "TargetToken tok-123", sleep: "00:05:00", wantConfig: true}
}

// start serves s on 127.0.0.1.
func (s *ddiServer) start() *ddiServer {
	srv := newLocalServer(s.t, s)
	s.url = srv.URL
	return s
}

func (s *ddiServer) base() string { return "/" + s.tenant + "/controller/v1/" + s.ctrl }

// offer makes action the current deployment.
func (s *ddiServer) offer(a *ddiTestAction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.action = a
}

func (s *ddiServer) records() []ddiRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.feedback)
}

func (s *ddiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != s.auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path, ok := strings.CutPrefix(r.URL.Path, s.base())
	switch {
	case !ok:
		http.NotFound(w, r)
	case path == "" && r.Method == http.MethodGet:
		s.poll(w, r)
	case path == "/configData" && r.Method == http.MethodPut:
		s.putConfig(w, r)
	case strings.HasPrefix(path, "/deploymentBase/") && strings.HasSuffix(path, "/feedback") && r.Method == http.MethodPost:
		s.postFeedback(w, r, "deployment", strings.TrimSuffix(strings.TrimPrefix(path, "/deploymentBase/"), "/feedback"))
	case strings.HasPrefix(path, "/deploymentBase/") && r.Method == http.MethodGet:
		s.deployment(w, r, strings.TrimPrefix(path, "/deploymentBase/"))
	case strings.HasPrefix(path, "/cancelAction/") && strings.HasSuffix(path, "/feedback") && r.Method == http.MethodPost:
		s.postFeedback(w, r, "cancel", strings.TrimSuffix(strings.TrimPrefix(path, "/cancelAction/"), "/feedback"))
	case strings.HasPrefix(path, "/cancelAction/") && r.Method == http.MethodGet:
		s.cancelAction(w, strings.TrimPrefix(path, "/cancelAction/"))
	case strings.HasPrefix(path, "/softwaremodules/7/artifacts/") && r.Method == http.MethodGet:
		s.serveArtifact(w, r, strings.TrimPrefix(path, "/softwaremodules/7/artifacts/"))
	default:
		s.t.Errorf("DDI server: unexpected %s %s", r.Method, r.URL)
		http.Error(w, "no such resource", http.StatusNotFound)
	}
}

func (s *ddiServer) poll(w http.ResponseWriter, r *http.Request) {
	s.polls = append(s.polls, time.Now())
	if s.fail > 0 {
		s.fail--
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	if s.hang > 0 {
		s.hang--
		s.mu.Unlock()
		<-r.Context().Done()
		s.mu.Lock()
		return
	}
	links := map[string]any{}
	if s.wantConfig {
		links["configData"] = map[string]string{"href": s.url + s.base() + "/configData"}
	}
	if a := s.action; a != nil && !a.closed && !a.cancelled {
		if s.cancel {
			links["cancelAction"] = map[string]string{"href": s.url + s.base() + "/cancelAction/" + a.id}
		} else {
			links["deploymentBase"] = map[string]string{"href": s.url + s.base() + "/deploymentBase/" + a.id + "?c=" + a.hash()}
		}
	}
	writeJSON(w, map[string]any{"config": map[string]any{"polling": map[string]string{"sleep": s.sleep}}, "_links": links})
}

// hash is the ?c= cache-busting parameter: it changes with the action's state.
func (a *ddiTestAction) hash() string {
	return fmt.Sprintf("%d", int32(crc32.ChecksumIEEE([]byte(a.id+a.download+a.update+a.window))))
}

func (s *ddiServer) putConfig(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Mode string            `json:"mode"`
		Data map[string]string `json:"data"`
	}
	if !s.decode(w, r, &body) {
		return
	}
	if (body.Mode != "merge" && body.Mode != "replace" && body.Mode != "remove") || len(body.Data) == 0 {
		s.t.Errorf("DDI server: configData %+v: want a mode and data", body)
		http.Error(w, "bad configData", http.StatusBadRequest)
		return
	}
	s.config, s.wantConfig = body.Data, false
	w.WriteHeader(http.StatusOK)
}

func (s *ddiServer) deployment(w http.ResponseWriter, r *http.Request, id string) {
	a := s.action
	if a == nil || a.id != id || r.URL.Query().Get("c") != a.hash() {
		s.t.Errorf("DDI server: GET deploymentBase/%s?%s: not the offered action", id, r.URL.RawQuery)
		http.NotFound(w, r)
		return
	}
	var arts []map[string]any
	for _, f := range a.files {
		href := s.url + s.base() + "/softwaremodules/7/artifacts/" + f.name
		if s.payloadURL != "" && !strings.HasPrefix(f.name, ManifestArtifact) {
			href = s.payloadURL + "/" + f.name
		}
		arts = append(arts, map[string]any{"filename": f.name, "size": f.size,
			"hashes": map[string]string{"sha1": "00", "md5": "00", "sha256": f.sha256},
			"_links": map[string]any{"download": map[string]string{"href": href}, "download-http": map[string]string{"href": href}}})
	}
	dep := map[string]any{"download": a.download, "update": a.update,
		"chunks": []any{map[string]any{"part": "os", "name": "satd", "version": "1.1.0", "artifacts": arts}}}
	if a.window != "" {
		dep["maintenanceWindow"] = a.window
	}
	writeJSON(w, map[string]any{"id": a.id, "deployment": dep, "actionHistory": map[string]any{"status": "RUNNING", "messages": []string{}}})
}

func (s *ddiServer) cancelAction(w http.ResponseWriter, id string) {
	if s.action == nil || s.action.id != id || !s.cancel {
		s.t.Errorf("DDI server: GET cancelAction/%s: no such cancel", id)
		http.Error(w, "no cancel", http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]any{"id": id, "cancelAction": map[string]string{"stopId": id}})
}

// postFeedback validates and records a feedback, and moves the action's
// state as hawkBit does.
func (s *ddiServer) postFeedback(w http.ResponseWriter, r *http.Request, kind, id string) {
	if s.failPost > 0 {
		s.failPost--
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	var fb ddiFeedback
	if !s.decode(w, r, &fb) {
		return
	}
	if msg := checkFeedback(kind, id, fb, s.action); msg != "" {
		s.t.Errorf("DDI server: %s feedback %+v: %s", kind, fb, msg)
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	s.feedback = append(s.feedback, ddiRecord{kind, id, fb.Status.Execution, fb.Status.Result.Finished, fb.Status.Result.Progress, fb.Status.Details})
	switch {
	case kind == "deployment" && fb.Status.Execution == execClosed:
		s.action.closed = true
	case kind == "cancel" && fb.Status.Execution == execClosed:
		s.action.cancelled = true
	case kind == "cancel" && fb.Status.Execution == execRejected:
		s.cancel = false // the action goes on
	}
	w.WriteHeader(http.StatusOK)
}

// checkFeedback returns what is wrong with a feedback, or "".
func checkFeedback(kind, id string, fb ddiFeedback, a *ddiTestAction) string {
	execs := []string{"proceeding", "downloaded", "closed", "rejected", "scheduled", "resumed", "canceled", "download"}
	switch {
	case a == nil || a.id != id || (kind == "deployment" && a.closed):
		return "no open action " + id
	case fb.ID != id:
		return "id " + fb.ID + " differs from the URL's " + id
	case !slices.Contains(execs, fb.Status.Execution):
		return "execution " + fb.Status.Execution
	case !slices.Contains([]string{"none", "success", "failure"}, fb.Status.Result.Finished):
		return "finished " + fb.Status.Result.Finished
	case fb.Status.Execution == execClosed && fb.Status.Result.Finished == finishedNone:
		return "closed without a result"
	case fb.Status.Execution != execClosed && fb.Status.Result.Finished != finishedNone:
		return "a result before closed"
	case kind == "cancel" && fb.Status.Execution != execClosed && fb.Status.Execution != execRejected:
		return "a cancel is answered closed or rejected"
	case fb.Status.Result.Finished == finishedFailure && len(fb.Status.Details) == 0:
		return "failure without details"
	}
	if p := fb.Status.Result.Progress; p != nil && (p.Of <= 0 || p.Cnt < 0 || p.Cnt > p.Of) {
		return fmt.Sprintf("progress %d of %d", p.Cnt, p.Of)
	}
	if tm, err := time.Parse(ddiTimeLayout, fb.Time); err != nil || tm.Year() < 2000 {
		return "time " + fb.Time + " is not YYYYMMDDTHHMMSS"
	}
	return ""
}

// decode reads a JSON body strictly.
func (s *ddiServer) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.t.Errorf("DDI server: %s %s: Content-Type %q", r.Method, r.URL, ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.t.Errorf("DDI server: %s %s: %v", r.Method, r.URL, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (s *ddiServer) serveArtifact(w http.ResponseWriter, r *http.Request, name string) {
	var f *ddiTestFile
	if s.action != nil {
		for i := range s.action.files {
			if s.action.files[i].name == name {
				f = &s.action.files[i]
			}
		}
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(name, ManifestArtifact) {
		w.Write(f.data)
		return
	}
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	if s.truncate {
		s.truncate = false
		w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
		w.Write(f.data[:len(f.data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/hal+json;charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// handlerTransport serves requests in memory, so that a DDI conversation
// can run inside a synctest bubble with fake time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}
