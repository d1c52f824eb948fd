package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Manual sections the messages point to, as check-package does.
const (
	urlConfig = "https://nightly.buildroot.org/#_config_files"
	urlMk     = "https://nightly.buildroot.org/#writing-rules-mk"
	urlInit   = "https://nightly.buildroot.org/#adding-packages-start-script"
	urlHash   = "https://nightly.buildroot.org/#adding-packages-hash"
	urlExt    = "https://nightly.buildroot.org/#outside-br-custom"
)

// Problem is one rule violation: file, line (0 = the whole file) and message.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// report collects the problems of one file.
type report struct {
	file string
	out  *[]Problem
}

func (r report) add(line int, format string, args ...any) {
	*r.out = append(*r.out, Problem{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// checkText applies the rules every file obeys.
func checkText(r report, lines []string, raw string) {
	if raw != "" && !strings.HasSuffix(raw, "\n") {
		r.add(len(lines), "missing newline at end of file")
	}
	for i, l := range lines {
		if strings.TrimRight(l, " \t") != l {
			r.add(i+1, "line contains trailing whitespace")
		}
		if i > 0 && l == "" && lines[i-1] == "" {
			r.add(i+1, "consecutive empty lines")
		}
	}
	if n := len(lines); n > 0 && lines[n-1] == "" {
		r.add(n, "empty line at end of file")
	}
}

// splitLines splits a file into lines without their newlines.
func splitLines(raw string) []string {
	if raw == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(raw, "\n"), "\n")
}

var (
	kconfigEntry = regexp.MustCompile(`^(config|menuconfig|choice|endchoice|if|endif|menu|endmenu|source|comment|mainmenu)\b`)
	kconfigAttr  = regexp.MustCompile(`^\s*(bool|tristate|string|int|hex|prompt|default|depends|select|imply|range|help|option|visible)\b`)
	kconfigSym   = regexp.MustCompile(`^(?:config|menuconfig)\s+(\S+)`)
)

// attrRank orders a config entry's attributes as the manual asks: type,
// default, depends on, select, help.
var attrRank = map[string]int{
	"bool": 0, "tristate": 0, "string": 0, "int": 0, "hex": 0, "prompt": 0,
	"default": 1, "range": 1,
	"depends": 2, "visible": 2,
	"select": 3, "imply": 3,
	"help": 4,
}

// checkConfigIn applies the Config.in rules. pkg is the package directory
// name when the file is package/<pkg>/Config.in, else "".
func checkConfigIn(r report, lines []string, pkg string) {
	inHelp, cont, rank := false, false, -1
	for i, l := range lines {
		n := i + 1
		if inHelp {
			if l == "" {
				continue
			}
			if strings.HasPrefix(l, "\t  ") {
				if text := strings.TrimPrefix(l, "\t  "); len(text) > 62 {
					r.add(n, "help text: <tab><2 spaces><62 chars> (%s)", urlConfig)
				}
				continue
			}
			if strings.HasPrefix(l, "\t") && !kconfigAttr.MatchString(l) {
				r.add(n, "help text: <tab><2 spaces><62 chars> (%s)", urlConfig)
				continue
			}
			inHelp = false
		}
		switch {
		case l == "" || strings.HasPrefix(strings.TrimSpace(l), "#"):
		case cont:
			if !strings.HasPrefix(l, "\t\t") || strings.HasPrefix(l, "\t\t\t") {
				r.add(n, "continuation line should be indented using tabs (two tabs) (%s)", urlConfig)
			}
		case kconfigEntry.MatchString(l):
			rank = -1
			if m := kconfigSym.FindStringSubmatch(l); m != nil && pkg != "" {
				want := "BR2_PACKAGE_" + strings.ToUpper(strings.ReplaceAll(pkg, "-", "_"))
				if m[1] != want && !strings.HasPrefix(m[1], want+"_") {
					r.add(n, "config symbol %s should start with %s (%s)", m[1], want, urlConfig)
				}
			}
		case kconfigAttr.MatchString(l):
			if !strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "\t ") || strings.HasPrefix(l, "\t\t") {
				r.add(n, "should be indented with one tab (%s)", urlConfig)
			}
			word := kconfigAttr.FindStringSubmatch(l)[1]
			if k := attrRank[word]; k < rank {
				r.add(n, "attributes order: type, default, depends on, select, help (%s)", urlConfig)
			} else {
				rank = k
			}
			if strings.Fields(l)[0] == "default" && strings.TrimSpace(l) == "default n" {
				r.add(n, "boolean symbols default to 'n', so 'default n' is redundant")
			}
			inHelp = word == "help"
		default:
			r.add(n, "unexpected line: not a Config.in entry or attribute (%s)", urlConfig)
		}
		cont = strings.HasSuffix(l, "\\")
	}
}

var (
	mkAssign   = regexp.MustCompile(`^([A-Za-z0-9_.-]+)(\s*)(\+=|:=|\?=|=)(\s*)(.*)$`)
	mkCond     = regexp.MustCompile(`^(ifeq|ifneq|else|endif|ifdef|ifndef)\b`)
	mkHashLine = strings.Repeat("#", 80)
)

// mkTypos are misspelled package variable suffixes seen in real packages.
var mkTypos = map[string]string{
	"LICENCE":             "LICENSE",
	"LICENCE_FILES":       "LICENSE_FILES",
	"LICENSE_FILE":        "LICENSE_FILES",
	"DEPENDENCY":          "DEPENDENCIES",
	"DEPENDANCIES":        "DEPENDENCIES",
	"INSTALL_TARGET_CMD":  "INSTALL_TARGET_CMDS",
	"BUILD_CMD":           "BUILD_CMDS",
	"POST_INSTALL_HOOKS":  "POST_INSTALL_TARGET_HOOKS",
	"INSTALL_INIT_SYSTEM": "INSTALL_INIT_SYSV",
}

// checkMk applies the .mk rules to package/<pkg>/<pkg>.mk.
func checkMk(r report, lines []string, pkg string) {
	prefix := strings.ToUpper(strings.ReplaceAll(pkg, "-", "_")) + "_"
	header := []string{mkHashLine, "#", "# " + pkg, "#", mkHashLine, ""}
	for i, want := range header {
		if i >= len(lines) || lines[i] != want {
			r.add(i+1, "package header: 80 hashes, '#', '# %s', '#', 80 hashes, empty line (%s)", pkg, urlMk)
			break
		}
	}
	depth, inDefine, cont := 0, false, false
	setAt := map[string]int{} // variable -> depth of its first plain assignment
	vars := map[string]string{}
	for i, l := range lines {
		n := i + 1
		wasCont := cont
		cont = strings.HasSuffix(l, "\\")
		if cont && (len(l) < 2 || l[len(l)-2] != ' ' || strings.HasSuffix(l, "  \\")) {
			r.add(n, "use one space before the backslash (%s)", urlMk)
		}
		if cont && (i+1 == len(lines) || strings.TrimSpace(lines[i+1]) == "") {
			r.add(n, "trailing backslash on the last line of the block (%s)", urlMk)
		}
		switch {
		case strings.HasPrefix(l, "define "):
			inDefine = true
			continue
		case l == "endef":
			inDefine = false
			continue
		case inDefine:
			if l != "" && !strings.HasPrefix(l, "\t") {
				r.add(n, "define block lines should be indented with a tab (%s)", urlMk)
			}
			continue
		case wasCont:
			if l != "" && !strings.HasPrefix(l, "\t") {
				r.add(n, "continuation line should be indented with a tab (%s)", urlMk)
			}
			continue
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		}
		if m := mkCond.FindStringSubmatch(l); m != nil {
			switch m[1] {
			case "ifdef", "ifndef":
				sym := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(l, m[1]), " "))
				r.add(n, "use ifeq ($(%s),y) instead of %s %s (%s)", sym, m[1], sym, urlMk)
				depth++
			case "ifeq", "ifneq":
				depth++
			case "endif":
				depth--
			}
			continue
		}
		m := mkAssign.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		name, op, value := m[1], m[3], m[5]
		if m[2] != " " || (m[4] != " " && value != "") {
			r.add(n, "use one space around the assignment operator: %s %s %s (%s)", name, op, value, urlMk)
		}
		checkMkVar(r, n, prefix, name, op, value)
		vars[name] = value
		if op == "=" || op == ":=" {
			if d, seen := setAt[name]; seen {
				switch {
				case depth > 0 && d == 0:
					r.add(n, "conditional override of variable %s previously set unconditionally; use += (%s)", name, urlMk)
				case depth == 0 && d > 0:
					r.add(n, "unconditional override of variable %s previously conditionally set (%s)", name, urlMk)
				}
			} else {
				setAt[name] = depth
			}
		}
	}
	if _, ok := vars[prefix+"LICENSE"]; !ok {
		r.add(0, "%sLICENSE is not set: every package states its license (%s)", prefix, urlMk)
	} else if _, ok := vars[prefix+"LICENSE_FILES"]; !ok {
		r.add(0, "%sLICENSE is set but %sLICENSE_FILES is not (%s)", prefix, prefix, urlMk)
	}
}

func checkMkVar(r report, n int, prefix, name, op, value string) {
	switch {
	case strings.HasPrefix(name, prefix), strings.HasPrefix(name, "HOST_"+prefix):
	default:
		r.add(n, "possible typo: %s does not start with %s (%s)", name, prefix, urlMk)
		return
	}
	suffix := strings.TrimPrefix(strings.TrimPrefix(name, "HOST_"), prefix)
	if good, bad := mkTypos[suffix]; bad {
		r.add(n, "possible typo: %s, did you mean %s%s? (%s)", name, prefix, good, urlMk)
	}
	v := strings.TrimSpace(value)
	switch {
	case suffix == "SITE" && strings.HasSuffix(v, "/"):
		r.add(n, "%s cannot have a trailing slash (%s)", name, urlMk)
	case suffix == "INSTALL_STAGING" && v == "NO", suffix == "INSTALL_TARGET" && v == "YES":
		r.add(n, "useless default value: %s = %s (%s)", name, v, urlMk)
	}
}

var (
	sysvName    = regexp.MustCompile(`^S[0-9][0-9](.+)$`)
	sysvDaemon  = regexp.MustCompile(`^DAEMON="([^"]*)"`)
	sysvPidfile = regexp.MustCompile(`^PIDFILE=`)
)

// checkSysV applies the start script rules to package/<pkg>/S<nn><daemon>.
func checkSysV(r report, path string, lines []string) {
	base := filepath.Base(path)
	daemon := ""
	for i, l := range lines {
		n := i + 1
		if m := sysvDaemon.FindStringSubmatch(l); m != nil {
			daemon = m[1]
			if strings.Contains(daemon, "/") {
				r.add(n, "Do not include path in DAEMON (%s)", urlInit)
			}
		}
		if sysvPidfile.MatchString(l) && l != `PIDFILE="/var/run/$DAEMON.pid"` {
			r.add(n, `Incorrect PIDFILE value, use PIDFILE="/var/run/$DAEMON.pid" (%s)`, urlInit)
		}
		if strings.HasPrefix(l, " ") {
			r.add(n, "should be indented with tabs (%s)", urlInit)
		}
	}
	if daemon == "" {
		r.add(0, `DAEMON="name" is not set (%s)`, urlInit)
	} else if m := sysvName.FindStringSubmatch(base); m == nil || m[1] != filepath.Base(daemon) {
		r.add(0, "filename should be S<number><number><daemon name>: expected S??%s (%s)", filepath.Base(daemon), urlInit)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode()&0o111 != 0 {
		r.add(0, "This file does not need to be executable, just make sure you use '$(INSTALL) -D -m 0755' in the .mk file")
	}
}

var hashTypes = map[string]int{"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}

// checkHash applies the .hash rules: "<type>  <hash>  <file>".
func checkHash(r report, lines []string) {
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "  ")
		if len(f) != 3 || strings.ContainsAny(f[0]+f[1], " \t") {
			r.add(i+1, "separation does not match expectation: <type>  <hash>  <file> with two spaces (%s)", urlHash)
			continue
		}
		size, ok := hashTypes[f[0]]
		if !ok {
			r.add(i+1, "unexpected hash type %q (%s)", f[0], urlHash)
		} else if len(f[1]) != size {
			r.add(i+1, "hash size does not match type %s (%s)", f[0], urlHash)
		}
	}
}

var extName = regexp.MustCompile(`^name: [A-Za-z0-9_]+$`)

// checkExternalDesc checks external.desc: "name: NAME" first, charset
// [A-Za-z0-9_].
func checkExternalDesc(r report, lines []string) {
	if len(lines) == 0 || !extName.MatchString(lines[0]) {
		r.add(1, "first line must be 'name: NAME' with NAME in [A-Za-z0-9_] (%s)", urlExt)
	}
}

// checkDefconfig wants hash checking forced in external defconfigs.
func checkDefconfig(r report, lines []string) {
	for _, l := range lines {
		if l == "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y" {
			return
		}
	}
	r.add(0, "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES=y")
}
