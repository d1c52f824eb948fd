package balancer

import (
	"strings"
	"testing"
)

// TestStatFileLongLineSkippedAlone (issue 16 row 22): one 2 MB line is
// skipped with a problem naming it; the entries around it load.
func TestStatFileLongLineSkippedAlone(t *testing.T) {
	good := "sat1,0,0963,000000,1234,0000,182,47,1711500000,0,8C\n"
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"middle", good + strings.Repeat("x", 2<<20) + "\n" + good},
		{"last, no newline", good + good + strings.Repeat("y", 2<<20)},
		{"just over the bound", good + strings.Repeat("z", maxStatLine) + "\n" + good},
	} {
		recs, probs, err := ParseStatFile(strings.NewReader(tc.in))
		if err != nil || len(recs) != 2 || len(probs) != 1 {
			t.Errorf("%s: %d records, problems %v, err %v; want 2 records and 1 problem", tc.name, len(recs), probs, err)
			continue
		}
		if !strings.Contains(probs[0].Error(), "longer than") {
			t.Errorf("%s: problem %q does not say why", tc.name, probs[0])
		}
	}
	// The longest allowed line still parses as a line.
	long := "sat1,0,0963,000000,1234,0000,182,47,1711500000,0,8C" + strings.Repeat(" ", maxStatLine-1-len(good)+1) + "\n"
	if recs, probs, _ := ParseStatFile(strings.NewReader(long + good)); len(recs) != 2 || len(probs) != 0 {
		t.Errorf("a line at the bound: %d records, problems %v", len(recs), probs)
	}
}
