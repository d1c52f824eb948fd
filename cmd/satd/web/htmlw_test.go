package web

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	stdhtml "html"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// render runs fn on a fresh writer and returns what it wrote.
func render(fn func(h html)) string {
	var b bytes.Buffer
	fn(html{&b})
	return b.String()
}

func TestHTMLText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{`<script>alert(1)</script>`, "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{`a & b`, "a &amp; b"},
		{`"quoted" 'single'`, "&#34;quoted&#34; &#39;single&#39;"},
		{"nul\x00byte", "nul\uFFFDbyte"},
		{"</textarea><img src=x onerror=alert(1)>", "&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;"},
		{"ümlaut – ok", "ümlaut – ok"},
		{"", ""},
	} {
		if got := render(func(h html) { h.text(tt.in) }); got != tt.want {
			t.Errorf("text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTMLAttr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"slot0", ` value="slot0"`},
		{`"><script>alert(1)</script>`, ` value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`},
		{`x' onmouseover='alert(1)`, ` value="x&#39; onmouseover=&#39;alert(1)"`},
		{"a b=c", ` value="a b=c"`},
		{"", ` value=""`},
	} {
		if got := render(func(h html) { h.attr("value", tt.in) }); got != tt.want {
			t.Errorf("attr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTMLURL(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"/config?section=web", true},
		{"/balancer?page=2", true},
		{"/config?section=reader&add=1", true},
		{"http://127.0.0.1:8081/confirm", true},
		{"https://receiver.lan/confirm", true},
		{"//receiver.lan:8081/confirm", true},
		{"javascript:alert(1)", false},
		{"JaVaScRiPt:alert(1)", false},
		{" javascript:alert(1)", false},
		{"java\tscript:alert(1)", false},
		{"java\nscript:alert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"vbscript:msgbox", false},
		{"/\\evil.example", false},
		{"http:opaque", false},
		{"http://", false},
		{"//", false},
		{"", false},
		{"\xff/", false},
	} {
		got := render(func(h html) { h.url("href", tt.in) })
		want := ` href="` + stdhtml.EscapeString(tt.in) + `"`
		if !tt.ok {
			want = ` href="` + invalidURL + `"`
		}
		if got != want {
			t.Errorf("url(%q) = %q, want %q", tt.in, got, want)
		}
	}
}

// TestHTMLWriteAllocs guards the writer: escaping into a buffer with room
// allocates nothing.
func TestHTMLWriteAllocs(t *testing.T) {
	var b bytes.Buffer
	b.Grow(1 << 16)
	h := html{&b}
	n := testing.AllocsPerRun(100, func() {
		b.Reset()
		h.raw(`<td class="mono">`)
		h.text(`<script>alert("x") & 'y'</script>`)
		h.attr("value", `"quoted"`)
		h.int(-42)
		h.uint(42)
		h.raw(`</td>`)
	})
	if n != 0 {
		t.Errorf("writing allocates %.1f times", n)
	}
}

// FuzzHTMLEscape checks that no text, through text or attr, can produce
// markup: no < or > at all, no quote that ends the attribute early, and the
// browser reads back exactly the text given (NUL aside).
func FuzzHTMLEscape(f *testing.F) {
	for _, s := range []string{"", "plain", `<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, "x' y='z", "&amp;&#34;", "\x00<\x00", "\xff\xfe<", "</textarea>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text := render(func(h html) { h.text(s) })
		if strings.ContainsAny(text, "<>\"'\x00") {
			t.Fatalf("text(%q) = %q: contains a markup character", s, text)
		}
		want := strings.ReplaceAll(s, "\x00", "\uFFFD")
		if got := stdhtml.UnescapeString(text); got != want {
			t.Fatalf("text(%q) reads back as %q", s, got)
		}
		attr := render(func(h html) { h.attr("title", s) })
		inner, ok := strings.CutPrefix(attr, ` title="`)
		inner, ok2 := strings.CutSuffix(inner, `"`)
		if !ok || !ok2 || strings.ContainsAny(inner, "<>\"'") {
			t.Fatalf("attr(%q) = %q: breaks out of its quotes", s, attr)
		}
		if got := stdhtml.UnescapeString(inner); got != want {
			t.Fatalf("attr(%q) reads back as %q", s, got)
		}
		link := render(func(h html) { h.url("href", s) })
		inner = strings.TrimSuffix(strings.TrimPrefix(link, ` href="`), `"`)
		if strings.ContainsAny(inner, "<>\"'") {
			t.Fatalf("url(%q) = %q: breaks out of its quotes", s, link)
		}
		if u, err := url.Parse(stdhtml.UnescapeString(inner)); err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("url(%q) = %q: a scheme other than http(s) got through", s, link)
		}
	})
}

// TestNoMarkupConversions keeps raw for constants: no file of the package
// converts a value to markup explicitly (which would let untrusted text
// through unescaped).
func TestNoMarkupConversions(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "markup" {
					t.Errorf("%s: converts a value to markup; use text or attr", fset.Position(c.Pos()))
				}
			}
			return true
		})
	}
}
