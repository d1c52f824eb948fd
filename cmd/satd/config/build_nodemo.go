//go:build satd_nodemo

package config

// SimInBuild reports whether this build has simulated cards (protocol =
// "sim") and the demo; release builds (tag satd_nodemo) leave them out.
const SimInBuild = false
