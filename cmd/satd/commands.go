package main

// The subcommands implemented by the other packages' front ends. Each runs
// with its arguments and returns the process exit status.
func init() {
	register("atr", "decode ATRs given as hex: one JSON object each, with every deviation from ISO 7816-3 (exit 1 if one is rejected)", runATR)
}
