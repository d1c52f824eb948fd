package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"satd.dev/satd/cmd/satd/update"
)

func init() {
	register("make-manifest", "write the update manifest of a payload (sign it with `minisign -S -m FILE`)", runMakeManifest)
}

// runMakeManifest is `satd make-manifest`: it hashes a payload and writes
// the manifest that `minisign -S` then signs. It checks the result with
// update.ParseManifest, the parser the receivers use.
func runMakeManifest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("make-manifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m update.Manifest
	fs.StringVar(&m.Version, "version", "", "version the payload installs (MAJOR.MINOR.PATCH)")
	fs.StringVar(&m.Board, "board", "", "board name the payload is for ([update] board on the receivers)")
	fs.StringVar(&m.MinVersion, "min-version", "", "oldest version allowed to install this update")
	kind := fs.String("kind", "binary", `payload kind: "binary" (satd alone) or "rauc" (bundle)`)
	fs.StringVar(&m.URL, "url", "", "payload URL, absolute or relative to the manifest (default: the payload's file name)")
	out := fs.String("o", "", "write the manifest to this file instead of stdout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: satd make-manifest -version V -board B [flags] PAYLOAD")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	m.Kind = update.Kind(*kind)
	doc, err := manifestOf(fs.Arg(0), m)
	if err != nil {
		fmt.Fprintln(stderr, "make-manifest:", err)
		return 1
	}
	if *out == "" {
		stdout.Write(doc)
		return 0
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		fmt.Fprintln(stderr, "make-manifest:", err)
		return 1
	}
	return 0
}

func manifestOf(payload string, m update.Manifest) ([]byte, error) {
	f, err := os.Open(payload)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if m.Size, err = io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", payload, err)
	}
	m.SHA256 = hex.EncodeToString(h.Sum(nil))
	if m.URL == "" {
		m.URL = filepath.Base(payload)
	}
	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	doc = append(doc, '\n')
	if _, err := update.ParseManifest(payload, doc); err != nil {
		return nil, err
	}
	return doc, nil
}
