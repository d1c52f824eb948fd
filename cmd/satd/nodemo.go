//go:build satd_nodemo

package main

import (
	"fmt"
	"io"

	"satd.dev/satd/cmd/satd/config"
)

// Release builds (tag satd_nodemo) leave out what only developers and the
// demo use: `satd -demo` with its embedded configuration and sample,
// simulated cards (protocol = "sim") and `satd lbsim`. What is left here
// refuses them with config.ErrNotInBuild instead of failing obscurely.

func init() {
	register("lbsim", "not in this build (release builds leave out the demo and simulated cards)", runLBSimLeftOut)
}

// runLBSimLeftOut answers `satd lbsim` in a release build.
func runLBSimLeftOut(_ []string, _, stderr io.Writer) int {
	fmt.Fprintf(stderr, "satd lbsim: %v\n", config.ErrNotInBuild)
	return 2
}

// loadDemoConfig refuses -demo.
func loadDemoConfig() (*config.Config, error) {
	return nil, fmt.Errorf("satd -demo: %w", config.ErrNotInBuild)
}

// writeDemoSample is never reached: -demo is refused before.
func writeDemoSample(*config.Config) error {
	return fmt.Errorf("demo stream: %w", config.ErrNotInBuild)
}

// simSlot would be the card side of a sim reader's virtual slot.
type simSlot struct{}

// newSimSource refuses a sim reader; configuration validation already
// reports it (config.SimInBuild), this keeps the daemon safe regardless.
func newSimSource(r config.Reader) (*cardSource, error) {
	return nil, fmt.Errorf("sim reader %s: %w", r.Label, config.ErrNotInBuild)
}
