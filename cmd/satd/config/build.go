package config

import "errors"

// NoDemoTag is the build tag of release builds that leave out the demo
// (`satd -demo`), simulated cards (protocol = "sim") and `satd lbsim`: code
// a box never runs, kept out of its size budget.
const NoDemoTag = "satd_nodemo"

// ErrNotInBuild is the error of a feature that a release build leaves out.
var ErrNotInBuild = errors.New("not in this build: release builds leave out the demo and simulated cards; build without -tags " + NoDemoTag)
