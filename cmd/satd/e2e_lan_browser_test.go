package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/browsertest"
)

// TestBrowserLAN meets the web form as a receiver owner does from a PC on
// the LAN: a real satd and headless Chromium in a network namespace where
// the box is 10.213.0.1, so the browser is neither on loopback nor on a
// "trustworthy" origin (no Sec-Fetch-Site; Origin is all the cross-origin
// guard has). First setup takes the code from satd's log; then log out and
// in, change balancer.lb_mode, move web.listen and confirm it at the new
// address, log out. The namespace is private, so its fixed ports cannot
// clash with anything on the host (a running `make run` included).
func TestBrowserLAN(t *testing.T) {
	skipUnlessBuildTools(t)
	browsertest.Chromium(t) // skip before building when there is no browser
	lan := browsertest.NewLAN(t)
	ctx := browsertest.NewIn(t, lan, 1280, 900)
	dir := t.TempDir()
	exe := buildSatd(t, dir, "lan")

	cfg := config.Default()
	cfg.Global.StateDir = filepath.Join(dir, "state")
	cfg.Web.Listen = lan.Addr + ":8080"
	cfg.DVBAPI.Enabled = false
	cfg.Stream.Enabled = false
	cfgPath := filepath.Join(dir, "satd.toml")
	if err := config.Save(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := lan.Command(exe, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		interruptAndWait(cmd)
		if t.Failed() {
			t.Logf("satd output:\n%s", out.String())
		}
	})
	code := waitSetupCode(t, &out)
	base := "http://" + cfg.Web.Listen

	browsertest.Step(t, ctx, "open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("code")))
	browsertest.Screenshot(t, ctx, "lan-setup")
	browsertest.Step(t, ctx, "first setup with the code from the log",
		chromedp.SetValue(chromedp.ID("code"), code),
		chromedp.SetValue(chromedp.ID("password"), "correct horse"),
		chromedp.SetValue(chromedp.ID("repeat"), "correct horse"),
		chromedp.Click(chromedp.ID("setup")), chromedp.WaitVisible(chromedp.ID("uptime")))
	browsertest.Step(t, ctx, "log out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.ID("login")))
	browsertest.Step(t, ctx, "log in",
		chromedp.SetValue(chromedp.ID("password"), "correct horse"),
		chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("uptime")))

	browsertest.Step(t, ctx, "change lb_mode",
		chromedp.Navigate(base+"/config?section=balancer"), chromedp.WaitVisible(chromedp.ID("f-balancer-lb_mode")),
		chromedp.SetValue(chromedp.ID("f-balancer-lb_mode"), "2"),
		chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if saved := savedConfig(t, cfgPath); saved.Balancer.LBMode != 2 {
		t.Errorf("lb_mode %d in the file after the save, want 2", saved.Balancer.LBMode)
	}

	moved := lan.Addr + ":8081"
	browsertest.Step(t, ctx, "move the form",
		chromedp.Navigate(base+"/config?section=web"), chromedp.WaitVisible(chromedp.ID("f-web-listen")),
		chromedp.SetValue(chromedp.ID("f-web-listen"), moved),
		chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("countdown")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, "http://"+moved+"/") {
		t.Errorf("countdown shown at %s, want the new address %s", loc, moved)
	}
	browsertest.Screenshot(t, ctx, "lan-confirm")
	browsertest.Step(t, ctx, "confirm at the new address", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, "http://"+moved+"/config") {
		t.Errorf("after confirming at %s, want the configuration page at %s", loc, moved)
	}
	if saved := savedConfig(t, cfgPath); saved.Web.Listen != moved {
		t.Errorf("web.listen %q in the file after the confirm, want %q", saved.Web.Listen, moved)
	}
	browsertest.Step(t, ctx, "log out at the new address", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.ID("login")))
	if strings.Contains(out.String(), "reverted") {
		t.Errorf("satd reverted the confirmed change:\n%s", out.String())
	}
}

var setupCodeRE = regexp.MustCompile(`setup_code=(\S+)`)

// waitSetupCode reads the one-time setup code from satd's log, as the owner
// does, waiting for the line (failing after hangGuard).
func waitSetupCode(t *testing.T, out *lockedBuffer) string {
	t.Helper()
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		if m := setupCodeRE.FindStringSubmatch(out.String()); m != nil {
			return strings.Trim(m[1], `"`)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no setup code in satd's log:\n%s", out.String())
	return ""
}

// savedConfig reads the configuration file as the form left it.
func savedConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
