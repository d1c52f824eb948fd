// Command hostile attacks a built satd as a hostile or broken peer on the
// LAN would, one case per row of issue 16, and reports whether each bound
// held: `held N/N` on the last line, exit status 1 if any did not.
//
// Every case gets a fresh daemon in a fresh state directory, listening on
// loopback ports picked free for it, and a deadline; the daemon is killed
// after the case, so a case that breaks it breaks nothing else.
//
// Usage:
//
//	go run ./bench/hostile -satd dist/satd [-run REGEXP] [-timeout 60s] [-v]
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
	slices.SortStableFunc(cases, func(a, b Case) int { return a.Row - b.Row })
	held, total := 0, 0
	for _, c := range cases {
		if !re.MatchString(c.Name) {
			continue
		}
		total++
		fig, err := runCase(*satd, c, *timeout, *verbose)
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
		fmt.Println()
	}
	fmt.Printf("held %d/%d\n", held, total)
	if held != total {
		os.Exit(1)
	}
}

// runCase starts a daemon for c, attacks it and stops it.
func runCase(satd string, c Case, timeout time.Duration, verbose bool) (fig string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t, err := newTarget(satd, c)
	if err != nil {
		return "", fmt.Errorf("prepare: %w", err)
	}
	defer t.cleanup()
	defer func() {
		if err != nil && verbose {
			fmt.Fprintf(os.Stderr, "--- daemon log of %s:\n%s\n---\n", c.Name, t.Log())
		}
	}()
	if err := t.start(ctx); err != nil {
		return "", fmt.Errorf("start satd: %w", err)
	}
	if !c.NoPassword {
		if err := t.SetPassword(ctx); err != nil {
			return "", fmt.Errorf("set the web password: %w", err)
		}
	}
	if err := t.Baseline(); err != nil {
		return "", err
	}
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
	if err == nil && !t.Alive() {
		err = fmt.Errorf("satd died: %s", t.LastLogLine())
	}
	return fig, err
}
