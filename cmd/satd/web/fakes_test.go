package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
)

// fakeStatus holds a snapshot the test sets, like a tinygo fake holds
// register state.
type fakeStatus struct {
	mu sync.Mutex
	st Status
}

func (f *fakeStatus) Status() Status { f.mu.Lock(); defer f.mu.Unlock(); return f.st }

// fakeBalancer holds statistics rows and the settings it was last given by
// the apply path; Reset and Clear change its state.
type fakeBalancer struct {
	mu       sync.Mutex
	rows     []StatsRow
	settings string // "key=value" of the option the browser test changes
	reloads  int
}

func (f *fakeBalancer) Stats() []StatsRow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StatsRow(nil), f.rows...)
}

func (f *fakeBalancer) Decisions() []Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []Decision{{Service: "0B00@000000:0001", When: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Readers: []string{"slot0"},
		Explanation: "settings in force: " + f.settings}}
}

func (f *fakeBalancer) Reset(reader string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.rows[:0]
	for _, r := range f.rows {
		if reader != "" && r.Reader != reader {
			kept = append(kept, r)
		}
	}
	f.rows = kept
	return nil
}

func (f *fakeBalancer) Clear(reader, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rows {
		if r.Reader == reader && r.Key == key {
			f.rows = append(f.rows[:i], f.rows[i+1:]...)
			return nil
		}
	}
	return errors.New("no such row")
}

// reload takes the option under test from the configuration, as the real
// balancer's Reload takes its section.
func (f *fakeBalancer) reload(cfg *config.Config) {
	sec, key := balancerOption()
	_, v, _ := sectionField(cfg, sec)
	var val string
	walkFields(v, v, func(fl reflect.StructField, fv, _ reflect.Value) {
		if tomlName(fl) == key {
			val = formatScalar(fv)
		}
	})
	f.mu.Lock()
	f.settings = key + "=" + val
	f.reloads++
	f.mu.Unlock()
}

// balancerOption is the option the browser test changes: balancer.lb_mode
// once config.Config has a [balancer] section, log.level until then (an
// option applied in place all the same).
func balancerOption() (section, key string) {
	if _, _, ok := sectionField(config.Default(), "balancer"); ok {
		return "balancer", "lb_mode"
	}
	return "log", "level"
}

// fakeUpdater accepts an image whose content starts with "SIGNED".
type fakeUpdater struct {
	mu    sync.Mutex
	state UpdateState
	got   []byte
}

func (f *fakeUpdater) Install(ctx context.Context, name string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = b
	if !strings.HasPrefix(string(b), "SIGNED") {
		f.state = UpdateState{Phase: "failed", Message: "signature does not verify"}
		return errors.New("signature does not verify")
	}
	f.state = UpdateState{Phase: "installing", Done: int64(len(b)), Total: int64(len(b)), Current: "1.0", New: "1.1"}
	return nil
}

func (f *fakeUpdater) State() UpdateState { f.mu.Lock(); defer f.mu.Unlock(); return f.state }

// rig is a Server on a temporary configuration file with fakes behind it.
type rig struct {
	t        *testing.T
	srv      *Server
	path     string
	status   *fakeStatus
	balancer *fakeBalancer
	updater  *fakeUpdater
	logs     *LogRing
	mu       sync.Mutex
	cfg      *config.Config
	applies  int
	restarts int
	started  []string     // reader labels at start: a change needs a restart
	streamLn net.Listener // the fake stream relay's listener, when enabled
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newRig builds the server; listen "" picks a free loopback port.
func newRig(t *testing.T, listen string, edit func(*config.Config)) *rig {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Global.StateDir = dir
	if listen == "" {
		listen = freeAddr(t)
	}
	cfg.Web.Listen = listen
	// The defaults cover reader keys added later; constcw names no hardware.
	rd := config.DefaultReader()
	rd.Label, rd.Enable, rd.Protocol = "slot0", true, "constcw"
	cfg.Readers = []config.Reader{rd}
	if edit != nil {
		edit(cfg)
	}
	r := &rig{t: t, path: filepath.Join(dir, "satd.toml"), cfg: cfg, status: &fakeStatus{}, balancer: &fakeBalancer{}, updater: &fakeUpdater{}, logs: NewLogRing(100)}
	if err := config.Save(r.path, cfg); err != nil {
		t.Fatal(err)
	}
	r.balancer.reload(cfg)
	for _, rd := range cfg.Readers {
		r.started = append(r.started, rd.Label)
	}
	r.balancer.rows = []StatsRow{
		{Reader: "slot0", Key: "0B00@000000:0001:0000:64", Channel: "Demo One", Result: "found", Count: 12, Avg: 180 * time.Millisecond, Last: 170 * time.Millisecond},
		{Reader: "slot0", Key: "0B00@000000:0002:0000:64", Channel: "Demo Two", Result: "timeout", Count: 2, FailFactor: 3},
	}
	log := slog.New(r.logs.Handler())
	srv, err := New(Options{
		Names:      &channels.Names{},
		Config:     r.current,
		ConfigPath: r.path,
		Apply:      r.apply,
		Restart:    func() error { r.mu.Lock(); r.restarts++; r.mu.Unlock(); return nil },
		Status:     r.status,
		Balancer:   r.balancer,
		Updater:    r.updater,
		Logs:       r.logs,
		Log:        log,
		Version:    "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	return r
}

func (r *rig) current() *config.Config { r.mu.Lock(); defer r.mu.Unlock(); return r.cfg }

// apply is the daemon's apply path in miniature: every component's Reload
// and its outcome. Readers need a restart for a changed list; the stream
// relay binds a new listen address and fails when it cannot.
func (r *rig) apply(cfg *config.Config) ApplyResult {
	r.mu.Lock()
	r.cfg = cfg
	r.applies++
	r.mu.Unlock()
	r.balancer.reload(cfg)
	res := ApplyResult{{Component: "balancer", Outcome: Applied}, r.applyReaders(cfg), r.applyStream(cfg)}
	web := ComponentResult{Component: "web", Outcome: Applied}
	if err := r.srv.Reload(cfg); err != nil {
		web.Outcome, web.Reason = Failed, err.Error()
	}
	return append(res, web)
}

func (r *rig) applyReaders(cfg *config.Config) ComponentResult {
	var now []string
	for _, rd := range cfg.Readers {
		now = append(now, rd.Label)
	}
	if !slices.Equal(now, r.started) {
		return ComponentResult{Component: "readers", Outcome: RestartNeeded, Reason: "reader list changed"}
	}
	return ComponentResult{Component: "readers", Outcome: Applied}
}

func (r *rig) applyStream(cfg *config.Config) ComponentResult {
	res := ComponentResult{Component: "stream", Outcome: Applied}
	if !cfg.Stream.Enabled || r.streamLn != nil && r.streamLn.Addr().String() == cfg.Stream.Listen {
		return res
	}
	ln, err := net.Listen("tcp", cfg.Stream.Listen)
	if err != nil {
		res.Outcome, res.Reason = Failed, err.Error()
		return res
	}
	if r.streamLn != nil {
		r.streamLn.Close()
	}
	r.streamLn = ln
	r.t.Cleanup(func() { ln.Close() })
	return res
}

func (r *rig) start() {
	r.t.Helper()
	if err := r.srv.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.srv.Stop(ctx)
	})
}

func (r *rig) url(path string) string { return "http://" + r.srv.Addr() + path }

// loggedInClient sets the password (from loopback) and returns a client
// holding the session cookie.
func (r *rig) loggedInClient() *http.Client {
	r.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 2 * time.Minute} // a hang guard: a login hashes a password, slow under load
	if !r.srv.pw.isSet() {
		if err := r.srv.pw.set("correct horse"); err != nil {
			r.t.Fatal(err)
		}
	}
	resp, err := c.PostForm(r.url("/login"), url.Values{"password": {"correct horse"}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		r.t.Fatalf("login ended on %s", resp.Request.URL)
	}
	return c
}

func (r *rig) savedConfig() *config.Config {
	r.t.Helper()
	cfg, err := config.Load(r.path)
	if err != nil {
		r.t.Fatalf("saved configuration: %v", err)
	}
	return cfg
}

func body(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var _ = fmt.Sprint
var _ = os.Getenv

func logRecord(msg string) slog.Record {
	return slog.NewRecord(time.Now(), slog.LevelWarn, msg, 0)
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	return body(t, resp, err)
}

// newAttacker serves, from another origin (localhost instead of 127.0.0.1,
// another port), a page that auto-submits a POST form to target.
func newAttacker(t *testing.T, target string) string {
	t.Helper()
	page := `<!doctype html><html><body><form id="f" method="post" action="` + target + `"></form>` +
		`<script>document.getElementById('f').submit()</script></body></html>`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://localhost:" + port + "/"
}
