package testguard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	// markAbsence: a short real deadline that a slow machine can only make
	// the test pass more easily (it waits to see that nothing arrives, or
	// drains what is there), never fail.
	markAbsence = "// absence"
)

// shortDeadline is the shortest real read or write deadline a test may set
// without a marker: a shorter one that must see an answer fails on a
// loaded machine (qemu-user, CI beside other jobs). Wait with a hang guard
// of a minute or more instead.
const shortDeadline = 10 * time.Second

// windowReaders are test helpers that read for a wall-clock window and
// return what arrived: comparing their result with an amount asserts a rate
// in disguise. Read until the amount has arrived instead (readUntil).
var windowReaders = map[string]bool{"readFor": true}

// TestNoWallClockAssertions fails when a test file measures elapsed time
// (time.Since, or an .Elapsed field or method) outside a reported figure, a
// testing/synctest bubble, or a line marked "// figure", "// fake clock" or
// "// pacing"; or asserts what arrived within a wall-clock window: an if
// that compares the result of a window reader (readFor), or a real read or
// write deadline shorter than shortDeadline not marked "// absence".
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
			t.Errorf("%s:%d: %s: "+
				"assert on the condition or amount with a hang guard, or use testing/synctest (mark a reported figure %q)", rel, v.line, v.what, markFigure)
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
	got := flaggedLines(t, src)
	if want := []int{3, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("flagged lines %v, want %v", got, want)
	}
}

// TestGuardCatchesWindows shows the disguised forms the scanner reports: an
// amount compared after a wall-clock read window, and a short real
// deadline; and what it lets through.
func TestGuardCatchesWindows(t *testing.T) {
	src := `package x
func f(t *testing.T, cl *client, c net.Conn, d time.Duration) {
	if b := cl.readFor(time.Second); len(b) < 10000 { // 3: flagged
		t.Fatal("starved")
	}
	if f, _ := countFrames(t, cl.readFor(time.Second+batch)); f < 20 { // 6: flagged
		t.Fatal("few frames")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second)) // 9: flagged
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond)) // 10: flagged
	cl.readFor(300 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) // absence: nothing may arrive
	c.SetReadDeadline(time.Now().Add(time.Minute))
	c.SetReadDeadline(time.Now().Add(d))
	c.SetReadDeadline(time.Now().Add(hangGuard))
	if b := cl.readUntil(t, 10000); len(b) == 0 {
		t.Fatal("nothing")
	}
	synctest.Test(t, func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	})
}
`
	got := flaggedLines(t, src)
	if want := []int{3, 6, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("flagged lines %v, want %v", got, want)
	}
}

// flaggedLines scans src as a test file and returns the lines it flags.
func flaggedLines(t *testing.T, src string) []int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, v := range wallClockUses(t, path) {
		got = append(got, v.line)
	}
	return got
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
		at, what := n.Pos(), elapsedUse(n)
		if what != "" {
			what += " measures wall-clock time outside a reported figure"
		} else {
			at, what = disguisedWindow(n)
		}
		if what == "" || allowedContext(stack[:len(stack)-1]) {
			return true
		}
		if line := fset.Position(at).Line; !marked(line) {
			out = append(out, use{line, what})
		}
		return true
	})
	return out
}

// disguisedWindow names n if it asserts what happened within a wall-clock
// window: an if whose condition compares, and whose init or condition holds
// a window reader's call; or a real deadline time.Now().Add(d) passed to a
// Set*Deadline method, with d a constant shorter than shortDeadline. It
// returns where to report it.
func disguisedWindow(n ast.Node) (token.Pos, string) {
	switch n := n.(type) {
	case *ast.IfStmt:
		if !hasComparison(n.Cond) {
			return 0, ""
		}
		for _, part := range []ast.Node{n.Init, n.Cond} {
			if call := findWindowRead(part); call != nil {
				return call.Pos(), "an amount read within a wall-clock window (readFor) is compared"
			}
		}
	case *ast.CallExpr:
		sel, ok := n.Fun.(*ast.SelectorExpr)
		if !ok || !strings.HasPrefix(sel.Sel.Name, "Set") || !strings.HasSuffix(sel.Sel.Name, "Deadline") || len(n.Args) != 1 {
			return 0, ""
		}
		if d, ok := nowPlus(n.Args[0]); ok && d > 0 && d < shortDeadline {
			return n.Pos(), "a real deadline of " + d.String() + " (shorter than " + shortDeadline.String() +
				") must see an answer (mark a wait for an absence " + strconv.Quote(markAbsence) + ")"
		}
	}
	return 0, ""
}

// hasComparison reports whether e holds an ordering or equality test.
func hasComparison(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryExpr); ok {
			switch b.Op {
			case token.LSS, token.GTR, token.LEQ, token.GEQ, token.EQL, token.NEQ:
				found = true
			}
		}
		return !found
	})
	return found
}

// findWindowRead returns the first call of a window reader within n.
func findWindowRead(n ast.Node) *ast.CallExpr {
	var found *ast.CallExpr
	if n == nil {
		return nil
	}
	ast.Inspect(n, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && found == nil {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && windowReaders[sel.Sel.Name] {
				found = call
			}
		}
		return found == nil
	})
	return found
}

// nowPlus evaluates time.Now().Add(d) for a constant d.
func nowPlus(e ast.Expr) (time.Duration, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return 0, false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Add" {
		return 0, false
	}
	now, ok := sel.X.(*ast.CallExpr)
	if !ok {
		return 0, false
	}
	if s, ok := now.Fun.(*ast.SelectorExpr); !ok || !isIdent(s.X, "time") || s.Sel.Name != "Now" {
		return 0, false
	}
	return constDuration(call.Args[0])
}

// units are the time package's duration constants.
var units = map[string]time.Duration{
	"Nanosecond": time.Nanosecond, "Microsecond": time.Microsecond, "Millisecond": time.Millisecond,
	"Second": time.Second, "Minute": time.Minute, "Hour": time.Hour,
}

// constDuration evaluates a duration written with integer literals and the
// time package's units; anything else (a variable, a call) is not known.
func constDuration(e ast.Expr) (time.Duration, bool) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return constDuration(e.X)
	case *ast.BasicLit:
		if e.Kind != token.INT {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(e.Value, "_", ""), 0, 64)
		return time.Duration(n), err == nil
	case *ast.SelectorExpr:
		u, ok := units[e.Sel.Name]
		return u, ok && isIdent(e.X, "time")
	case *ast.BinaryExpr:
		x, okx := constDuration(e.X)
		y, oky := constDuration(e.Y)
		if !okx || !oky {
			return 0, false
		}
		switch e.Op {
		case token.MUL:
			return x * y, true
		case token.ADD:
			return x + y, true
		case token.SUB:
			return x - y, true
		case token.QUO:
			if y != 0 {
				return x / y, true
			}
		}
	}
	return 0, false
}

// hasMarker reports whether a source line carries one of the markers.
func hasMarker(line string) bool {
	return strings.Contains(line, markFigure) || strings.Contains(line, markFakeClock) ||
		strings.Contains(line, markPacing) || strings.Contains(line, markAbsence)
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
