package testguard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reporters are the calls whose arguments only print or report a figure:
// an elapsed time passed to them is never compared with anything.
var reporters = map[string]bool{
	"Log": true, "Logf": true, "ReportMetric": true,
	"Error": true, "Errorf": true, "Fatal": true, "Fatalf": true, "Skipf": true,
	"Print": true, "Printf": true, "Println": true,
	"Fprint": true, "Fprintf": true, "Fprintln": true,
}

// Markers a line (or the line above it) may carry to say why a measurement
// of elapsed time is not an assertion on the wall clock.
const (
	// markFigure: the value is only reported (printed, logged, a metric).
	markFigure = "// figure"
	// markFakeClock: the code runs only inside a testing/synctest bubble,
	// where time is the bubble's fake clock.
	markFakeClock = "// fake clock"
	// markPacing: a simulated peer paces what it sends to real time (as
	// an encoder or upstream does); nothing is asserted on it.
	markPacing = "// pacing"
)

// TestNoWallClockAssertions fails when a test file measures elapsed time
// (time.Since, or an .Elapsed field or method) outside a reported figure, a
// testing/synctest bubble, or a line marked "// figure", "// fake clock" or
// "// pacing".
// A test that asserts how long something took on the real clock fails on a
// loaded machine; wait on the condition (with a generous hang guard) or run
// the code under synctest instead.
func TestNoWallClockAssertions(t *testing.T) {
	root := moduleRoot(t)
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		for _, v := range wallClockUses(t, path) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s:%d: %s measures wall-clock time outside a reported figure: "+
				"assert on the condition or use testing/synctest (mark a reported figure %q)", rel, v.line, v.what, markFigure)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned %d test files under %s; expected the whole module", files, root)
	}
}

// TestGuardCatchesAssertions runs the scanner on a small source to show which
// forms it reports and which it lets through.
func TestGuardCatchesAssertions(t *testing.T) {
	src := `package x
func f(t *testing.T, b *testing.B, start time.Time, r result) {
	if time.Since(start) > time.Second { // 3: flagged
		t.Fatal("slow")
	}
	took := time.Since(start) // 6: flagged
	_ = r.Elapsed < time.Second // 7: flagged
	t.Logf("took %v", time.Since(start))
	b.ReportMetric(float64(time.Since(start).Nanoseconds()), "ns/op")
	fig := time.Since(start) // figure
	// fake clock
	fake := time.Since(start)
	synctest.Test(t, func(t *testing.T) {
		if time.Since(start) != time.Millisecond {
			t.Error(took, fig, fake)
		}
	})
}
`
	dir := t.TempDir()
	path := filepath.Join(dir, "x_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, v := range wallClockUses(t, path) {
		got = append(got, v.line)
	}
	if want := []int{3, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("flagged lines %v, want %v", got, want)
	}
}

type use struct {
	line int
	what string
}

// wallClockUses parses one test file and returns its measurements of elapsed
// time that are neither reported figures, nor inside a synctest bubble, nor
// marked.
func wallClockUses(t *testing.T, path string) []use {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	lines := strings.Split(string(src), "\n")
	marked := func(n int) bool {
		for _, l := range []int{n - 1, n - 2} { // this line, the line above
			if l >= 0 && l < len(lines) && hasMarker(lines[l]) {
				return true
			}
		}
		return false
	}
	var out []use
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		what := elapsedUse(n)
		if what == "" || allowedContext(stack[:len(stack)-1]) {
			return true
		}
		if line := fset.Position(n.Pos()).Line; !marked(line) {
			out = append(out, use{line, what})
		}
		return true
	})
	return out
}

// hasMarker reports whether a source line carries one of the markers.
func hasMarker(line string) bool {
	return strings.Contains(line, markFigure) || strings.Contains(line, markFakeClock) || strings.Contains(line, markPacing)
}

// elapsedUse names n if it measures elapsed time: a call of time.Since or a
// selector .Elapsed.
func elapsedUse(n ast.Node) string {
	switch n := n.(type) {
	case *ast.CallExpr:
		if sel, ok := n.Fun.(*ast.SelectorExpr); ok && isIdent(sel.X, "time") && sel.Sel.Name == "Since" {
			return "time.Since"
		}
	case *ast.SelectorExpr:
		if n.Sel.Name == "Elapsed" {
			return ".Elapsed"
		}
	}
	return ""
}

// allowedContext reports whether any enclosing node makes an elapsed time
// harmless: an argument of a reporting call, or code inside synctest.Test or
// synctest.Run.
func allowedContext(stack []ast.Node) bool {
	for _, n := range stack {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			continue
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			continue
		}
		if isIdent(sel.X, "synctest") && (sel.Sel.Name == "Test" || sel.Sel.Name == "Run") {
			return true
		}
		if reporters[sel.Sel.Name] {
			return true
		}
	}
	return false
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
