package main

// The state rows of issue 16: configuration reloads, interrupted saves,
// stats files.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func init() {
	register(Case{Row: 17, Name: "sighup-empty-config", Config: `
[[reader]]
label = "constcw"
protocol = "constcw"
`, Run: sighupEmptyConfig})
}

// sighupEmptyConfig truncates the configuration to 0 bytes and sends
// SIGHUP: the reload must be refused with the rule named, and the daemon
// keep its readers and its web form.
func sighupEmptyConfig(ctx context.Context, t *Target) (string, error) {
	if err := os.WriteFile(t.ConfigPath, nil, 0o600); err != nil {
		return "", err
	}
	if err := t.Signal(syscall.SIGHUP); err != nil {
		return "", err
	}
	var line string
	for i := 0; i < 50 && line == ""; i++ {
		time.Sleep(100 * time.Millisecond)
		for _, l := range strings.Split(t.Log(), "\n") {
			if strings.Contains(l, "not reloaded") || strings.Contains(l, "configuration reloaded") {
				line = l
			}
		}
	}
	switch {
	case line == "":
		return "", fmt.Errorf("no reload outcome logged")
	case !strings.Contains(line, "not reloaded"):
		return "", fmt.Errorf("the empty file was applied: %s", line)
	case !strings.Contains(line, "rule:"):
		return "", fmt.Errorf("refused without naming the rule: %s", line)
	}
	if err := t.WebAnswers(5 * time.Second); err != nil {
		return "", fmt.Errorf("web form gone after the refused reload: %w", err)
	}
	return "refused: " + line[strings.Index(line, "rule:"):min(len(line), strings.Index(line, "rule:")+60)], nil
}

func init() {
	register(Case{Row: 20, Name: "temp-files-and-comments", Setup: func(t *Target) error {
		// What kill -9 during saves leaves behind, and a comment of the owner.
		for i := range 13 {
			if err := os.WriteFile(filepath.Join(t.Dir, fmt.Sprintf(".satd.toml.tmp-%d", i)), []byte("torn"), 0o600); err != nil {
				return err
			}
		}
		b, err := os.ReadFile(t.ConfigPath)
		if err != nil {
			return err
		}
		return os.WriteFile(t.ConfigPath, append([]byte("# owner's note: living-room box\n\n"), b...), 0o600)
	}, Run: tempFilesAndComments})
	register(Case{Row: 22, Name: "stats-line-2mb", Config: `
[[reader]]
label = "constcw"
protocol = "constcw"
`, Setup: func(t *Target) error {
		good := "constcw,0,0963,000000,1234,0000,182,47,1711500000,0,8C\n"
		good2 := "constcw,0,0963,000000,1235,0000,182,47,1711500000,0,8C\n"
		return os.WriteFile(filepath.Join(t.Dir, "state", "oscam.stat"), []byte(good+strings.Repeat("x", 2<<20)+"\n"+good2), 0o600)
	}, Run: statsLine2MB})
}

// tempFilesAndComments starts satd beside 13 torn temporary files: they are
// gone once it runs, and a save from the web form keeps the owner's comment.
func tempFilesAndComments(ctx context.Context, t *Target) (string, error) {
	left, _ := filepath.Glob(filepath.Join(t.Dir, ".*.tmp-*"))
	if len(left) > 0 {
		return "", fmt.Errorf("%d temporary files left after start", len(left))
	}
	c, err := t.Login(ctx)
	if err != nil {
		return "", err
	}
	resp, err := t.PostForm(ctx, c, "/config", url.Values{"section": {"log"}, "log.level": {"debug"}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("save from the form: %s", resp.Status)
	}
	b, err := os.ReadFile(t.ConfigPath)
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "# owner's note: living-room box") || !strings.Contains(string(b), "debug") {
		return "", fmt.Errorf("the save dropped the owner's comment (or did not save)")
	}
	return "13 temp files removed at start; comment kept by a save", nil
}

// statsLine2MB starts satd on a stats file with a 2 MB line between two
// entries: both entries load, the long line alone is skipped.
func statsLine2MB(ctx context.Context, t *Target) (string, error) {
	for i := 0; i < 50; i++ {
		for _, l := range strings.Split(t.Log(), "\n") {
			if strings.Contains(l, "stats loaded") {
				if !strings.Contains(l, "entries=2") {
					return l, fmt.Errorf("valid entries lost: %s", l)
				}
				return "2 entries loaded around a 2 MB line", nil
			}
			if strings.Contains(l, "stats not loaded") {
				return l, fmt.Errorf("stats file rejected: %s", l)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no stats outcome logged")
}
