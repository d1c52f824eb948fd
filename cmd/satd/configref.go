package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/internal/atomicfile"
)

func init() {
	register("config-reference", "print the configuration reference (Markdown), or update it in README.md with -readme", runConfigReference)
}

const (
	refBegin = "<!-- config-reference:begin -->\n"
	refEnd   = "<!-- config-reference:end -->"
)

func runConfigReference(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config-reference", flag.ContinueOnError)
	fs.SetOutput(stderr)
	readme := fs.String("readme", "", "rewrite the reference between the config-reference markers of this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var ref bytes.Buffer
	if err := config.Reference(&ref); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *readme == "" {
		stdout.Write(ref.Bytes())
		return 0
	}
	if err := replaceReference(*readme, ref.Bytes()); err != nil {
		fmt.Fprintf(stderr, "config-reference: %v\n", err)
		return 1
	}
	return 0
}

func replaceReference(path string, ref []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	head, rest, ok := strings.Cut(string(doc), refBegin)
	_, tail, ok2 := strings.Cut(rest, refEnd)
	if !ok || !ok2 {
		return fmt.Errorf("%s has no %q ... %q markers", path, strings.TrimSpace(refBegin), refEnd)
	}
	return atomicfile.WriteFile(path, []byte(head+refBegin+string(ref)+refEnd+tail), 0o644)
}
