package update

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRAUC is a shell script standing in for rauc on PATH: it appends its
// argv to a log and prints what rauc 1.8 prints.
const fakeRAUC = `#!/bin/sh
echo "$*" >> "$RAUC_LOG"
case "$1" in
install)
	echo "installing"
	echo "  0% Installing"
	echo " 40% Checking bundle done."
	echo "100% Installing done."
	[ -n "$RAUC_FAIL" ] && { echo "signature verification failed" >&2; exit 1; }
	echo "Installing '$2' succeeded" ;;
status)
	case "$2" in
	mark-good|mark-bad) echo "marked slot rootfs.0 as $2" ;;
	*) cat "$RAUC_STATUS" ;;
	esac ;;
esac
`

// fakeHealth is a HealthSource with settable answers.
type fakeHealth struct {
	cfgErr  error
	url     string
	readers []string
	mounts  []string
}

func (f *fakeHealth) ConfigLoaded() error    { return f.cfgErr }
func (f *fakeHealth) WebURL() string         { return f.url }
func (f *fakeHealth) ReadyReaders() []string { return f.readers }
func (f *fakeHealth) UpMounts() []string     { return f.mounts }

func installFakeRAUC(t *testing.T) (logPath string) {
	t.Helper()
	skipUnlessHostTools(t, "sh")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rauc"), []byte(fakeRAUC), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "argv.log")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("RAUC_LOG", logPath)
	t.Setenv("RAUC_STATUS", "testdata/rauc-status.json")
	return logPath
}

func raucManager(t *testing.T, key testKey, running string, dir string, h HealthSource, restarts *[]bool) *Manager {
	t.Helper()
	p := testPolicy(key.pubText(t))
	p.Running = running
	m, err := New(Options{Policy: p, Dir: dir, Kind: KindRAUC, RAUC: &RAUCCommand{}, Health: h,
		HealthTimeout: 300 * time.Millisecond, Restart: func(rb bool) { *restarts = append(*restarts, rb) }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRAUCCommandSequence drives the real RAUCCommand against a fake rauc:
// upload and install, reboot, health checks pass → mark-good; on a second
// box they fail → mark-bad and a rollback reboot; the old slot reports it.
func TestRAUCCommandSequence(t *testing.T) {
	logPath := installFakeRAUC(t)
	key := newTestKey(t)
	bundle := []byte("a RAUC bundle, as far as satd cares")
	doc := manifestFor(t, bundle, func(m *Manifest) { m.Kind = KindRAUC })
	web := newLocalServer(t, nil)
	for _, tc := range []struct {
		name    string
		health  *fakeHealth
		wantLog string
	}{
		{"healthy", &fakeHealth{url: web.URL, readers: []string{"slot0"}}, "status mark-good booted\n"},
		{"reader lost", &fakeHealth{url: web.URL}, "status mark-bad booted\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(logPath)
			dir := t.TempDir()
			var restarts []bool
			before := &fakeHealth{readers: []string{"slot0"}}
			old := raucManager(t, key, "1.0.0", dir, before, &restarts)
			var last int64
			if err := old.InstallUpload(context.Background(), doc, key.sign(doc), bytes.NewReader(bundle), func(d, _ int64) { last = d }); err != nil {
				t.Fatal(err)
			}
			if st := old.Status(); st.Phase != PhaseRestarting || st.Percent != 100 || last != int64(len(bundle)) {
				t.Errorf("after install: %+v (progress %d)", st, last)
			}
			booted := raucManager(t, key, "1.1.0", dir, tc.health, &restarts)
			err := booted.ConfirmBoot(context.Background())
			logged, _ := os.ReadFile(logPath)
			part := filepath.Join(dir, "payload-1.1.0-")
			want := "install " + part
			if !strings.HasPrefix(string(logged), want) || !strings.HasSuffix(string(logged), tc.wantLog) || strings.Count(string(logged), "\n") != 2 {
				t.Errorf("rauc calls:\n%s\nwant install %s... then %s", logged, part, tc.wantLog)
			}
			if tc.wantLog == "status mark-bad booted\n" {
				if !errors.Is(err, ErrHealth) || len(restarts) != 2 || !restarts[1] {
					t.Errorf("ConfirmBoot = %v, restarts %v; want ErrHealth and a rollback restart", err, restarts)
				}
				fallback := raucManager(t, key, "1.0.0", dir, before, &restarts)
				fallback.ConfirmBoot(context.Background())
				if st := fallback.Status(); !strings.Contains(st.Err, "update to 1.1.0 failed and was rolled back to 1.0.0") {
					t.Errorf("old slot reports %+v", st)
				}
				return
			}
			if err != nil || booted.Status().Phase != PhaseDone {
				t.Errorf("ConfirmBoot = %v, status %+v", err, booted.Status())
			}
		})
	}
}

func TestRAUCInstallFailureIsReported(t *testing.T) {
	installFakeRAUC(t)
	t.Setenv("RAUC_FAIL", "1")
	var pcts []int
	err := (&RAUCCommand{}).Install(context.Background(), "/data/update/b.raucb", func(p int, _ string) { pcts = append(pcts, p) })
	if err == nil || !strings.Contains(err.Error(), "signature verification failed") {
		t.Fatalf("Install = %v, want rauc's message", err)
	}
	if len(pcts) != 3 || pcts[2] != 100 {
		t.Errorf("progress %v", pcts)
	}
}

func TestRAUCStatus(t *testing.T) {
	installFakeRAUC(t)
	st, err := (&RAUCCommand{}).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Compatible != "satrx-arm-v1" || st.Booted != "A" || len(st.Slots) != 2 || st.Slots[1].Version != "1.1.0" || st.Slots[0].BootStatus != "good" {
		t.Errorf("status %+v", st)
	}
}

func FuzzParseRAUCStatus(f *testing.F) {
	b, _ := os.ReadFile("testdata/rauc-status.json")
	f.Add(b)
	f.Add([]byte(`{"slots":[{"x":1}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) { ParseRAUCStatus(doc) })
}

func FuzzParseRAUCProgress(f *testing.F) {
	for _, s := range []string{" 40% Checking bundle done.", "100% Installing done.", "%", "-1% x", "installing"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if p, _, ok := ParseRAUCProgress(line); ok && (p < 0 || p > 100) {
			t.Fatalf("percent %d", p)
		}
	})
}
