package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HawkBitOptions configure a HawkBit DDI client.
type HawkBitOptions struct {
	// Server is the hawkBit server's URL, e.g. https://hawkbit.example.com.
	Server string
	// Tenant is the hawkBit tenant ("DEFAULT" on a stock server).
	Tenant string
	// ControllerID names this box on the server.
	ControllerID string
	// TargetToken or GatewayToken (exactly one) authenticates the box.
	TargetToken, GatewayToken string
	// Attributes are sent as configData when the server asks for them.
	Attributes map[string]string
	// Transport carries the requests; nil means http.DefaultTransport. The
	// token is added only to requests for the server's own host.
	Transport http.RoundTripper
	// Timeout bounds every DDI API request (not payload downloads); 0 means 30s.
	Timeout time.Duration
	// Sleep is the polling interval until the server sends its own; 0 means
	// 5m, hawkBit's default.
	Sleep time.Duration
	// Backoff is the first retry delay after a failed poll (doubling up to
	// the polling interval); 0 means 15s.
	Backoff time.Duration
	// Log receives the client's warnings; nil discards them.
	Log *slog.Logger
}

// HawkBit is a client of Eclipse hawkBit's Direct Device Integration API.
// It polls the server, downloads and verifies deployments and installs
// them through its Manager (the same verification, download and install
// path as a polled or uploaded update), and reports every step as action
// feedback. The minisign signature of the manifest stays the trust anchor:
// a deployment's software module must carry satd-update.json, its .minisig
// and the payload as artifacts.
type HawkBit struct {
	o      HawkBitOptions
	m      *Manager
	base   string
	client *authClient
	fetch  *Fetcher
	random func() float64

	poll     sync.Mutex   // one poll at a time (Run and Manager.Check)
	sleep    atomic.Int64 // polling interval the server asked for, read by Run
	reported string       // action whose "downloaded" was sent; guarded by poll
}

// The artifact names a deployment must carry besides the payload.
const (
	ManifestArtifact  = "satd-update.json"
	SignatureArtifact = "satd-update.json.minisig"
)

// NewHawkBit returns a DDI client that installs through m. From now on, m
// hands the outcome of updates installed for a hawkBit action to it (to be
// reported after the restart), and m.Check polls the hawkBit server.
func NewHawkBit(m *Manager, o HawkBitOptions) (*HawkBit, error) {
	if o.Server == "" || o.Tenant == "" || o.ControllerID == "" {
		return nil, fmt.Errorf("hawkbit: server, tenant and controller id must be set")
	}
	if (o.TargetToken == "") == (o.GatewayToken == "") {
		return nil, fmt.Errorf("hawkbit: exactly one of target token and gateway token must be set")
	}
	srv, err := url.Parse(strings.TrimSuffix(o.Server, "/"))
	if err != nil || (srv.Scheme != "http" && srv.Scheme != "https") || srv.Host == "" {
		return nil, fmt.Errorf("hawkbit: server %q is not an http(s) URL", o.Server)
	}
	h := &HawkBit{o: defaults(o), m: m, random: rand.Float64}
	h.base = srv.String() + "/" + url.PathEscape(o.Tenant) + "/controller/v1/" + url.PathEscape(o.ControllerID)
	h.client = newAuthClient(o.Transport, srv.Host, o.TargetToken, o.GatewayToken)
	h.fetch = &Fetcher{Client: h.client.http}
	h.sleep.Store(int64(h.o.Sleep))
	m.finished = h.finished
	m.check = h.Poll
	return h, nil
}

func defaults(o HawkBitOptions) HawkBitOptions {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Sleep == 0 {
		o.Sleep = 5 * time.Minute
	}
	if o.Backoff == 0 {
		o.Backoff = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Base returns the controller's DDI base URL.
func (h *HawkBit) Base() string { return h.base }

// Run polls until ctx is done: after a random jitter of up to a quarter of
// the polling interval, then every interval the server asks for plus the
// same jitter as the URL poller. A failed poll is retried after a backoff
// that doubles from Backoff up to the polling interval.
func (h *HawkBit) Run(ctx context.Context) {
	wait := Jitter(h.interval(), h.random())
	var backoff time.Duration
	for sleepCtx(ctx, wait) {
		err := h.Poll(ctx)
		if err == nil || errors.Is(err, ErrBusy) {
			backoff, wait = 0, h.interval()+Jitter(h.interval(), h.random())
			continue
		}
		h.o.Log.Warn("hawkBit poll failed", "err", err)
		backoff = nextBackoff(backoff, h.o.Backoff, h.interval())
		wait = backoff + Jitter(backoff, h.random())
	}
}

// nextBackoff doubles the retry delay from first up to limit.
func nextBackoff(cur, first, limit time.Duration) time.Duration {
	return max(min(2*cur, limit), first)
}

func (h *HawkBit) interval() time.Duration { return time.Duration(h.sleep.Load()) }

// Poll asks the server once what to do and does it: first delivers a
// stored final feedback, then sends configData, a cancel answer or runs a
// deployment. Refused deployments are reported to the server and are not
// errors; errors are failures to talk to the server or transient download
// failures, to be retried.
func (h *HawkBit) Poll(ctx context.Context) error {
	if !h.poll.TryLock() {
		return ErrBusy
	}
	defer h.poll.Unlock()
	if err := h.sendStored(ctx); err != nil {
		return err
	}
	body, err := h.client.get(ctx, h.base, h.o.Timeout)
	if err != nil {
		return err
	}
	cb, err := parseControllerBase(h.base, body)
	if err != nil {
		return err
	}
	h.sleep.Store(int64(cb.sleep))
	if href := cb.Links.ConfigData.Href; href != "" {
		if err := h.putConfigData(ctx, href); err != nil {
			return err
		}
	}
	switch {
	case cb.Links.CancelAction.Href != "":
		return h.cancel(ctx, cb.Links.CancelAction.Href)
	case cb.Links.DeploymentBase.Href != "":
		return h.deployment(ctx, cb.Links.DeploymentBase.Href)
	}
	return nil
}

func (h *HawkBit) putConfigData(ctx context.Context, href string) error {
	return h.client.send(ctx, "PUT", href, ddiConfigData{Mode: "merge", Data: h.o.Attributes}, h.o.Timeout)
}

// feedback posts one feedback on the deployment action id.
func (h *HawkBit) feedback(ctx context.Context, id, execution, finished string, details ...string) error {
	return h.postFeedback(ctx, id, newFeedback(id, execution, finished, time.Now(), details...))
}

func (h *HawkBit) postFeedback(ctx context.Context, id string, fb ddiFeedback) error {
	u := h.base + "/deploymentBase/" + url.PathEscape(id) + "/feedback"
	return h.client.send(ctx, "POST", u, fb, h.o.Timeout)
}

// deployment fetches and runs the deployment at href.
func (h *HawkBit) deployment(ctx context.Context, href string) error {
	body, err := h.client.get(ctx, href, h.o.Timeout)
	if err != nil {
		return err
	}
	d, err := parseDeploymentBase(href, body)
	if err != nil {
		return err
	}
	switch {
	case d.Deployment.Download == handlingSkip:
		h.o.Log.Info("hawkBit deployment: download skipped by the server", "action", d.ID)
		return nil
	case h.installed(d.ID):
		return nil // the restarted version reports it
	}
	return h.deploy(ctx, d)
}

// installed tells whether action's update is installed and awaits its
// restart and health checks (it is then too late to cancel it).
func (h *HawkBit) installed(action string) bool {
	var p pending
	ok, _ := loadJSON(h.m.pendingPath(), &p)
	return ok && p.Action == action
}

// deploy verifies, downloads and (when allowed) installs deployment d.
func (h *HawkBit) deploy(ctx context.Context, d *ddiDeploymentBase) error {
	m := h.m
	if !m.busy.TryLock() {
		return ErrBusy
	}
	defer m.busy.Unlock()
	m.set(func(s *Status) { *s = Status{Phase: PhaseChecking, Running: m.o.Running} })
	man, err := h.manifest(ctx, d)
	if errors.Is(err, ErrUpToDate) {
		m.set(func(s *Status) { s.Phase, s.Outcome = PhaseIdle, "up to date" })
		return h.feedback(ctx, d.ID, execClosed, finishedSuccess, "already running "+m.o.Running)
	}
	if err != nil {
		return h.refuse(ctx, d.ID, m.fail(err))
	}
	part, err := h.download(ctx, d, man)
	if err != nil {
		return h.refuse(ctx, d.ID, m.fail(err))
	}
	if err := h.downloaded(ctx, d.ID, man); err != nil {
		return err
	}
	if d.Deployment.Update == handlingSkip || d.Deployment.MaintenanceWindow == "unavailable" {
		m.set(func(s *Status) {
			s.Phase, s.Outcome = PhaseIdle, "downloaded "+man.Version+"; hawkBit has not allowed the install yet"
		})
		return nil
	}
	if err := h.feedback(ctx, d.ID, execProceeding, finishedNone, "installing "+man.Version+"; the result follows after the restart and health checks"); err != nil {
		return err
	}
	return h.refuse(ctx, d.ID, m.install(ctx, man, part, d.ID))
}

// refuse reports a refusal as closed/failure with its error text. Transient
// errors are not refusals: they are returned to be retried.
func (h *HawkBit) refuse(ctx context.Context, id string, err error) error {
	if err == nil || transient(err) {
		return err
	}
	return h.feedback(ctx, id, execClosed, finishedFailure, err.Error())
}

// manifest fetches the signed manifest and its signature artifacts and
// verifies them.
func (h *HawkBit) manifest(ctx context.Context, d *ddiDeploymentBase) (*Manifest, error) {
	doc, err := h.artifact(ctx, d, ManifestArtifact)
	if err != nil {
		return nil, err
	}
	sig, err := h.artifact(ctx, d, SignatureArtifact)
	if err != nil {
		return nil, err
	}
	return h.m.verify("hawkBit action "+d.ID+" "+ManifestArtifact, doc, sig)
}

// artifact downloads a small artifact and checks it against hawkBit's size
// and SHA-256.
func (h *HawkBit) artifact(ctx context.Context, d *ddiDeploymentBase, name string) ([]byte, error) {
	a := d.artifact(name)
	if a == nil {
		return nil, fmt.Errorf("hawkBit action %s: %w: no artifact %q", d.ID, ErrArtifactMismatch, name)
	}
	b, err := h.client.getMax(ctx, a.href(), maxManifestSize, h.o.Timeout)
	if err != nil {
		return nil, err
	}
	if err := matchArtifact(a, int64(len(b)), sha256Hex(b), "the downloaded file"); err != nil {
		return nil, fmt.Errorf("hawkBit action %s: %w", d.ID, err)
	}
	return b, nil
}

// matchArtifact compares what hawkBit announces for artifact a with the
// size and SHA-256 it must have according to what (the file itself, or the
// signed manifest).
func matchArtifact(a *ddiArtifact, size int64, sum, what string) error {
	if a.Size != size || !strings.EqualFold(a.Hashes.SHA256, sum) {
		return fmt.Errorf("%w: %s: hawkBit announces %d bytes, sha256 %q; %s says %d bytes, sha256 %s",
			ErrArtifactMismatch, a.Filename, a.Size, a.Hashes.SHA256, what, size, sum)
	}
	return nil
}

// download fetches the payload artifact named by the manifest into the
// Manager's work directory, resuming a partial download.
func (h *HawkBit) download(ctx context.Context, d *ddiDeploymentBase, man *Manifest) (string, error) {
	name, err := payloadName(man)
	if err != nil {
		return "", err
	}
	a := d.artifact(name)
	if a == nil {
		return "", fmt.Errorf("hawkBit action %s: %w: no payload artifact %q", d.ID, ErrArtifactMismatch, name)
	}
	if err := matchArtifact(a, man.Size, man.SHA256, "the signed manifest"); err != nil {
		return "", fmt.Errorf("hawkBit action %s: %w", d.ID, err)
	}
	part := h.m.payloadPath(man)
	err = h.fetch.Payload(ctx, a.href(), part, man, h.progress(ctx, d.ID))
	if errors.Is(err, ErrTruncated) {
		h.feedback(ctx, d.ID, execProceeding, finishedNone, "download interrupted, resuming at the next poll: "+err.Error())
	}
	return part, err
}

// payloadName is the artifact file name of the manifest's payload.
func payloadName(man *Manifest) (string, error) {
	u, err := url.Parse(man.URL)
	if err != nil || path.Base(u.Path) == "." || path.Base(u.Path) == "/" {
		return "", fmt.Errorf("%w: manifest url %q names no file", ErrArtifactMismatch, man.URL)
	}
	return path.Base(u.Path), nil
}

// progress tracks the download in the Manager's status and reports it to
// hawkBit in steps of 10 %.
func (h *HawkBit) progress(ctx context.Context, id string) func(done, total int64) {
	track := h.m.progress(PhaseDownloading)
	last := -1
	return func(done, total int64) {
		track(done, total)
		if total <= 0 {
			return
		}
		if step := int(done * 10 / total); step != last {
			last = step
			fb := newFeedback(id, execProceeding, finishedNone, time.Now(), fmt.Sprintf("downloading: %d of %d bytes", done, total))
			fb.Status.Result.Progress = &ddiProgress{Cnt: step, Of: 10}
			if err := h.postFeedback(ctx, id, fb); err != nil {
				h.o.Log.Warn("hawkBit progress feedback", "err", err)
			}
		}
	}
}

// downloaded reports a verified payload once per action. It runs within
// Poll, which holds h.poll.
func (h *HawkBit) downloaded(ctx context.Context, id string, man *Manifest) error {
	if h.reported == id {
		return nil
	}
	if err := h.feedback(ctx, id, execDownloaded, finishedNone, fmt.Sprintf("%s verified: signature, %d bytes, sha256 %s", man.Version, man.Size, man.SHA256)); err != nil {
		return err
	}
	h.reported = id
	return nil
}

// dropDownloads deletes the payloads downloaded or partly downloaded for
// hawkBit actions (kept across restarts while they wait for their install
// window), unless an update is running.
func (h *HawkBit) dropDownloads() {
	if !h.m.busy.TryLock() {
		return
	}
	defer h.m.busy.Unlock()
	parts, _ := filepath.Glob(filepath.Join(h.m.o.Dir, "payload-*.part"))
	for _, p := range parts {
		os.Remove(p)
	}
}

// cancel answers the server's cancel request at href: closed/success when
// nothing was installed yet (a held download is dropped), rejected when the
// update is already installed.
func (h *HawkBit) cancel(ctx context.Context, href string) error {
	body, err := h.client.get(ctx, href, h.o.Timeout)
	if err != nil {
		return err
	}
	c, err := parseCancelAction(href, body)
	if err != nil {
		return err
	}
	u := h.base + "/cancelAction/" + url.PathEscape(c.ID) + "/feedback"
	stop := c.CancelAction.StopID
	if h.installed(stop) {
		fb := newFeedback(c.ID, execRejected, finishedNone, time.Now(), "too late: action "+stop+" is installed and awaits its restart and health checks")
		return h.client.send(ctx, "POST", u, fb, h.o.Timeout)
	}
	h.dropDownloads()
	h.o.Log.Info("hawkBit action cancelled before installation", "action", stop)
	fb := newFeedback(c.ID, execClosed, finishedSuccess, time.Now(), "cancelled before installation")
	return h.client.send(ctx, "POST", u, fb, h.o.Timeout)
}

// storedFeedback is a final feedback that must reach the server even
// across restarts.
type storedFeedback struct {
	Action   string      `json:"action"`
	Feedback ddiFeedback `json:"feedback"`
}

func (h *HawkBit) feedbackPath() string { return filepath.Join(h.m.o.Dir, "hawkbit-feedback.json") }

// finished is the Manager's hook: the update of action ended after the
// restart (err nil: health checks passed and the version was confirmed).
// The final feedback is stored first and sent by the next poll.
func (h *HawkBit) finished(action string, err error) {
	var fb ddiFeedback
	if err != nil {
		fb = newFeedback(action, execClosed, finishedFailure, time.Now(), err.Error())
	} else {
		fb = newFeedback(action, execClosed, finishedSuccess, time.Now(), "running "+h.m.o.Running+"; health checks passed")
		if st := h.m.Status(); st.Health != nil {
			fb.Status.Details = append(fb.Status.Details, st.Health.String())
		}
	}
	if err := saveJSON(h.feedbackPath(), storedFeedback{Action: action, Feedback: fb}); err != nil {
		h.o.Log.Error("storing the hawkBit feedback", "action", action, "err", err)
	}
}

// sendStored delivers the stored final feedback, if any.
func (h *HawkBit) sendStored(ctx context.Context) error {
	var s storedFeedback
	ok, err := loadJSON(h.feedbackPath(), &s)
	if !ok || err != nil {
		return err
	}
	if err := h.postFeedback(ctx, s.Action, s.Feedback); err != nil {
		return err
	}
	h.o.Log.Info("hawkBit action closed", "action", s.Action, "result", s.Feedback.Status.Result.Finished)
	return removeSynced(h.feedbackPath())
}
