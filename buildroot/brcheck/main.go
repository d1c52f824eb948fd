// Command brcheck checks satd's Buildroot external tree without Buildroot:
// the coding style rules of the Buildroot manual that utils/check-package
// enforces (plus the ones it misses: a misspelled _LICENCE, "VAR=value"
// without spaces, a trailing slash in _SITE), shellcheck on every shell
// script, and `satd -check` on the default configuration rendered for every
// combination of the package's Config.in options.
//
// Usage:
//
//	go run ./buildroot/brcheck [-satd PATH] [-shellcheck=false] DIR
//
// Problems are printed as "file:line: message"; the exit status is 1 when
// there is any.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("brcheck", flag.ContinueOnError)
	fl.SetOutput(stderr)
	satd := fl.String("satd", "", "host satd binary: check the rendered default configurations with satd -check")
	shell := fl.Bool("shellcheck", true, "run shellcheck on shell scripts")
	if err := fl.Parse(args); err != nil || fl.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: brcheck [-satd PATH] [-shellcheck=false] DIR")
		return 2
	}
	tree := fl.Arg(0)
	problems, files, err := checkTree(tree, *shell)
	if err != nil {
		fmt.Fprintln(stderr, "brcheck:", err)
		return 2
	}
	if *satd != "" {
		n, ps := checkConfigs(tree, *satd, stdout)
		problems = append(problems, ps...)
		fmt.Fprintf(stdout, "%d rendered configurations checked with satd -check\n", n)
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stdout, "%d files checked, %d problems\n", files, len(problems))
	if len(problems) > 0 {
		return 1
	}
	return 0
}

// checkTree checks every file of the external tree; Go sources, docs and
// test data are not part of the tree Buildroot reads.
func checkTree(root string, shell bool) ([]Problem, int, error) {
	var problems []Problem
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md":
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files++
		ps, err := checkFile(path, rel, shell)
		problems = append(problems, ps...)
		return err
	})
	return problems, files, err
}

// checkFile routes one file to its rules; rel is its path in the tree.
func checkFile(path, rel string, shell bool) ([]Problem, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Problem
	r := report{file: rel, out: &out}
	raw := string(b)
	lines := splitLines(raw)
	checkText(r, lines, raw)
	base := filepath.Base(rel)
	dir := filepath.Base(filepath.Dir(rel))
	inPackage := filepath.Base(filepath.Dir(filepath.Dir(rel))) == "package"
	switch {
	case strings.HasPrefix(base, "Config.in"):
		pkg := ""
		if inPackage {
			pkg = dir
		}
		checkConfigIn(r, lines, pkg)
	case base == "external.mk" || base == "external.desc":
		if base == "external.desc" {
			checkExternalDesc(r, lines)
		}
	case strings.HasSuffix(base, ".mk") && inPackage:
		checkMk(r, lines, strings.TrimSuffix(base, ".mk"))
	case strings.HasSuffix(base, ".hash"):
		checkHash(r, lines)
	case strings.HasSuffix(base, "_defconfig"):
		checkDefconfig(r, lines)
	case sysvName.MatchString(base) && inPackage:
		checkSysV(r, path, lines)
		if shell {
			shellcheck(r, path)
		}
	case isShell(base, raw) && shell:
		shellcheck(r, path)
	}
	return out, nil
}

func isShell(base, raw string) bool {
	return strings.HasSuffix(base, ".sh") || strings.HasPrefix(raw, "#!/bin/sh") || strings.HasPrefix(raw, "#!/usr/bin/env sh")
}

// shellcheck runs Debian's shellcheck; its findings become one problem per
// finding.
func shellcheck(r report, path string) {
	out, err := exec.Command("shellcheck", "-s", "sh", "-f", "gcc", path).CombinedOutput()
	if err == nil {
		return
	}
	if _, ok := err.(*exec.ExitError); !ok {
		r.add(0, "failed to call 'shellcheck' (install Debian's shellcheck: .ci/deps buildroot): %v", err)
		return
	}
	// gcc format: file:line:col: level: message [SCnnnn]
	found := false
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(l, ":", 4)
		if len(parts) == 4 {
			var line int
			fmt.Sscanf(parts[1], "%d", &line)
			r.add(line, "shellcheck:%s", parts[3])
			found = true
		}
	}
	if !found {
		r.add(0, "run 'shellcheck' and fix the warnings: %s", strings.TrimSpace(string(out)))
	}
}

// configCombos are the Config.in choices the default configuration is
// rendered for: web on/off, stream on/off, every dvbapi mode, every board
// profile.
func configCombos(stream bool) [][]string {
	var out [][]string
	streams := []string{"n"}
	if stream {
		streams = append(streams, "y")
	}
	for _, web := range []string{"y", "n"} {
		for _, st := range streams {
			for _, dvb := range []string{"enigma2", "camd-socket", "tcp"} {
				for _, board := range []string{"none", "internal-1", "internal-2", "phoenix", "custom"} {
					out = append(out, []string{"SATD_WEB=" + web, "SATD_STREAM=" + st, "SATD_DVBAPI=" + dvb, "SATD_BOARD=" + board})
				}
			}
		}
	}
	return out
}

// customReaders is the file of a custom board profile, as a maintainer
// would write it.
const customReaders = `# The wiring of a custom board, and its two slots.
[[board]]
name = "acme-rx2"
device = "/dev/ttyS1"
pins = { cmdvcc = "gpiochip0:17", rst = "gpiochip0:18", off = "gpiochip0:19" }

[[reader]]
label = "top"
protocol = "internal"
board = "acme-rx2"

[[reader]]
label = "usb"
protocol = "mouse"
device = "/dev/ttyUSB0"
`

var streamSection = regexp.MustCompile(`(?m)^### .\[stream\].`)

// checkConfigs renders the default configuration for every combination and
// runs satd -check on each. It returns how many it checked.
func checkConfigs(tree, satd string, stdout io.Writer) (int, []Problem) {
	ref, err := exec.Command(satd, "config-reference").Output()
	if err != nil {
		return 0, []Problem{{File: satd, Msg: fmt.Sprintf("satd config-reference: %v", err)}}
	}
	stream := streamSection.Match(ref)
	if !stream {
		fmt.Fprintln(stdout, "note: satd's configuration has no [stream] section yet; stream relay on is not checked")
	}
	script := filepath.Join(tree, "package/satd/render-config.sh")
	tmp, err := os.MkdirTemp("", "brcheck")
	if err != nil {
		return 0, []Problem{{File: tree, Msg: err.Error()}}
	}
	defer os.RemoveAll(tmp)
	readers := filepath.Join(tmp, "readers.toml")
	if err := os.WriteFile(readers, []byte(customReaders), 0o600); err != nil {
		return 0, []Problem{{File: readers, Msg: err.Error()}}
	}
	var problems []Problem
	n := 0
	for _, env := range configCombos(stream) {
		name := strings.Join(env, " ")
		cmd := exec.Command("sh", script)
		cmd.Env = append(append(os.Environ(), env...), "SATD_BOARD_FILE="+readers)
		doc, err := cmd.Output()
		if err != nil {
			problems = append(problems, Problem{File: script, Msg: fmt.Sprintf("%s: %v", name, err)})
			continue
		}
		path := filepath.Join(tmp, fmt.Sprintf("satd-%d.toml", n))
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			return n, append(problems, Problem{File: path, Msg: err.Error()})
		}
		n++
		if out, err := exec.Command(satd, "-check", "-config", path).CombinedOutput(); err != nil {
			problems = append(problems, Problem{File: script, Msg: fmt.Sprintf("%s renders a configuration satd rejects: %s\n%s",
				name, bytes.TrimSpace(out), doc)})
		}
	}
	return n, problems
}
