//go:build !satd_nodemo

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/dvbapi/zap"
)

// TestDemoScenarioFollowsReaders checks the built-in scenario parses and
// has a service per configured reader kind.
func TestDemoScenarioFollowsReaders(t *testing.T) {
	cfg := e2eConfig(t, t.TempDir(), simReader("conax-sim", "conax"), readerCfg("seca-sim", "sim"), constcwReader(t, "fixed"))
	sc, err := zap.Parse("demo", []byte(demoScenario(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sc.Services {
		names = append(names, s.Name+"/"+s.System+"/"+s.Verify)
	}
	if got, want := strings.Join(names, " "), "conax-demo/conax/sha256 seca-demo/seca/sha256 constcw-demo/test/constcw"; got != want {
		t.Errorf("services %q, want %q", got, want)
	}
	if len(sc.Steps) != 3*demoRounds {
		t.Errorf("%d steps, want %d", len(sc.Steps), 3*demoRounds)
	}
	if _, err := buildDemo(env{cfg: cfg}); err != nil {
		t.Error(err)
	}
	if c, _ := buildDemo(env{cfg: cfg}); c != nil {
		t.Errorf("demo component built without -demo")
	}
}

// TestDemoZapsThroughSatd runs the demo component against the daemon's own
// dvbapi port and waits for a logged zap on each of the three services.
func TestDemoZapsThroughSatd(t *testing.T) {
	skipE2E(t)
	cfg := e2eConfig(t, t.TempDir(), simReader("conax-sim", "conax"), simReader("seca-sim", "seca"), constcwReader(t, "fixed"))
	e := startE2E(t, cfg)
	var logs lockedBuffer
	lg, err := newLogging(cfg.Log, &logs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildDemo(env{cfg: cfg, log: lg.component("demo"), demo: true, daemon: e.d})
	if err != nil || c == nil {
		t.Fatalf("build demo: %v %v", c, err)
	}
	c.(*demoComponent).patience = zapPatience
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"service=conax-demo caid=0B00 reader=conax-sim", "service=seca-demo caid=0100 reader=seca-sim", "service=constcw-demo caid=2600 reader=fixed"}
	// A hang guard: the three zap lines normally come within seconds.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && !containsAll(logs.String(), want) {
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard) // a hang guard: Stop takes milliseconds
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	out := logs.String()
	t.Logf("demo log:\n%s", out)
	if !containsAll(out, want) {
		t.Errorf("demo log lacks a zap line for every service")
	}
	if strings.Contains(out, "saw problems") || strings.Contains(out, "level=WARN") {
		t.Errorf("demo receiver reported problems")
	}
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
