package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportOSCamPassesCheck converts the representative OSCam configuration
// in testdata and runs `satd -check` on the result.
func TestImportOSCamPassesCheck(t *testing.T) {
	out := filepath.Join(t.TempDir(), "satd.toml")
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"import-oscam", "-dir", "../../testdata/oscam", "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("import-oscam: exit %d\n%s", code, stderr.String())
	}
	report := stderr.String()
	for _, want := range []string{"mapped (", "ignored (", "-> web.listen", "card-sharing protocol"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	stdout.Reset()
	if code := dispatch([]string{"-config", out, "-check"}, &stdout, &stdout); code != 0 {
		t.Fatalf("satd -check on the converted file: exit %d\n%s", code, stdout.String())
	}
	if code := dispatch([]string{"import-oscam", "-conf", "does/not/exist"}, &stdout, &stderr); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}
