package main

// The OTA rows of issue 16: a real satd under `satd launch`, builds signed
// at run time with a key it trusts, served from a loopback update server or
// uploaded through the System page.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"aead.dev/minisign"
)

func init() {
	register(Case{Row: 11, Name: "update-server-never-answers", Version: "1.1.0", Config: otaConfig(true),
		Setup: silentUpdateServer, Timeout: 150 * time.Second, Run: updateServerNeverAnswers})
	register(Case{Row: 13, Name: "update-keys-need-password", Version: "1.1.0", Config: otaConfig(false), Run: updateKeysNeedPassword})
	register(Case{Row: 18, Name: "rc9-offered-over-rc10", Version: "1.1.0-rc10", Config: otaConfig(true),
		Setup: offer(rc9), Timeout: 90 * time.Second, Run: rc9OverRC10})
	register(Case{Row: 19, Name: "version-path-escape", Version: "1.1.0", Config: otaConfig(true),
		Setup: offer(escapeVersions[0]), Timeout: 90 * time.Second, Run: versionPathEscape})
	register(Case{Row: 21, Name: "old-builds-pruned", Version: "1.1.0", Config: otaConfig(false),
		Timeout: 180 * time.Second, Run: oldBuildsPruned})
}

// firstPoll bounds the wait for the updater's first poll: a random jitter
// of up to a quarter of the 1 min interval, and the daemon's start.
const firstPoll = 40 * time.Second

// stalledFetchBound is how long the updater may stay "verifying" against a
// silent server: the whole-fetch deadline of a manifest (1 min; the
// answer's head has 30 s), and slack for a loaded machine.
const stalledFetchBound = 75 * time.Second

// offer starts an update server offering a release of version (a build
// that crashes, should it ever be installed) before the daemon polls it.
func offer(version string) func(t *Target) error {
	return func(t *Target) error {
		t.Updates = &updateServer{}
		t.Updates.publish(signedRelease(version, crashingBuild(version), nil))
		return serveUpdates(t.Bg, t, t.Updates)
	}
}

// silentConns counts the connections the silent update server accepted.
var silentConns atomic.Int32

// silentUpdateServer starts an update server that accepts, reads the
// request and never answers, holding the connection open.
func silentUpdateServer(t *Target) error {
	return peer(t.Bg, t, func(c net.Conn) {
		silentConns.Add(1)
		io.Copy(io.Discard, c)
	})
}

// updateServerNeverAnswers is row 11: the update server accepts and never
// answers. The updater leaves "verifying" within its fetch deadline, and a
// web upload refused "already in progress" meanwhile is taken afterwards.
func updateServerNeverAnswers(ctx context.Context, t *Target) (string, error) {
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	if _, err := t.WaitUpdate(ctx, c, firstPoll, func(s updateState) bool { return s.Phase == "verifying" }); err != nil {
		return "", fmt.Errorf("the updater never polled: %w", err)
	}
	entered := time.Now()
	same := signedRelease("1.1.0", []byte("the running version again"), nil)
	code, page, err := t.Upload(ctx, c, same)
	if err != nil {
		return "", err
	}
	during := "taken"
	if code == http.StatusUnprocessableEntity && strings.Contains(page, "already in progress") {
		during = "refused: already in progress"
	}
	st, err := t.WaitUpdate(ctx, c, stalledFetchBound, func(s updateState) bool { return s.Phase != "verifying" })
	if err != nil {
		return "", fmt.Errorf("still verifying against a silent server: %w", err)
	}
	left := time.Since(entered)
	if st.Phase != "failed" {
		return "", fmt.Errorf("after the silent server: phase %q (%s), want failed", st.Phase, st.Message)
	}
	code, page, err = t.Upload(ctx, c, same)
	if err != nil {
		return "", err
	}
	if strings.Contains(page, "already in progress") {
		return "", fmt.Errorf("an upload after the deadline is still refused: already in progress")
	}
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "already running this version") {
		return "", fmt.Errorf("an upload of the running version after the deadline: %d, want 422 already running this version", code)
	}
	if silentConns.Load() == 0 {
		return "", fmt.Errorf("the silent server was never contacted")
	}
	why := st.Message[strings.LastIndex(st.Message, ": ")+2:]
	return fmt.Sprintf("left verifying after %.0f s (%s); an upload during it %s, after it checked (up to date)",
		left.Seconds(), firstLine(why, 60), during), nil
}

// updateKeysNeedPassword is row 13: logged in but without the password,
// replacing update.public_keys is refused, and a build signed with the
// attacker's own key is refused as signed by an unknown key.
func updateKeysNeedPassword(ctx context.Context, t *Target) (string, error) {
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	resp, err := t.PostForm(ctx, c, "/config", url.Values{"section": {"update"}, "update.public_keys": {pub.String()}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusForbidden {
		return "", fmt.Errorf("public_keys replaced without the password: %s, want 403", resp.Status)
	}
	code, page, err := t.Upload(ctx, c, signedRelease("1.2.0", crashingBuild("1.2.0"), &priv))
	if err != nil {
		return "", err
	}
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "unknown key") {
		return "", fmt.Errorf("a build signed with the attacker's key: %d, want 422 signed by an unknown key", code)
	}
	b, _ := os.ReadFile(t.ConfigPath)
	if strings.Contains(string(b), pub.String()) {
		return "", fmt.Errorf("the attacker's key reached the configuration file")
	}
	if bin := binFiles(t); len(bin) > 0 || link(t, "current") != "" {
		return "", fmt.Errorf("something was installed: bin/ %v, current %q", bin, link(t, "current"))
	}
	return "public_keys refused without the password (403); a build signed with another key refused (unknown key)", nil
}

// pollRefused logs in and waits for the outcome of the updater's first
// poll of the offered release: it must fail with an error containing why.
func pollRefused(ctx context.Context, t *Target, why string) (*http.Client, updateState, error) {
	c, err := t.Login(ctx)
	if err != nil {
		return nil, updateState{}, err
	}
	st, err := t.WaitUpdate(ctx, c, firstPoll, func(s updateState) bool {
		return s.Phase == "failed" || s.Phase == "installing" || s.Phase == "restarting"
	})
	if err != nil {
		return nil, st, fmt.Errorf("no outcome of the poll: %w", err)
	}
	if !strings.Contains(st.Message, why) {
		return nil, st, fmt.Errorf("polled %q: %s %q, want refused: %s", t.Updates.release().version(), st.Phase, st.Message, why)
	}
	return c, st, nil
}

// rc9 is offered over the running 1.1.0-rc10 (semver's ASCII order of
// pre-release identifiers would rank it higher).
const rc9 = "1.1.0-rc9"

// rc9OverRC10 is row 18: a signed 1.1.0-rc9 offered by the update server
// and uploaded to a box running 1.1.0-rc10 is refused as a downgrade.
func rc9OverRC10(ctx context.Context, t *Target) (string, error) {
	srv := t.Updates
	rel := srv.release()
	c, st, err := pollRefused(ctx, t, "would downgrade")
	if err != nil {
		return "", err
	}
	code, page, err := t.Upload(ctx, c, rel)
	if err != nil {
		return "", err
	}
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "would downgrade") {
		return "", fmt.Errorf("uploaded rc9 over rc10: %d, want 422 would downgrade", code)
	}
	if n, bin := srv.payloadGets(), binFiles(t); n > 0 || len(bin) > 0 || link(t, "current") != "" {
		return "", fmt.Errorf("rc9 went further: %d payload downloads, bin/ %v, current %q", n, bin, link(t, "current"))
	}
	why, _, _ := strings.Cut(st.Message[strings.Index(st.Message, "would downgrade"):], " (set")
	return "polled and uploaded rc9 refused: " + firstLine(why, 100), nil
}

// escapeVersions are signed versions that would name files outside the
// update directory if used as names (bin/satd-VERSION, work/payload-VERSION-…).
var escapeVersions = []string{"1.2.0/../../../hostile-escape", "../../../../hostile-escape",
	"1.2.0-../../hostile-escape", "1.2.0+../../../hostile-escape"}

// versionPathEscape is row 19: signed manifests whose version holds path
// characters, polled and uploaded, are refused before a byte is written:
// no file appears outside the update directory and `current` stays.
func versionPathEscape(ctx context.Context, t *Target) (string, error) {
	srv := t.Updates
	c, _, err := pollRefused(ctx, t, "malformed manifest")
	if err != nil {
		return "", err
	}
	for _, v := range escapeVersions {
		code, page, err := t.Upload(ctx, c, signedRelease(v, crashingBuild(v), nil))
		if err != nil {
			return "", err
		}
		if code != http.StatusUnprocessableEntity || !strings.Contains(page, "malformed manifest") {
			return "", fmt.Errorf("uploaded version %q: %d, want 422 malformed manifest", v, code)
		}
	}
	var escaped []string
	for _, root := range []string{t.Dir, os.TempDir()} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), "hostile-escape") {
				escaped = append(escaped, p)
			}
			if err == nil && d.IsDir() && root == os.TempDir() && p != root {
				return filepath.SkipDir // the top of $TMPDIR only
			}
			return nil
		})
	}
	if len(escaped) > 0 {
		return "", fmt.Errorf("files written outside the update directory: %v", escaped)
	}
	if n, bin := srv.payloadGets(), binFiles(t); n > 0 || len(bin) > 0 || link(t, "current") != "" {
		return "", fmt.Errorf("a path version went further: %d payload downloads, bin/ %v, current %q", n, bin, link(t, "current"))
	}
	return fmt.Sprintf("%d versions with ../ polled or uploaded: all refused as malformed; no file outside the update directory; no current", len(escapeVersions)), nil
}

// oldBuildsPruned is row 21: three updates through the System page (1.2.0
// kept, 1.3.0 crashing and rolled back, 1.4.0 kept) leave only the current
// build and one fallback in bin/.
func oldBuildsPruned(ctx context.Context, t *Target) (string, error) {
	var steps []string
	for _, u := range []struct {
		version, result string
	}{{"1.2.0", "kept"}, {"1.3.0", "rolled back"}, {"1.4.0", "kept"}} {
		payload := crashingBuild(u.version)
		if u.result == "kept" {
			exe, err := ota.build(u.version)
			if err != nil {
				return "", err
			}
			if payload, err = os.ReadFile(exe); err != nil {
				return "", err
			}
		}
		c, err := loginWhenUp(ctx, t)
		if err != nil {
			return "", err
		}
		code, page, err := t.Upload(ctx, c, signedRelease(u.version, payload, nil))
		if err != nil {
			return "", err
		}
		if code != http.StatusOK {
			return "", fmt.Errorf("upload %s: %d %s", u.version, code, firstLine(textOf(page), 120))
		}
		if err := waitOutcome(ctx, t, u.version, u.result); err != nil {
			return "", err
		}
		steps = append(steps, u.version+" "+u.result)
	}
	if _, err := loginWhenUp(ctx, t); err != nil {
		return "", err
	}
	bin := binFiles(t)
	want := []string{"satd-1.2.0", "satd-1.4.0"}
	if !slices.Equal(bin, want) {
		return "", fmt.Errorf("after 3 updates bin/ holds %v, want %v (current and one fallback)", bin, want)
	}
	if cur, prev := filepath.Base(link(t, "current")), filepath.Base(link(t, "previous")); cur != "satd-1.4.0" || prev != "satd-1.2.0" {
		return "", fmt.Errorf("current %s, previous %s; want satd-1.4.0 and satd-1.2.0", cur, prev)
	}
	var size int64
	for _, f := range bin {
		if fi, err := os.Stat(filepath.Join(t.UpdateDir(), "bin", f)); err == nil {
			size += fi.Size()
		}
	}
	return fmt.Sprintf("%s: bin/ holds %s (%.1f MB)", strings.Join(steps, ", "), strings.Join(bin, " "), float64(size)/1e6), nil
}

// loginWhenUp logs in once the daemon (maybe restarting into an update)
// answers again.
func loginWhenUp(ctx context.Context, t *Target) (*http.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		c, err := t.Login(ctx)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no login after the restart: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitOutcome waits until the update directory's outcome.json records
// version with result and no trial is open.
func waitOutcome(ctx context.Context, t *Target, version, result string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last string
	for {
		b, _ := os.ReadFile(filepath.Join(t.UpdateDir(), "outcome.json"))
		last = string(b)
		_, trial := os.Stat(filepath.Join(t.UpdateDir(), "trial.json"))
		if contains(last, `"version": "`+version+`"`, `"result": "`+result+`"`) && os.IsNotExist(trial) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("update to %s never %s; outcome %s", version, result, strings.Join(strings.Fields(last), " "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// firstLine is s up to its first newline, at most n bytes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// textOf strips the tags of an HTML page (for a message in an error).
func textOf(page string) string {
	var b strings.Builder
	in := false
	for _, r := range page {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
