// Command hostile attacks a built satd as a hostile or broken peer on the
// LAN would, one case per row of issue 16, and reports whether each bound
// held: `held N/N` on the last line, exit status 1 if any did not.
//
// Every case gets a fresh daemon in a fresh state directory, listening on
// loopback ports picked free for it, and a deadline; the daemon is killed
// after the case, so a case that breaks it breaks nothing else. During the
// attack the daemon's Go heap (go_heap_objects_bytes of its /metrics,
// every 100 ms over a connection opened before the attack) and its
// resident memory are sampled: every case asserts a heap peak of at most
// 64 MB and prints it with the peak RSS over the baseline.
//
// The OTA cases (Case.Version) run a satd stamped with a version, built
// from -src with the flags of `make build`, under `satd launch`. Their
// updates are signed with a minisign key generated at run time (the key
// the daemon is told to trust; it lives only in this process) and served
// from a loopback update server or uploaded through the System page.
//
// Rows of issue 16 and their cases:
//
//	 1 parallel-wrong-logins           40 wrong logins at once: ≤ 5 evaluated, one hash at a time
//	 2 huge-login-bodies               8 × 9 MB multipart logins: nothing in $TMPDIR
//	 3 stalled-login-bodies            1,100 bodies that never come at ulimit -n 1024: dvbapi served, web back
//	 4 endless-upstream-head           an endless upstream header line: 16 KiB read per attempt
//	 5 auth-backend-faults             429/401/407/404/408/5xx/garbage/error page: no 401, no WWW-Authenticate
//	 6 upstream-userinfo-everywhere    user:password@ upstream: not in status.json, pages, APIs, log; foreign Host 421
//	 7 config-page-secrets             mount, backend, user passwords and token keys on no page
//	 8 failure-map-spray               a 1 h lockout survives 4,200 sprayed addresses
//	 9 fail-open-flood                 1,500 guesses while the backend is down: 4 admitted
//	10 damaged-password-file           logged with a setup code; /setup sets a new password
//	11 update-server-never-answers     the updater leaves "verifying" by its deadline; uploads taken again
//	12 ecm-info-path-guarded           dvbapi.ecm_info needs the password and an allowed directory
//	13 update-keys-need-password       public_keys needs the password; a build signed with another key refused
//	14 source-password-guessing        source/admin guesses: 5 evaluated, then 429
//	15 auth-cache-flood                5,000 distinct grants: the decision cache stays at its cap
//	16 idle-connections                19,000 idle connections: a few hundred descriptors, others served
//	17 sighup-empty-config             SIGHUP with a 0-byte file: refused, naming the rule
//	18 rc9-offered-over-rc10           1.1.0-rc9 polled and uploaded over 1.1.0-rc10: a downgrade
//	19 version-path-escape             signed versions with ../: refused; no file outside the update directory
//	20 temp-files-and-comments         torn temp files removed at start; a save keeps comments
//	21 old-builds-pruned               3 updates (kept, rolled back, kept): current + one fallback in bin/
//	22 stats-line-2mb                  a 2 MB line in the stats file: skipped alone
//
// Usage:
//
//	go run ./bench/hostile -satd dist/satd [-src .] [-go go] [-run REGEXP] [-timeout 60s] [-v]
//
// Cases register themselves from their own files (case_*.go) with register,
// so that rows are added without touching a shared table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Case is one attack: a row of issue 16.
type Case struct {
	Row  int    // the row of issue 16's table
	Name string // short, unique, lower-case-with-dashes
	// Config is TOML appended to the base configuration (see base.go); it
	// may use the placeholders of Target.expand ({dir}, {web}, {stream},
	// {dvbapi}, {spare}).
	Config string
	// WebConfig is TOML added to the base [web] table (login_attempts = 2).
	WebConfig string
	// NoFile, if not 0, is the descriptor limit (soft and hard) the daemon
	// runs under: ulimit -n.
	NoFile int
	// Setup prepares the state directory before the daemon starts (a
	// damaged file, say); nil for none.
	Setup func(t *Target) error
	// NoPassword leaves the web password unset (the harness sets it
	// otherwise, from loopback, before Run).
	NoPassword bool
	// Version, if set, runs a satd stamped with this version (built from
	// -src with dist/satd's flags) under `satd launch`, as a box that takes
	// binary updates runs it: the OTA rows need a version to compare with
	// and a launcher to restart into an update.
	Version string
	// Timeout replaces -timeout for a case that waits out a longer bound.
	Timeout time.Duration
	// Run attacks and returns nil if the bound held, else what broke.
	// It returns a one-line figure for the report ("peak RSS +3 MB").
	Run func(ctx context.Context, t *Target) (figure string, err error)
}

var cases []Case

// register adds a case; it panics on a duplicate name (a programming error).
func register(c Case) {
	for _, o := range cases {
		if o.Name == c.Name {
			panic("hostile: case registered twice: " + c.Name)
		}
	}
	cases = append(cases, c)
}

func main() {
	satd := flag.String("satd", "dist/satd", "the satd binary to attack")
	flag.StringVar(&srcDir, "src", ".", "the module the OTA cases build their versioned satd from")
	flag.StringVar(&goTool, "go", "go", "the go command that builds them")
	run := flag.String("run", "", "run only the cases whose name matches this regular expression")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of each case, the daemon's start included")
	verbose := flag.Bool("v", false, "print the daemon's log of a case that failed")
	flag.Parse()
	re, err := regexp.Compile(*run)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile: -run:", err)
		os.Exit(2)
	}
	if _, err := os.Stat(*satd); err != nil {
		fmt.Fprintln(os.Stderr, "hostile: build satd first (make build):", err)
		os.Exit(2)
	}
	if abs, err := filepath.Abs(*satd); err == nil {
		*satd = abs // the daemon runs in the case's directory
	}
	if abs, err := filepath.Abs(srcDir); err == nil {
		srcDir = abs
	}
	defer ota.cleanup()
	slices.SortStableFunc(cases, func(a, b Case) int { return a.Row - b.Row })
	held, total := 0, 0
	for _, c := range cases {
		if !re.MatchString(c.Name) {
			continue
		}
		total++
		d := *timeout
		if c.Timeout > d {
			d = c.Timeout
		}
		fig, mem, err := runCase(*satd, c, d, *verbose)
		status := "held"
		if err != nil {
			status = "FAILED: " + err.Error()
		} else {
			held++
		}
		fmt.Printf("row %2d %-28s %s", c.Row, c.Name, status)
		if fig != "" {
			fmt.Printf(" (%s)", fig)
		}
		fmt.Printf(" [%s]\n", mem)
	}
	fmt.Printf("held %d/%d\n", held, total)
	ota.cleanup()
	if held != total {
		os.Exit(1)
	}
}

// runCase starts a daemon for c, attacks it while sampling its memory, and
// stops it. mem is the memory figure of the attack: the daemon's peak Go
// heap and its peak resident memory over the baseline.
func runCase(satd string, c Case, timeout time.Duration, verbose bool) (fig, mem string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t, err := newTarget(satd, c)
	if err != nil {
		return "", "", fmt.Errorf("prepare: %w", err)
	}
	defer t.cleanup()
	defer func() {
		if err != nil && verbose {
			fmt.Fprintf(os.Stderr, "--- daemon log of %s:\n%s\n---\n", c.Name, t.Log())
		}
	}()
	if err := t.start(ctx); err != nil {
		return "", "", fmt.Errorf("start satd: %w", err)
	}
	if !c.NoPassword {
		if err := t.SetPassword(ctx); err != nil {
			return "", "", fmt.Errorf("set the web password: %w", err)
		}
	}
	if err := t.Baseline(); err != nil {
		return "", "", err
	}
	sampler := t.sampleMemory()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fig, err = c.Run(ctx, t)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The case is stuck: kill the daemon so its connections fail.
		t.kill()
		<-done
		if err == nil {
			err = fmt.Errorf("did not finish within %v", timeout)
		}
	}
	peak := sampler.stopSampling()
	mem = peak.String(t.PeakGrowthMB())
	if err == nil && !t.Alive() {
		err = fmt.Errorf("satd died: %s", t.LastLogLine())
	}
	if err == nil {
		err = peak.check()
	}
	return fig, mem, err
}
