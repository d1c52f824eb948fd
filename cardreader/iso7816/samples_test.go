package iso7816

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// sampleFile lists hand-made ATRs with the parse outcome each must have.
const sampleFile = "../../testdata/atr/atrs.txt"

type sample struct {
	line   int
	atr    []byte
	expect string
}

func readSamples(tb testing.TB) []sample {
	tb.Helper()
	f, err := os.Open(sampleFile)
	if err != nil {
		tb.Fatalf("open samples: %v", err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			tb.Fatalf("%s:%d: want HEX | expected | note", sampleFile, n)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(parts[0]), " ", ""))
		if err != nil {
			tb.Fatalf("%s:%d: %v", sampleFile, n, err)
		}
		out = append(out, sample{n, b, strings.TrimSpace(parts[1])})
	}
	return out
}

func TestSampleATRs(t *testing.T) {
	for _, s := range readSamples(t) {
		_, serr := ParseATR(s.atr, Strict)
		a, lerr := ParseATR(s.atr, Lenient)
		switch {
		case s.expect == "strict":
			if serr != nil {
				t.Errorf("%s:%d: strict: %v", sampleFile, s.line, serr)
			}
		case s.expect == "reject":
			if lerr == nil {
				t.Errorf("%s:%d: accepted leniently, want rejection", sampleFile, s.line)
			}
		case strings.HasPrefix(s.expect, "lenient: "):
			if serr == nil || lerr != nil {
				t.Errorf("%s:%d: strict %v, lenient %v", sampleFile, s.line, serr, lerr)
				continue
			}
			var got []string
			for _, d := range a.Deviations {
				got = append(got, d.String())
			}
			if g := strings.Join(got, ", "); g != strings.TrimPrefix(s.expect, "lenient: ") {
				t.Errorf("%s:%d: deviations %q, want %q", sampleFile, s.line, g, s.expect)
			}
		default:
			t.Errorf("%s:%d: unknown expectation %q", sampleFile, s.line, s.expect)
		}
	}
}
