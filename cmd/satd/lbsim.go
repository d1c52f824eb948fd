//go:build !satd_nodemo

package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"satd.dev/satd/balancer/lbsim"
)

func init() {
	register("lbsim", "replay an ECM trace through the real balancer on virtual time and print what happened (-config, -trace, -stats, -explain)", runLBSim)
}

// runLBSim implements `satd lbsim`: it replays a trace of ECMs through
// the real load balancer on virtual time and prints one JSON line per ECM.
func runLBSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lbsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "satd TOML configuration ([balancer] and [[reader]] tables)")
	tracePath := fs.String("trace", "", "trace of ECMs, JSON lines")
	statsPath := fs.String("stats", "", "OSCam stats file to start from")
	explain := fs.Bool("explain", false, "add per-reader explanations (\"why\") to each line")
	epoch := fs.Int64("epoch", lbsim.DefaultEpoch.Unix(), "unix seconds of virtual t=0, for the stats file's timestamps")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *tracePath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: satd lbsim -config satd.toml -trace trace.jsonl [-stats oscam.stat] [-explain]")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f := lbsim.Files{Config: *cfgPath, Trace: *tracePath, Stats: *statsPath, Explain: *explain, Epoch: time.Unix(*epoch, 0).UTC()}
	if err := lbsim.RunFiles(f, stdout, log); err != nil {
		fmt.Fprintf(stderr, "lbsim: %v\n", err)
		return 1
	}
	return 0
}
