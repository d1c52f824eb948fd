package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"satd.dev/satd/cardreader/iso7816"
)

// atrResult is one line of `satd atr` output.
type atrResult struct {
	Input string `json:"input"`
	*iso7816.Summary
	Error string `json:"error,omitempty"`
}

// runATR implements `satd atr HEX...`: it parses each ATR strictly, then
// leniently, and prints one JSON object per ATR with the interpreted fields,
// the mode that accepted it and every deviation. Each argument is one ATR
// (spaces and colons inside are ignored); a run of two-digit arguments is
// taken as one ATR typed without quotes; with no arguments ATRs are read from
// stdin, one per line (text after "|" or "#" is ignored). A leading raw 03
// (an inverse-convention TS as a direct UART reads it) is transformed. It exits 1 if any ATR is rejected even leniently.
func runATR(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stderr, "usage: satd atr HEX...   (or one ATR per line on stdin)\nprints one JSON object per ATR: fields, accepting mode and deviations; exit 1 if any is rejected")
		return 2
	}
	inputs := atrInputs(args)
	if len(args) == 0 {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
				inputs = append(inputs, s)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(stderr, "satd atr: read stdin: %v\n", err)
			return 2
		}
	}
	enc := json.NewEncoder(stdout)
	status := 0
	for _, in := range inputs {
		r := parseATRInput(in)
		if r.Error != "" {
			status = 1
		}
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(stderr, "satd atr: %v\n", err)
			return 2
		}
	}
	return status
}

// atrInputs groups command-line arguments into ATR strings.
func atrInputs(args []string) []string {
	var out []string
	var run []string
	flush := func() {
		if len(run) > 0 {
			out = append(out, strings.Join(run, " "))
			run = nil
		}
	}
	for _, a := range args {
		if len(a) == 2 {
			if _, err := hex.DecodeString(a); err == nil {
				run = append(run, a)
				continue
			}
		}
		flush()
		out = append(out, a)
	}
	flush()
	return out
}

// parseATRInput decodes and parses one ATR, strict first.
func parseATRInput(in string) atrResult {
	if i := strings.IndexAny(in, "|#"); i >= 0 { // "HEX | note" lines as in testdata/atr
		in = strings.TrimSpace(in[:i])
	}
	r := atrResult{Input: in}
	clean := strings.NewReplacer(" ", "", ":", "", "\t", "", "0x", "", "0X", "").Replace(in)
	b, err := hex.DecodeString(clean)
	if err != nil {
		r.Error = fmt.Sprintf("not hex: %v", err)
		return r
	}
	if b0 := len(b); b0 > 0 && b[0] == iso7816.TSInverseRaw {
		iso7816.InverseBytes(b) // raw bytes as read by a direct-mode UART
	}
	mode := iso7816.Strict
	a, err := iso7816.ParseATR(b, iso7816.Strict)
	if err != nil {
		mode = iso7816.Lenient
		var lerr error
		if a, lerr = iso7816.ParseATR(b, iso7816.Lenient); lerr != nil {
			r.Error = lerr.Error()
			return r
		}
	}
	s := iso7816.Summarize(a, mode)
	r.Summary = &s
	return r
}
