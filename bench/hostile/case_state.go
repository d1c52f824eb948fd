package main

// The state rows of issue 16: configuration reloads.

import (
	"context"
	"fmt"
	"os"
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
