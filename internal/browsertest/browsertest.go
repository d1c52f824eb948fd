// Package browsertest starts Debian's headless Chromium for the web form's
// browser tests and wraps the chromedp steps they share. Only tests import
// it; the satd binary does not link chromedp (guard_test checks).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StepTimeout bounds one step of a browser test. It is a hang guard, not a
// bound on speed: a step waits for its condition (an element shown), which
// takes well under a second, and many seconds on a loaded machine.
const StepTimeout = time.Minute

// Chromium finds Debian's chromium, installing it when missing and the test
// runs as root with apt-get. It skips when no browser can be had, except
// under CI, where a missing browser is a failure.
func Chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() || os.Getenv("SATD_CROSS_TEST") != "" {
		t.Skip("browser tests run on the host, not in -short mode")
	}
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	if p := findChromium(); p != "" {
		return p
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Getuid() == 0 {
		t.Log("installing Debian chromium for the browser tests")
		install := exec.Command("apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", "chromium")
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := install.CombinedOutput(); err != nil {
			t.Logf("apt-get install chromium: %v\n%s", err, out)
		}
		if p := findChromium(); p != "" {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium and it could not be installed; CI needs the browser tests")
	}
	t.Skip("no chromium (set CHROME_PATH, or run as root with apt-get)")
	return ""
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts headless chromium with a fresh profile, stopped when the test
// ends. The first Run starts it, so per-step timeouts are derived afterwards.
// extra adds allocator options (command-line flags) for one test.
func New(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	return start(t, Chromium(t), 1280, 900, extra...)
}

// start runs the browser exe with a window of width x height.
func start(t *testing.T, exe string, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height))
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Step runs actions within StepTimeout.
func Step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Text returns the text of the first element matching the CSS selector sel.
func Text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// ArtifactDir is where screenshots go: $SATD_ARTIFACTS, else artifacts/web
// at the top of the repository (ignored by git, never committed), else a
// temporary directory.
func ArtifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SATD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "satd-web-artifacts")
		if root := moduleRoot(); root != "" {
			dir = filepath.Join(root, "artifacts", "web")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ScreenshotTimeout bounds one full-page screenshot: a phone-width page of
// cards is several thousand pixels tall, slow on a loaded machine.
const ScreenshotTimeout = 3 * StepTimeout

// Screenshot saves the whole page as web-NAME.png in ArtifactDir.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, ScreenshotTimeout)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactDir(t), "web-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// moduleRoot is the directory of go.mod above the working directory, or "".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
	return ""
}
