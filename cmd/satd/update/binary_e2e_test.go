package update

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// skipUnlessHostTools skips tests that build or exec host programs when the
// suite runs cross-compiled under qemu or in -short mode.
func skipUnlessHostTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("SATD_CROSS_TEST") != "" || testing.Short() {
		t.Skip("execs host tools: not under qemu or -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// buildFake builds testdata/fakesatd with the given version and mode.
func buildFake(t *testing.T, dir, version, mode string) []byte {
	t.Helper()
	out := filepath.Join(dir, "fakesatd-"+version)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version+" -X main.mode="+mode, "-o", out, "./testdata/fakesatd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fakesatd %s: %v\n%s", version, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// releaseServer serves one signed manifest and its payload at a time.
type releaseServer struct {
	mu               sync.Mutex
	doc, sig, binary []byte
}

func (s *releaseServer) publish(t *testing.T, k testKey, version string, binary []byte) {
	doc := manifestFor(t, binary, func(m *Manifest) {
		m.Version, m.Board, m.MinVersion, m.URL = version, "satrx-test", "", "bin/satd-"+version
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.sig, s.binary = doc, k.sign(doc), binary
}

func (s *releaseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/satd-update.json":
		w.Write(s.doc)
	case r.URL.Path == "/satd-update.json.minisig":
		w.Write(s.sig)
	case strings.HasPrefix(r.URL.Path, "/bin/"):
		http.ServeContent(w, r, "satd", time.Time{}, bytes.NewReader(s.binary))
	default:
		http.NotFound(w, r)
	}
}

type readyFile struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	URL     string `json:"url"`
}

// waitReady waits until the readiness file names version from a process
// other than notPID.
func waitReady(t *testing.T, path, version string, notPID int) readyFile {
	t.Helper()
	var r readyFile
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &r) == nil && r.Version == version && r.PID != notPID {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hung: satd %s (pid != %d) not ready after %s; last %+v", version, notPID, hangGuard, r)
	return r
}

// waitStatus polls the process's update status until cond holds.
func waitStatus(t *testing.T, url string, cond func(Status) bool) Status {
	t.Helper()
	var st Status
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		resp, err := http.Get(url + "/status")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if cond(st) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hung: status not in the expected state after %s; last %+v", hangGuard, st)
	return st
}

func triggerUpdate(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url+"/update", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %s: %s", resp.Status, body)
	}
}

// TestBinaryUpdateEndToEnd runs real processes under the real launcher:
// 1.0.0 installs 2.0.0, which passes its health checks and is kept; 2.0.0
// installs 3.0.0, whose web form never answers, so it is rolled back; 2.0.0
// installs 4.0.0, which crash-loops and is rolled back. The configuration
// file is untouched throughout.
func TestBinaryUpdateEndToEnd(t *testing.T) {
	skipUnlessHostTools(t, "go")
	build := t.TempDir()
	v1 := buildFake(t, build, "1.0.0", "good")
	v2 := buildFake(t, build, "2.0.0", "good")
	v3 := buildFake(t, build, "3.0.0", "noweb")
	v4 := buildFake(t, build, "4.0.0", "crash")

	state := t.TempDir()
	slots := Slots{Dir: state}
	cfg := filepath.Join(state, "satd.toml")
	cfgDoc := []byte("[web]\nlisten = \"127.0.0.1:0\"\n")
	if err := os.WriteFile(cfg, cfgDoc, 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(state, "bin"), 0o755)
	os.WriteFile(filepath.Join(state, "bin", "satd-1.0.0"), v1, 0o755)
	if err := slots.Adopt(filepath.Join(state, "bin", "satd-1.0.0")); err != nil {
		t.Fatal(err)
	}

	key := newTestKey(t)
	rel := &releaseServer{}
	srv := newLocalServer(t, rel)
	ready := filepath.Join(state, "ready.json")
	var logs bytes.Buffer
	l := &Launcher{
		Slots:         slots,
		Args:          []string{"-config", cfg, "-state", state, "-ready", ready, "-pubkey", key.pubText(t), "-manifest-url", srv.URL + "/satd-update.json"},
		MaxAttempts:   3,
		HealthTimeout: 30 * time.Second,
		Backoff:       100 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		t.Logf("launcher log:\n%s", logs.String())
	}()

	r1 := waitReady(t, ready, "1.0.0", 0)

	// A healthy update is kept.
	rel.publish(t, key, "2.0.0", v2)
	triggerUpdate(t, r1.URL)
	r2 := waitReady(t, ready, "2.0.0", 0)
	st := waitStatus(t, r2.URL, func(s Status) bool { return s.Phase == PhaseDone })
	if st.Health == nil || !st.Health.Passed || !strings.Contains(st.Outcome, "from 1.0.0 to 2.0.0") {
		t.Errorf("after update to 2.0.0: %+v", st)
	}
	checkKept(t, slots, "2.0.0", cfg, cfgDoc)

	// An update whose web form never answers is rolled back.
	rel.publish(t, key, "3.0.0", v3)
	triggerUpdate(t, r2.URL)
	r2b := waitReady(t, ready, "2.0.0", r2.PID)
	st = waitStatus(t, r2b.URL, func(s Status) bool { return s.Phase == PhaseFailed })
	if !strings.Contains(st.Err, "update to 3.0.0 failed and was rolled back to 2.0.0") || !strings.Contains(st.Err, "web form answers") {
		t.Errorf("after failed update to 3.0.0: %+v", st)
	}
	checkRolledBack(t, slots, "3.0.0", "health checks failed", "2.0.0", cfg, cfgDoc)

	// A crash-looping update is rolled back after MaxAttempts starts.
	rel.publish(t, key, "4.0.0", v4)
	triggerUpdate(t, r2b.URL)
	r2c := waitReady(t, ready, "2.0.0", r2b.PID)
	waitStatus(t, r2c.URL, func(s Status) bool { return s.Phase == PhaseFailed && strings.Contains(s.Err, "crash loop") })
	checkRolledBack(t, slots, "4.0.0", "crash loop: 3 starts", "2.0.0", cfg, cfgDoc)
}

func checkKept(t *testing.T, s Slots, version, cfg string, cfgDoc []byte) {
	t.Helper()
	if tr, _ := s.LoadTrial(); tr != nil {
		t.Errorf("trial still open: %+v", tr)
	}
	if o, _ := s.LoadOutcome(); o == nil || o.Version != version || o.Result != ResultKept {
		t.Errorf("outcome %+v, want %s kept", o, version)
	}
	if !strings.HasSuffix(s.Current(), "satd-"+version) {
		t.Errorf("current = %s, want satd-%s", s.Current(), version)
	}
	checkConfig(t, cfg, cfgDoc)
}

func checkRolledBack(t *testing.T, s Slots, version, reason, running, cfg string, cfgDoc []byte) {
	t.Helper()
	o, _ := s.LoadOutcome()
	if o == nil || o.Version != version || o.Result != ResultRolledBack || !strings.Contains(o.Reason, reason) {
		t.Errorf("outcome %+v, want %s rolled back (%s)", o, version, reason)
	}
	if !strings.HasSuffix(s.Current(), "satd-"+running) {
		t.Errorf("current = %s, want satd-%s", s.Current(), running)
	}
	checkConfig(t, cfg, cfgDoc)
}

func checkConfig(t *testing.T, cfg string, want []byte) {
	t.Helper()
	if got, err := os.ReadFile(cfg); err != nil || !bytes.Equal(got, want) {
		t.Errorf("configuration changed: %q, %v", got, err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
