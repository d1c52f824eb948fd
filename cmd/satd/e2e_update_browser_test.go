package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/chromedp/chromedp"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/update"
	"satd.dev/satd/internal/browsertest"
)

// TestBrowserFirmwareUpload uploads signed updates through the System page
// of a real satd 1.0.0 running under `satd launch`, in headless Chromium:
// a tampered image is refused with its reason; a good one shows the upload
// and install progress, satd restarts into 1.1.0, and the same page, still
// logged in, shows the health checks passing and the new version running.
func TestBrowserFirmwareUpload(t *testing.T) {
	skipUnlessBuildTools(t)
	ctx := browsertest.New(t)
	dir := t.TempDir()
	v1 := buildSatd(t, dir, "1.0.0")
	v2 := buildSatd(t, dir, "1.1.0")
	pub, priv, err := minisign.GenerateKey(rand.Reader) // made for this test; no key is kept
	if err != nil {
		t.Fatal(err)
	}
	cfgPath, cfgDoc, base := updateTestConfig(t, dir, pub.String())
	good := updateArchive(t, dir, "good.tar", v2, "1.1.0", priv, nil)
	tampered := updateArchive(t, dir, "tampered.tar", v2, "1.1.0", priv, func(p []byte) []byte {
		q := bytes.Clone(p)
		q[len(q)/2] ^= 0xFF
		return q
	})
	launch := startLaunch(t, v1, filepath.Join(dir, "state", "update"), cfgPath)
	waitHTTP(t, base)

	browsertest.Step(t, ctx, "first-time password", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("setup")),
		chromedp.SetValue(chromedp.ID("password"), "correct horse"), chromedp.SetValue(chromedp.ID("repeat"), "correct horse"),
		chromedp.Click(chromedp.ID("setup")), chromedp.WaitVisible(chromedp.ID("uptime")))

	t.Run("tampered image refused", func(t *testing.T) {
		phase, msg, _ := uploadFirmware(t, ctx, base, tampered)
		if phase != "refused" || !strings.Contains(msg, "payload") || !strings.Contains(msg, "SHA-256") {
			t.Errorf("phase %q, message %q; want the refusal naming the payload digest", phase, msg)
		}
		if got := browsertest.Text(t, ctx, "#update-running"); got != "1.0.0" {
			t.Errorf("running %q after a refused update, want 1.0.0", got)
		}
		browsertest.Screenshot(t, ctx, "firmware-refused")
	})
	t.Run("good image installed and confirmed", func(t *testing.T) {
		phase, msg, seen := uploadFirmware(t, ctx, base, good)
		if phase != "done" || !strings.Contains(msg, "updated from 1.0.0 to 1.1.0; health checks passed") {
			t.Errorf("phase %q, message %q; want done with the health checks passed", phase, msg)
		}
		if got := browsertest.Text(t, ctx, "#update-running"); got != "1.1.0" {
			t.Errorf("running %q, want 1.1.0", got)
		}
		// restarting and health-check pass between two polls on a fast
		// machine; done comes from 1.1.0, so the login survived the restart.
		for _, want := range []string{"uploading", "installing", "done"} {
			if !strings.Contains(seen, want) {
				t.Errorf("the page never showed %q; phases shown: %s", want, seen)
			}
		}
		browsertest.Screenshot(t, ctx, "firmware-done")
	})
	if got, err := os.ReadFile(cfgPath); err != nil || !bytes.Equal(got, cfgDoc) {
		t.Errorf("configuration changed by the update: %v", err)
	}
	launch.check(t, "1.1.0")
}

// uploadFirmware picks archive on the System page, submits it and waits for
// the page to show an outcome. It returns the phase and message shown last
// and every phase the page showed meanwhile.
func uploadFirmware(t *testing.T, ctx context.Context, base, archive string) (phase, msg, seen string) {
	t.Helper()
	browsertest.Step(t, ctx, "system page", chromedp.Navigate(base+"/system"), chromedp.WaitVisible(chromedp.ID("firmware-form")))
	// Record every phase the page shows: the steps pass too fast to poll.
	const observe = `window.__phases = [];
new MutationObserver(() => window.__phases.push(document.getElementById("update-phase").textContent))
  .observe(document.getElementById("update-phase"), {childList: true, characterData: true, subtree: true}); true`
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Evaluate[bool](observe)); err != nil {
		t.Fatalf("observe the phase: %v", err)
	}
	browsertest.Step(t, ctx, "upload "+filepath.Base(archive),
		chromedp.SetUploadFiles(chromedp.ID("image"), []string{archive}),
		chromedp.Click(chromedp.ID("upload")))
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS("#firmware-form.update-finished, #firmware-form.update-failed"))); err != nil {
		t.Fatalf("no outcome on the page: %v (phase %q, message %q)", err,
			browsertest.Text(t, ctx, "#update-phase"), browsertest.Text(t, ctx, "#update-message"))
	}
	seen, err := chromedp.Run(wctx, chromedp.Evaluate[string](`window.__phases.join(" ")`))
	if err != nil {
		t.Fatalf("phases shown: %v", err)
	}
	bars, err := chromedp.Run(wctx, chromedp.Evaluate[[]float64](`[document.getElementById("upload-progress").value, document.getElementById("install-progress").value]`))
	if err != nil || len(bars) != 2 {
		t.Fatalf("progress bars: %v %v", bars, err)
	}
	phase, msg = browsertest.Text(t, ctx, "#update-phase"), browsertest.Text(t, ctx, "#update-message")
	t.Logf("%s: phases %q; upload %v%%, install %v%%; %s: %s", filepath.Base(archive), seen, bars[0], bars[1], phase, msg)
	if bars[0] != 100 {
		t.Errorf("upload bar at %v%% after the upload, want 100", bars[0])
	}
	if phase == "done" && bars[1] != 100 {
		t.Errorf("install bar at %v%% after the update, want 100", bars[1])
	}
	return phase, msg, seen
}

// buildSatd builds this satd as a release (releaseTags: no demo, no sim
// readers, which the update tests do not use) stamped with version into dir.
func buildSatd(t *testing.T, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "satd-"+version)
	cmd := exec.Command("go", "build", "-tags", releaseTags, "-ldflags", "-X main.version="+version, "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build satd %s: %v\n%s", version, err, b)
	}
	return out
}

// updateTestConfig writes a configuration with the web form on a loopback
// port, binary updates verified with pub (none when pub is ""), and no
// readers, relay or dvbapi.
func updateTestConfig(t *testing.T, dir, pub string) (path string, doc []byte, base string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := config.Default()
	cfg.Global.StateDir = filepath.Join(dir, "state")
	cfg.Web.Listen = addr
	cfg.DVBAPI.Enabled = false
	cfg.Stream.Enabled = false
	if pub != "" {
		cfg.Update.PublicKeys = []string{pub}
		cfg.Update.Board = "e2e-board"
	}
	cfg.Update.Install = "binary"
	cfg.Update.HealthTimeout = config.Duration(30 * time.Second)
	path = filepath.Join(dir, "satd.toml")
	if err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	if doc, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return path, doc, "http://" + addr
}

// updateArchive writes the upload the System page takes: a tar of the
// manifest of payload (made by make-manifest's code), its minisign
// signature and the payload, which edit may alter after signing.
func updateArchive(t *testing.T, dir, name, payload, version string, priv minisign.PrivateKey, edit func([]byte) []byte) string {
	t.Helper()
	doc, err := manifestOf(payload, update.Manifest{Version: version, Board: "e2e-board", Kind: update.KindBinary})
	if err != nil {
		t.Fatal(err)
	}
	r := minisign.NewReader(bytes.NewReader(doc))
	r.Read(make([]byte, len(doc)+1))
	sig := r.SignWithComments(priv, "file:satd-update.json", "signature from a key made for this test")
	body, err := os.ReadFile(payload)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		body = edit(body)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct {
		name string
		data []byte
	}{{"satd-update.json", doc}, {"satd-update.json.minisig", sig}, {"satd-" + version, body}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o755, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
		tw.Write(m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// launched is `satd launch` running in a test.
type launched struct {
	slots update.Slots
	out   lockedBuffer
}

// startLaunch runs `exe launch` with the update directory dir, stopped and
// its output logged when the test ends.
func startLaunch(t *testing.T, exe, dir, cfg string) *launched {
	t.Helper()
	l := &launched{slots: update.Slots{Dir: dir}}
	cmd := exec.Command(exe, "launch", "-dir", dir, "-factory", exe, "-health-timeout", "90s", "--", "-config", cfg)
	cmd.Stdout, cmd.Stderr = &l.out, &l.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		interruptAndWait(cmd)
		t.Logf("satd launch output:\n%s", l.out.String())
	})
	return l
}

// interruptAndWait stops a started process with SIGINT, and kills it when it
// has not exited 20 seconds later.
func interruptAndWait(cmd *exec.Cmd) {
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// check verifies that version is the current, confirmed executable.
func (l *launched) check(t *testing.T, version string) {
	t.Helper()
	if tr, err := l.slots.LoadTrial(); tr != nil || err != nil {
		t.Errorf("trial still open: %+v, %v", tr, err)
	}
	if o, _ := l.slots.LoadOutcome(); o == nil || o.Version != version || o.Result != update.ResultKept {
		t.Errorf("outcome %+v, want %s kept", o, version)
	}
	if cur := l.slots.Current(); !strings.HasSuffix(cur, version) {
		t.Errorf("current executable %s, want version %s", cur, version)
	}
}

// waitHTTP waits for base to answer, failing after hangGuard.
func waitHTTP(t *testing.T, base string) {
	t.Helper()
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered", base)
}
