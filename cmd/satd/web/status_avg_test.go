package web

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestReaderAverageShown: a measured average shows in milliseconds, 0 ms
// included; a reader with no found answer shows "–".
func TestReaderAverageShown(t *testing.T) {
	for _, tc := range []struct {
		ok   uint64
		avg  time.Duration
		want string
	}{{1, 0, "<td>0 ms</td>"}, {3, 180 * time.Millisecond, "<td>180 ms</td>"}, {0, 0, "<td>–</td>"}} {
		var b bytes.Buffer
		writeReader(html{&b}, &ReaderStatus{Label: "slot0", ECMOK: tc.ok, AvgTime: tc.avg})
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("ok %d avg %v: row lacks %s:\n%s", tc.ok, tc.avg, tc.want, b.String())
		}
	}
}
