package main

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestBadTree checks that every rule fires on the deliberately bad fixture
// tree, at the right line and with the right message, and nothing else does.
func TestBadTree(t *testing.T) {
	want := []string{
		"external.desc:1: first line must be 'name: NAME'",
		"package/badpkg/Config.in:2: should be indented with one tab",
		"package/badpkg/Config.in:3: boolean symbols default to 'n', so 'default n' is redundant",
		"package/badpkg/Config.in:5: attributes order: type, default, depends on, select, help",
		"package/badpkg/Config.in:7: help text: <tab><2 spaces><62 chars>",
		"package/badpkg/Config.in:8: help text: <tab><2 spaces><62 chars>",
		"package/badpkg/Config.in:10: config symbol BR2_PACKAGE_OTHER should start with BR2_PACKAGE_BADPKG",
		"package/badpkg/S50badpkg:3: Do not include path in DAEMON",
		"package/badpkg/S50badpkg:4: Incorrect PIDFILE value",
		"package/badpkg/S50badpkg:7: should be indented with tabs",
		"package/badpkg/S50badpkg:0: filename should be S<number><number><daemon name>: expected S??badd",
		"package/badpkg/S50badpkg:0: This file does not need to be executable",
		"package/badpkg/badpkg.hash:1: separation does not match expectation",
		"package/badpkg/badpkg.hash:2: hash size does not match type sha256",
		"package/badpkg/badpkg.mk:1: package header: 80 hashes",
		"package/badpkg/badpkg.mk:7: use one space around the assignment operator: BADPKG_VERSION = 1.0",
		"package/badpkg/badpkg.mk:8: BADPKG_SITE cannot have a trailing slash",
		"package/badpkg/badpkg.mk:9: possible typo: BADPKG_LICENCE, did you mean BADPKG_LICENSE?",
		"package/badpkg/badpkg.mk:10: useless default value: BADPKG_INSTALL_STAGING = NO",
		"package/badpkg/badpkg.mk:11: possible typo: BAPKG_DEPENDENCIES does not start with BADPKG_",
		"package/badpkg/badpkg.mk:12: use ifeq ($(BR2_PACKAGE_ZLIB),y) instead of ifdef BR2_PACKAGE_ZLIB",
		"package/badpkg/badpkg.mk:13: conditional override of variable BADPKG_VERSION",
		"package/badpkg/badpkg.mk:17: define block lines should be indented with a tab",
		"package/badpkg/badpkg.mk:20: consecutive empty lines",
		"package/badpkg/badpkg.mk:21: use one space before the backslash",
		"package/badpkg/badpkg.mk:22: trailing backslash on the last line of the block",
		"package/badpkg/badpkg.mk:24: line contains trailing whitespace",
		"package/badpkg/badpkg.mk:27: empty line at end of file",
		"package/badpkg/badpkg.mk:0: BADPKG_LICENSE is not set",
	}
	problems, files, err := checkTree("testdata/bad", false)
	if err != nil {
		t.Fatal(err)
	}
	if files != 6 {
		t.Errorf("checked %d files, want 6", files)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	sort.Strings(got)
	matched := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !matched[i] && strings.HasPrefix(g, w) {
				matched[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing problem %q", w)
		}
	}
	for i, g := range got {
		if !matched[i] {
			t.Errorf("unexpected problem %q", g)
		}
	}
}

// TestBadInitScriptShellcheck checks that shellcheck findings are reported
// with their line.
func TestBadInitScriptShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed (.ci/deps buildroot)")
	}
	problems, err := checkFile("testdata/bad/package/badpkg/S50badpkg", "S50badpkg", true)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, p := range problems {
		all.WriteString(p.String() + "\n")
	}
	for _, w := range []string{"S50badpkg:7: shellcheck: error: Iterating over ls output is fragile", "[SC2086]"} {
		if !strings.Contains(all.String(), w) {
			t.Errorf("missing %q in:\n%s", w, all.String())
		}
	}
}

// TestRealTree checks that satd's own external tree passes every rule.
func TestRealTree(t *testing.T) {
	_, err := exec.LookPath("shellcheck")
	problems, files, cerr := checkTree("..", err == nil)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if files < 7 {
		t.Errorf("checked %d files of buildroot/, want at least 7", files)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestSiteRules checks the _SITE and variable rules on single lines,
// including the cases check-package itself misses.
func TestSiteRules(t *testing.T) {
	header := "################################################################################\n#\n# foo\n#\n################################################################################\n\n"
	for _, tc := range []struct{ body, want string }{
		{"FOO_SITE = $(BR2_EXTERNAL_X_PATH)/../\n", "FOO_SITE cannot have a trailing slash"},
		{"FOO_LICENSE = MIT\n", "FOO_LICENSE is set but FOO_LICENSE_FILES is not"},
		{"FOO_LICENSE=MIT\nFOO_LICENSE_FILES = COPYING\n", "use one space around the assignment operator"},
		{"FOO_LICENSE = MIT\nFOO_LICENSE_FILES = COPYING\nifeq ($(BR2_X),y)\nFOO_CONF_OPTS = -x\nendif\nFOO_CONF_OPTS = -y\n", "unconditional override of variable FOO_CONF_OPTS previously conditionally set"},
	} {
		var out []Problem
		checkMk(report{file: "foo.mk", out: &out}, splitLines(header+tc.body), "foo")
		found := false
		for _, p := range out {
			found = found || strings.Contains(p.Msg, tc.want)
		}
		if !found {
			t.Errorf("%q: want %q, got %v", tc.body, tc.want, out)
		}
	}
}
