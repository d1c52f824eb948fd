package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/browsertest"
)

// browser starts headless chromium (internal/browsertest).
func browser(t *testing.T) context.Context { return browsertest.New(t) }

func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Step(t, ctx, what, actions...)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return browsertest.Text(t, ctx, sel)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Screenshot(t, ctx, name)
}

// pageWeight is what the browser measured for one page load.
type pageWeight struct {
	Transfer float64 `json:"transfer"` // bytes over the wire: document + its CSS and JS
	Decoded  float64 `json:"decoded"`
	DCL      float64 `json:"dcl"`   // ms to DOMContentLoaded
	Paint    float64 `json:"paint"` // ms to first contentful paint
}

const weightJS = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  let t = nav.transferSize, d = nav.decodedBodySize;
  for (const r of performance.getEntriesByType('resource')) { t += r.transferSize; d += r.decodedBodySize; }
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {transfer: t, decoded: d, dcl: nav.domContentLoadedEventEnd, paint: fcp ? fcp.startTime : 0};
})()`

func measure(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
	defer cancel()
	// Paint timing is recorded a frame after load.
	w, err := chromedp.Run(sctx, chromedp.Poll[pageWeight](`document.readyState === 'complete' && performance.getEntriesByName('first-contentful-paint').length > 0 && `+weightJS))
	if err != nil {
		t.Fatalf("measure %s: %v", name, err)
	}
	t.Logf("page %-10s %6.0f bytes transferred (%6.0f decoded), DOMContentLoaded %5.1f ms, first paint %5.1f ms", name, w.Transfer, w.Decoded, w.DCL, w.Paint)
	if w.Transfer > 100<<10 || w.Decoded > 100<<10 {
		t.Errorf("page %s weighs %.0f bytes (%.0f decoded), over 100 KB", name, w.Transfer, w.Decoded)
	}
}

// TestBrowser drives the form in headless chromium: first-time password,
// login, an option applied without restart, a validation message next to its
// field, apply-then-confirm reverting, backup and restore, the live log, and
// a screenshot and weight of every page.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, "", nil)
	r.srv.opt.ConfirmTimeout = 3 * time.Second
	r.status.st = Status{
		Readers: []ReaderStatus{{Label: "slot0", State: "ready", ATR: "3B 24 00 30 42 30 30", Protocol: "T=0", Baud: 9600, CardSystem: "Conax", CAID: 0x0B00,
			Providers: []string{"000000"}, Serial: "0123456789", Subscriptions: []Subscription{{Name: "Basic", Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}},
			ECMOK: 120, ECMNotFound: 2, AvgTime: 180 * time.Millisecond}},
		Services: []ServiceStatus{{Client: "Tvheadend 4.3", Peer: "127.0.0.1:40312", Channel: "Demo One", Adapter: 0, Demux: 1, CAID: 0x0B00, SID: 1, ECMPID: 0x0200,
			State: "descrambling", Reader: "slot0", CardSystem: "Conax", ECMTime: 170 * time.Millisecond, ECMOK: 42, ECMFailed: 1, LastECM: time.Now(), Since: time.Now().Add(-time.Minute)}},
		Mounts: []MountStatus{{Name: "/radio", Source: "http://upstream.example/stream", Upstream: "primary", Listeners: 3, Bitrate: 128, Title: "Artist – Song"}},
	}
	r.start()
	base := r.url("")
	startAddr := r.srv.Addr()

	t.Run("first-time password", func(t *testing.T) {
		step(t, ctx, "open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("setup")))
		screenshot(t, ctx, "setup")
		step(t, ctx, "set password",
			chromedp.SetValue(chromedp.ID("password"), "correct horse"),
			chromedp.SetValue(chromedp.ID("repeat"), "correct horse"),
			chromedp.Click(chromedp.ID("setup")),
			chromedp.WaitVisible(chromedp.ID("uptime")))
		if !r.srv.pw.isSet() {
			t.Fatal("password not stored")
		}
	})
	t.Run("login", func(t *testing.T) {
		step(t, ctx, "log out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.ID("login")))
		step(t, ctx, "wrong password", chromedp.SetValue(chromedp.ID("password"), "wrong"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("page-error")))
		screenshot(t, ctx, "login")
		step(t, ctx, "log in", chromedp.SetValue(chromedp.ID("password"), "correct horse"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("uptime")))
		measure(t, ctx, "status")
		screenshot(t, ctx, "status")
		row := text(t, ctx, "#services tbody tr")
		for _, cell := range []string{"Tvheadend 4.3", "Demo One", "0B00@000000:0001", "0/1", "0200", "descrambling", "slot0", "170 ms", "42 / 1"} {
			if !strings.Contains(row, cell) {
				t.Errorf("status page service row %q lacks %q", row, cell)
			}
		}
	})
	t.Run("option applied without restart", func(t *testing.T) {
		sec, key := balancerOption()
		value := map[string]string{"lb_mode": "1", "level": "debug"}[key]
		id := fieldID(sec + "." + key)
		reloads := r.balancer.reloads
		step(t, ctx, "edit", chromedp.Navigate(base+"/config?section="+sec), chromedp.WaitVisible(chromedp.ID(id)),
			chromedp.SetValue(chromedp.ID(id), value), chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		step(t, ctx, "balancer page", chromedp.Navigate(base+"/balancer"), chromedp.WaitVisible(chromedp.ID("decisions")))
		if got := text(t, ctx, "#decisions"); !strings.Contains(got, key+"="+value) {
			t.Errorf("balancer page shows %q, want the new %s=%s in force", got, key, value)
		}
		if r.restarts != 0 || r.srv.Addr() != startAddr || r.balancer.reloads != reloads+1 {
			t.Errorf("restarts %d, listener %s (was %s), reloads %d", r.restarts, r.srv.Addr(), startAddr, r.balancer.reloads-reloads)
		}
		measure(t, ctx, "balancer")
		screenshot(t, ctx, "balancer")
	})
	t.Run("validation message next to its field", func(t *testing.T) {
		step(t, ctx, "edit", chromedp.Navigate(base+"/config?section=web"), chromedp.WaitVisible(chromedp.ID("f-web-login_attempts")))
		measure(t, ctx, "config")
		screenshot(t, ctx, "config")
		step(t, ctx, "bad value", chromedp.SetValue(chromedp.ID("f-web-login_attempts"), "0"), chromedp.Click(chromedp.ID("save")),
			chromedp.WaitVisible(chromedp.ID("f-web-login_attempts-error")))
		if got := text(t, ctx, "#f-web-login_attempts-error"); got != "must be 1-100" {
			t.Errorf("message %q", got)
		}
		// The message sits in the field's own row.
		row := text(t, ctx, ".field.invalid")
		if !strings.Contains(row, "login_attempts") || !strings.Contains(row, "must be 1-100") {
			t.Errorf("invalid row %q", row)
		}
		screenshot(t, ctx, "config-error")
		if r.savedConfig().Web.LoginAttempts != 5 {
			t.Error("invalid value saved")
		}
	})
	t.Run("apply-then-confirm reverts", func(t *testing.T) {
		moved := freeAddr(t)
		step(t, ctx, "move the form", chromedp.Navigate(base+"/config?section=web"), chromedp.WaitVisible(chromedp.ID("f-web-listen")),
			chromedp.SetValue(chromedp.ID("f-web-listen"), moved), chromedp.Click(chromedp.ID("save")))
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout) // a hang guard
		err := chromedp.Do(sctx, chromedp.WaitVisible(chromedp.ID("countdown")))
		cancel()
		if err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("no countdown: %v; at %s: %s", err, loc, html)
		}
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, "http://"+moved+"/") {
			t.Errorf("countdown shown at %s, want the new address %s", loc, moved)
		}
		if r.srv.Addr() != moved || r.savedConfig().Web.Listen != moved {
			t.Fatalf("change not applied: listening on %s", r.srv.Addr())
		}
		screenshot(t, ctx, "confirm")
		// Not confirmed: after 3 s the old address is back and the page
		// follows it there.
		step(t, ctx, "revert", chromedp.WaitVisible(chromedp.ID("outcome")))
		if got := text(t, ctx, "#outcome"); !strings.Contains(got, "reverted") {
			t.Errorf("outcome %q", got)
		}
		if r.srv.Addr() != startAddr || r.savedConfig().Web.Listen != startAddr {
			t.Errorf("after the timeout listening on %s, file says %s; want %s", r.srv.Addr(), r.savedConfig().Web.Listen, startAddr)
		}
	})
	t.Run("backup and restore", func(t *testing.T) {
		step(t, ctx, "system", chromedp.Navigate(base+"/system"), chromedp.WaitVisible(chromedp.ID("backup")))
		measure(t, ctx, "system")
		screenshot(t, ctx, "system")
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		backup, err := chromedp.Run(sctx, chromedp.Evaluate[string](`fetch(document.getElementById('backup').href).then(r => r.text())`, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse("backup", []byte(backup)); err != nil {
			t.Fatalf("backup from the browser does not parse: %v", err)
		}
		file := filepath.Join(t.TempDir(), "restore.toml")
		os.WriteFile(file, []byte(strings.Replace(backup, "syslog_tag = 'satd'", "syslog_tag = 'restored'", 1)), 0o600)
		step(t, ctx, "restore", chromedp.SetUploadFiles(chromedp.ID("backup-file"), []string{file}), chromedp.Click(chromedp.ID("restore")),
			chromedp.WaitVisible(chromedp.CSS(".flash")))
		if r.current().Log.SyslogTag != "restored" || r.savedConfig().Log.SyslogTag != "restored" {
			t.Errorf("restore not applied: %q", r.current().Log.SyslogTag)
		}
	})
	t.Run("live log", func(t *testing.T) {
		step(t, ctx, "log page", chromedp.Navigate(base+"/log?level=INFO"), chromedp.WaitVisible(chromedp.ID("log-body")))
		measure(t, ctx, "log")
		r.srv.opt.Log.Warn("live tail marker <b>not bold</b>", "reader", "slot0")
		r.srv.opt.Log.Debug("debug marker below the filter")
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		_, err := chromedp.Run(sctx, chromedp.Poll[bool](`document.getElementById('log-body').textContent.includes('live tail marker <b>not bold</b>')`))
		cancel()
		if err != nil {
			t.Fatalf("live tail: %v", err)
		}
		if got := text(t, ctx, "#log-body"); strings.Contains(got, "debug marker") {
			t.Error("level filter let a debug record through")
		}
		screenshot(t, ctx, "log")
	})
	t.Run("protocol switch keeps the edits", func(t *testing.T) {
		// satd.js posts the form as a preview when the select changes; the
		// new protocol's fields come back with the edit, nothing saved.
		step(t, ctx, "reader page", chromedp.Navigate(base+readerPath("slot0")), chromedp.WaitVisible(chromedp.ID("f-reader-0-lb_weight")),
			chromedp.SetValue(chromedp.ID("f-reader-0-lb_weight"), "444"))
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		_, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`(function(s){s.value='pcsc';s.dispatchEvent(new Event('change'));return true})(document.getElementById('f-reader-0-protocol'))`))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		step(t, ctx, "pcsc fields", chromedp.WaitVisible(chromedp.ID("f-reader-0-init_delay")))
		sctx, cancel = context.WithTimeout(ctx, browsertest.StepTimeout)
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById('f-reader-0-lb_weight').value`))
		cancel()
		if err != nil || v != "444" {
			t.Errorf("after the switch lb_weight holds %q (%v), want the edit 444", v, err)
		}
		if got := r.savedConfig().Readers[0]; got.Protocol != "constcw" || got.LBWeight == 444 {
			t.Errorf("the switch saved: %+v", got)
		}
		// Enter in a field saves (the form's default button is a Save).
		step(t, ctx, "back to constcw", chromedp.SetValue(chromedp.ID("f-reader-0-protocol"), "constcw"), chromedp.Click(chromedp.ID("change-protocol")),
			chromedp.WaitVisible(chromedp.ID("f-reader-0-local")))
		step(t, ctx, "Enter saves", chromedp.SendKeys(chromedp.ID("f-reader-0-lb_weight"), "\r"), chromedp.WaitVisible(chromedp.ID("apply-result")))
		if got := r.savedConfig().Readers[0]; got.Protocol != "constcw" || got.LBWeight != 444 {
			t.Errorf("Enter did not save lb_weight 444: %+v", got)
		}
	})
	t.Run("cross-origin form refused", func(t *testing.T) {
		// An attacker page on another origin auto-submits a restart.
		attacker := newAttacker(t, r.url("/system/restart"))
		step(t, ctx, "attack", chromedp.Navigate(attacker), chromedp.WaitVisible(chromedp.CSS("body")))
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		_, err := chromedp.Run(sctx, chromedp.Poll[bool](`document.body && document.body.textContent.includes('cross-origin request refused')`))
		cancel()
		if err != nil {
			t.Fatalf("the attack did not reach the guard: %v", err)
		}
		if r.restarts != 0 {
			t.Errorf("cross-origin POST restarted the daemon")
		}
	})
	fmt.Fprintf(os.Stderr, "screenshots in %s\n", browsertest.ArtifactDir(t))
}

// TestBrowserDemoTiming measures every page of a running satd (the demo:
// `satd -demo`) in the browser. It runs when SATD_DEMO_URL names it; the
// password is set on first use (loopback) or taken from SATD_DEMO_PASSWORD.
func TestBrowserDemoTiming(t *testing.T) {
	base := os.Getenv("SATD_DEMO_URL")
	if base == "" {
		t.Skip("set SATD_DEMO_URL (e.g. http://127.0.0.1:8080) to measure a running satd")
	}
	pw := os.Getenv("SATD_DEMO_PASSWORD")
	if pw == "" {
		pw = "demo-password"
	}
	ctx := browser(t)
	step(t, ctx, "open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("password")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.HasSuffix(loc, "/setup") {
		step(t, ctx, "setup", chromedp.SetValue(chromedp.ID("password"), pw), chromedp.SetValue(chromedp.ID("repeat"), pw), chromedp.Click(chromedp.ID("setup")), chromedp.WaitVisible(chromedp.ID("uptime")))
	} else {
		step(t, ctx, "login", chromedp.SetValue(chromedp.ID("password"), pw), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("uptime")))
	}
	for _, p := range pagePaths {
		step(t, ctx, "open "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("main")))
		measure(t, ctx, p)
		screenshot(t, ctx, "demo"+strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(p))
	}
}

// TestBrowserScreenshots photographs every page at 1366x900 and at a
// phone's 390x844 into browsertest.ArtifactDir (artifacts/web, not
// committed), and checks that no phone page scrolls sideways: tables become
// cards there, long untrusted strings wrap.
func TestBrowserScreenshots(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, "", nil)
	busy(r)
	r.status.st.Services[0].Client = strings.Repeat("a-very-long-client-name-", 6)
	r.balancer.rows[0].Key = "0B00@000000:0001:0000:64" + strings.Repeat("X", 60)
	r.srv.pw.set("correct horse")
	r.start()
	base := r.url("")
	step(t, ctx, "log in", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SetValue(chromedp.ID("password"), "correct horse"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("uptime")))
	t.Run("status refreshes in place", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.__notReloaded = true`)); err != nil {
			t.Fatal(err)
		}
		r.status.mu.Lock()
		r.status.st.Services[1].Client = "zapped-client"
		r.status.mu.Unlock()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](`window.__notReloaded === true && document.getElementById('services').textContent.includes('zapped-client')`)); err != nil {
			t.Errorf("the Status page did not refresh in place: %v", err)
		}
	})
	t.Run("expired session keeps the edits", func(t *testing.T) {
		step(t, ctx, "edit", chromedp.Navigate(base+"/config?section=web"), chromedp.WaitVisible(chromedp.ID("f-web-login_attempts")),
			chromedp.SetValue(chromedp.ID("f-web-login_attempts"), "9"))
		r.srv.sess.endAll()
		step(t, ctx, "save after the session expired", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("login")))
		if got := text(t, ctx, "#page-error"); !strings.Contains(got, "session has expired") {
			t.Errorf("login page says %q", got)
		}
		step(t, ctx, "log in again", chromedp.SetValue(chromedp.ID("password"), "correct horse"), chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("edits-restored")))
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById('f-web-login_attempts').value`))
		cancel()
		if err != nil || v != "9" {
			t.Fatalf("after the login the field holds %q (%v), want the edit 9", v, err)
		}
		step(t, ctx, "save", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := r.savedConfig().Web.LoginAttempts; got != 9 {
			t.Errorf("saved login_attempts %d, want 9", got)
		}
	})
	pages := append([]string{"/config?section=balancer", "/config?section=stream", "/config?section=dvbapi", "/mounts", "/mounts/edit?i=new"}, pagePaths...)
	pages = append(pages, readerPagePaths...)
	for _, vp := range []struct {
		name  string
		w, h  int64
		phone bool
	}{{"1366x900", 1366, 900, false}, {"390x844", 390, 844, true}} {
		step(t, ctx, "viewport "+vp.name, chromedp.EmulateViewport(vp.w, vp.h))
		for _, p := range pages {
			step(t, ctx, "open "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("main")))
			name := vp.name + strings.NewReplacer("/", "-", "?section=", "-", "?protocol=", "-", "?i=", "-").Replace(p)
			if p == "/" {
				name = vp.name + "-status"
			}
			screenshot(t, ctx, name)
			if !vp.phone {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
			wide, err := chromedp.Run(sctx, chromedp.Evaluate[[]string](overflowJS))
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if len(wide) > 0 {
				t.Errorf("%s at %s scrolls sideways: %v", p, vp.name, wide)
			}
		}
	}
}

// overflowJS returns "" entries when the page fits its width, else the
// document's widths and up to five elements reaching past the right edge.
const overflowJS = `(() => {
  const d = document.documentElement;
  if (d.scrollWidth <= d.clientWidth) return [];
  const out = ["scrollWidth " + d.scrollWidth + " > clientWidth " + d.clientWidth];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right > d.clientWidth + 1 && out.length < 6) out.push(el.tagName + (el.id ? "#" + el.id : "") + "." + el.className + " right=" + Math.round(r.right));
  }
  return out;
})()`
