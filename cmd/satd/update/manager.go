package update

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Phase is the stage an update is in.
type Phase string

// The phases, in order.
const (
	PhaseIdle        Phase = "idle"
	PhaseChecking    Phase = "checking"
	PhaseDownloading Phase = "downloading"
	PhaseInstalling  Phase = "installing"
	PhaseRestarting  Phase = "restarting"
	PhaseHealth      Phase = "health-check"
	PhaseDone        Phase = "done"
	PhaseFailed      Phase = "failed"
)

// Status is a snapshot of the update state for the web form.
type Status struct {
	Phase   Phase         `json:"phase"`
	Version string        `json:"version,omitempty"` // version being installed
	Running string        `json:"running"`
	Done    int64         `json:"done"`
	Total   int64         `json:"total"`
	Percent int           `json:"percent"`
	Outcome string        `json:"outcome,omitempty"`
	Err     string        `json:"error,omitempty"`
	Health  *HealthReport `json:"health,omitempty"`
	Updated time.Time     `json:"updated"`
}

// Options configure a Manager.
type Options struct {
	Policy
	// ManifestURL is polled; its signature is at ManifestURL + ".minisig".
	ManifestURL string
	// Dir holds downloads and pending.json (a directory outside the slots).
	Dir string
	// Kind is what this box installs: KindRAUC or KindBinary.
	Kind Kind
	// MaxSize caps a payload's size.
	MaxSize int64
	// RAUC installs image updates (Kind == KindRAUC).
	RAUC RAUC
	// Slots holds the executables of binary updates (Kind == KindBinary).
	Slots Slots
	// ConfigPath is checked by a staged binary with -check ("" to skip).
	ConfigPath string
	// Health feeds the post-update health checks.
	Health HealthSource
	// HealthTimeout bounds the post-update health checks.
	HealthTimeout time.Duration
	// Restart is called after an install (rollback false: reboot, or exit
	// so that the launcher starts the new binary) and after failed health
	// checks (rollback true).
	Restart func(rollback bool)
	// Refuse, if not empty, is why installs are refused (a binary update
	// without satd launch to restart it); polling then only reports.
	Refuse  string
	Fetcher *Fetcher
	Log     *slog.Logger
}

// Manager runs updates: polled or uploaded, verified, installed, confirmed.
type Manager struct {
	o        Options
	verifier *Verifier
	busy     sync.Mutex // one update at a time
	mu       sync.Mutex
	st       Status
	// finished, if set, learns how an update driven by an external action
	// (hawkBit) ended: confirmed (err nil), failed or rolled back.
	finished func(action string, err error)
	// check, if set, replaces the manifest poll of Check (hawkBit).
	check func(ctx context.Context) error
}

// pending is what survives the restart into the new version.
type pending struct {
	Version  string    `json:"version"`
	From     string    `json:"from"`
	Kind     Kind      `json:"kind"`
	Baseline Baseline  `json:"baseline"`
	Started  time.Time `json:"started"`
	// Action is the hawkBit action id that installed this update ("" if
	// none): the new version reports the outcome to it.
	Action string `json:"action,omitempty"`
}

// New checks the options and returns a Manager.
func New(o Options) (*Manager, error) {
	v, err := NewVerifier(o.Policy)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if o.Kind != KindRAUC && o.Kind != KindBinary {
		return nil, fmt.Errorf("update: install kind %q: want %q or %q", o.Kind, KindRAUC, KindBinary)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if o.Fetcher == nil {
		o.Fetcher = &Fetcher{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{o: o, verifier: v}
	m.st = Status{Phase: PhaseIdle, Running: o.Running, Updated: time.Now()}
	return m, nil
}

// Status returns a snapshot of the update state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

func (m *Manager) set(f func(*Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.st)
	m.st.Updated = time.Now()
}

func (m *Manager) progress(phase Phase) func(done, total int64) {
	return func(done, total int64) {
		m.set(func(s *Status) {
			s.Phase, s.Done, s.Total = phase, done, total
			if total > 0 {
				s.Percent = int(done * 100 / total)
			}
		})
	}
}

// fail records err as the outcome and returns it.
func (m *Manager) fail(err error) error {
	m.o.Log.Error("update failed", "err", err)
	m.set(func(s *Status) { s.Phase, s.Err = PhaseFailed, err.Error() })
	return err
}

// Check polls the manifest once and installs a newer update. It returns
// nil (and does nothing) when the box already runs the announced version.
func (m *Manager) Check(ctx context.Context) error {
	if m.check != nil {
		return m.check(ctx)
	}
	if !m.busy.TryLock() {
		return ErrBusy
	}
	defer m.busy.Unlock()
	m.set(func(s *Status) { *s = Status{Phase: PhaseChecking, Running: m.o.Running} })
	doc, err := m.o.Fetcher.Small(ctx, m.o.ManifestURL, maxManifestSize)
	if err != nil {
		return m.fail(err)
	}
	sig, err := m.o.Fetcher.Small(ctx, m.o.ManifestURL+".minisig", maxManifestSize)
	if err != nil {
		return m.fail(err)
	}
	man, err := m.verify(m.o.ManifestURL, doc, sig)
	if errors.Is(err, ErrUpToDate) {
		m.set(func(s *Status) { s.Phase, s.Outcome = PhaseIdle, "up to date" })
		return nil
	}
	if err != nil {
		return m.fail(err)
	}
	url, err := man.PayloadURL(m.o.ManifestURL)
	if err != nil {
		return m.fail(err)
	}
	part := m.payloadPath(man)
	if err := m.o.Fetcher.Payload(ctx, url, part, man, m.progress(PhaseDownloading)); err != nil {
		return m.fail(err)
	}
	return m.install(ctx, man, part, "")
}

// InstallUpload installs an update uploaded through the web form: the
// manifest, its minisign signature, and the payload stream. progress is
// called as the payload is received (phase downloading); the status then
// moves through installing to restarting. It returns once the update is
// installed and the restart requested, or with the error that refused it.
func (m *Manager) InstallUpload(ctx context.Context, manifest, sig []byte, payload io.Reader, progress func(done, total int64)) error {
	if !m.busy.TryLock() {
		return ErrBusy
	}
	defer m.busy.Unlock()
	m.set(func(s *Status) { *s = Status{Phase: PhaseChecking, Running: m.o.Running} })
	man, err := m.verify("uploaded manifest", manifest, sig)
	if err != nil {
		return m.fail(err)
	}
	track := m.progress(PhaseDownloading)
	both := func(done, total int64) {
		track(done, total)
		if progress != nil {
			progress(done, total)
		}
	}
	part := m.payloadPath(man)
	if err := receive(payload, part, man, both); err != nil {
		return m.fail(err)
	}
	return m.install(ctx, man, part, "")
}

func (m *Manager) verify(name string, doc, sig []byte) (*Manifest, error) {
	man, err := m.verifier.Verify(name, doc, sig)
	if err != nil {
		return nil, err
	}
	if man.Kind != m.o.Kind {
		return nil, fmt.Errorf("%s: %w: %s (this box installs %s)", name, ErrWrongKind, man.Kind, m.o.Kind)
	}
	if m.o.MaxSize > 0 && man.Size > m.o.MaxSize {
		return nil, fmt.Errorf("%s: %w: %d bytes exceeds the configured max_size %d", name, ErrPayloadTooLarge, man.Size, m.o.MaxSize)
	}
	m.set(func(s *Status) { s.Version, s.Total = man.Version, man.Size })
	return man, nil
}

func (m *Manager) payloadPath(man *Manifest) string {
	return filepath.Join(m.o.Dir, fmt.Sprintf("payload-%s-%x.part", man.Version, man.digest[:4]))
}

// receive writes an uploaded payload to path, bounded by and verified
// against the manifest.
func receive(r io.Reader, path string, man *Manifest, progress func(done, total int64)) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("receive payload: %w", err)
	}
	h := sha256.New()
	pr := &progressReader{r: io.LimitReader(r, man.Size), total: man.Size, fn: progress}
	n, copyErr := io.Copy(io.MultiWriter(out, h), pr)
	if err := closeSynced(out); err != nil && copyErr == nil {
		copyErr = err
	}
	if err := finishDownload("upload", r, n, man.Size, copyErr); err != nil {
		os.Remove(path)
		return err
	}
	if [32]byte(h.Sum(nil)) != man.digest {
		os.Remove(path)
		return fmt.Errorf("upload: %w", ErrPayloadDigest)
	}
	return nil
}

// install hands a verified payload to RAUC or the binary slots, records
// what the new version must prove after the restart, and requests it.
func (m *Manager) install(ctx context.Context, man *Manifest, path, action string) error {
	defer os.Remove(path)
	if m.o.Refuse != "" {
		return m.fail(fmt.Errorf("install %s: %w: %s", man.Version, ErrWrongKind, m.o.Refuse))
	}
	m.set(func(s *Status) { s.Phase, s.Percent = PhaseInstalling, 0 })
	p := pending{Version: man.Version, From: m.o.Running, Kind: man.Kind, Started: time.Now(), Action: action}
	if m.o.Health != nil {
		p.Baseline = BaselineOf(m.o.Health)
	}
	if err := saveJSON(m.pendingPath(), p); err != nil {
		return m.fail(err)
	}
	if err := m.installPayload(ctx, man, path); err != nil {
		removeSynced(m.pendingPath())
		return m.fail(err)
	}
	outcome := fmt.Sprintf("installed %s, restarting", man.Version)
	m.o.Log.Info("update installed", "version", man.Version, "kind", man.Kind)
	m.set(func(s *Status) { s.Phase, s.Percent, s.Outcome = PhaseRestarting, 100, outcome })
	if m.o.Restart != nil {
		m.o.Restart(false)
	}
	return nil
}

func (m *Manager) installPayload(ctx context.Context, man *Manifest, path string) error {
	if man.Kind == KindRAUC {
		return m.o.RAUC.Install(ctx, path, func(pct int, msg string) {
			m.set(func(s *Status) { s.Percent, s.Outcome = pct, msg })
		})
	}
	exe, err := m.o.Slots.Stage(ctx, path, man.Version, m.o.ConfigPath)
	if err != nil {
		return err
	}
	m.set(func(s *Status) { s.Percent = 50 })
	return m.o.Slots.Switch(exe, man.Version)
}

func (m *Manager) pendingPath() string { return filepath.Join(m.o.Dir, "pending.json") }

// ConfirmBoot runs after the daemon started: if an update is pending, it
// runs the health checks and confirms the new version (rauc mark-good, or
// ending the binary trial), or rejects it and requests the rollback. It
// reports a rollback that already happened (the running version is not the
// pending one). It returns nil when nothing was pending.
func (m *Manager) ConfirmBoot(ctx context.Context) error {
	var p pending
	ok, err := loadJSON(m.pendingPath(), &p)
	if !ok || err != nil {
		return err
	}
	if p.Version != m.o.Running {
		defer removeSynced(m.pendingPath())
		return m.report(p, m.fail(fmt.Errorf("update to %s failed and was rolled back to %s%s", p.Version, m.o.Running, m.rollbackReason())))
	}
	m.set(func(s *Status) { s.Phase, s.Version = PhaseHealth, p.Version })
	rep := CheckHealth(ctx, m.o.Health, p.Baseline, m.o.HealthTimeout, 500*time.Millisecond)
	m.set(func(s *Status) { s.Health = &rep })
	if !rep.Passed {
		return m.reject(ctx, p, rep) // pending stays for the version rolled back to
	}
	if err := m.confirm(ctx, p); err != nil {
		return m.report(p, m.fail(err))
	}
	m.report(p, nil)
	removeSynced(m.pendingPath())
	m.o.Log.Info("update confirmed", "from", p.From, "to", p.Version, "health", rep.String())
	m.set(func(s *Status) {
		s.Phase, s.Outcome = PhaseDone, fmt.Sprintf("updated from %s to %s; health checks passed", p.From, p.Version)
	})
	return nil
}

// report tells the finished hook how the update of action p ended, and
// returns err.
func (m *Manager) report(p pending, err error) error {
	if p.Action != "" && m.finished != nil {
		m.finished(p.Action, err)
	}
	return err
}

func (m *Manager) confirm(ctx context.Context, p pending) error {
	if p.Kind == KindRAUC {
		return m.o.RAUC.MarkGood(ctx)
	}
	return m.o.Slots.Confirm(p.Version)
}

func (m *Manager) reject(ctx context.Context, p pending, rep HealthReport) error {
	var err error
	if p.Kind == KindRAUC {
		err = m.o.RAUC.MarkBad(ctx)
	} else {
		err = m.o.Slots.Reject(p.Version, rep.String())
	}
	failure := m.fail(fmt.Errorf("%w after updating to %s: %s; rolling back", ErrHealth, p.Version, rep))
	if err != nil {
		m.o.Log.Error("marking the update bad failed", "err", err)
	}
	if m.o.Restart != nil {
		m.o.Restart(true)
	}
	return failure
}

func (m *Manager) rollbackReason() string {
	if m.o.Kind != KindBinary {
		return ""
	}
	if o, _ := m.o.Slots.LoadOutcome(); o != nil && o.Reason != "" {
		return ": " + o.Reason
	}
	return ""
}

// Poll calls Check every interval plus a random jitter of up to a quarter
// of it, so that a fleet switched on together does not poll together; the
// first check comes after a jitter alone. It returns when ctx is done.
func (m *Manager) Poll(ctx context.Context, interval time.Duration) {
	wait := Jitter(interval, rand.Float64())
	for sleepCtx(ctx, wait) {
		if err := m.Check(ctx); err != nil && !errors.Is(err, ErrBusy) {
			m.o.Log.Warn("update check failed", "err", err)
		}
		wait = interval + Jitter(interval, rand.Float64())
	}
}

// Jitter returns the random part of a poll delay: up to a quarter of the
// interval, scaled by r in [0, 1).
func Jitter(interval time.Duration, r float64) time.Duration {
	return time.Duration(r * float64(interval/4))
}
