package iso7816

import (
	"bufio"
	"encoding/hex"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// corpusPath is the ATR list of the Debian package pcsc-tools (GPL-2.0; read
// at test time, never vendored).
const corpusPath = "/usr/share/pcsc/smartcard_list.txt"

var literalATR = regexp.MustCompile(`^3[BF]( [0-9A-F]{2})*$`)

// TestATRCorpus parses every literal ATR of the pcsc-tools list: all must be
// accepted leniently, and a strict parse must never accept a TCK that does
// not XOR to zero or omit a mandatory one.
func TestATRCorpus(t *testing.T) {
	f, err := os.Open(corpusPath)
	if err != nil {
		t.Skipf("ATR corpus not available (install Debian package pcsc-tools; `make test` does): %v", err)
	}
	defer f.Close()
	var literal, strict, lenient int
	why := map[string]int{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if !literalATR.MatchString(s) {
			continue
		}
		literal++
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatalf("%s:%d: %v", corpusPath, line, err)
		}
		if a, err := ParseATR(b, Strict); err == nil {
			strict++
			needTCK := a.Protocols&^1 != 0
			if needTCK != a.HasTCK || a.HasTCK && tck(a.Raw) != 0 {
				t.Errorf("%s:%d: strict parse of %s violates the TCK rule", corpusPath, line, s)
			}
			continue
		}
		a, err := ParseATR(b, Lenient)
		if err != nil {
			t.Errorf("%s:%d: lenient parse of %s: %v", corpusPath, line, s, err)
			continue
		}
		lenient++
		var ds []string
		for _, d := range a.Deviations {
			ds = append(ds, d.String())
		}
		why[strings.Join(ds, " + ")]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if literal < 1000 {
		t.Fatalf("only %d literal ATRs in %s: file truncated?", literal, corpusPath)
	}
	t.Logf("ATR corpus %s: %d literal ATRs, %d strict, %d only lenient, %d rejected", corpusPath, literal, strict, lenient, literal-strict-lenient)

	keys := make([]string, 0, len(why))
	for k := range why {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  lenient because of %s: %d", k, why[k])
	}
}
