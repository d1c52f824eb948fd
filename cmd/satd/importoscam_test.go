package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/channels"
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

// TestImportOSCamCarriesNames converts oscam.srvid2 and lamedb with the
// OSCam files into the names table satd reads.
func TestImportOSCamCarriesNames(t *testing.T) {
	dir := t.TempDir()
	srvid2 := filepath.Join(dir, "oscam.srvid2")
	lamedb := filepath.Join(dir, "lamedb")
	os.WriteFile(srvid2, []byte("0001:0B00@000000|Demo Eins|TV||Demo\n"), 0o644)
	os.WriteFile(lamedb, []byte("eDVB services /4/\nservices\n0002:00c00000:0001:0001:1:0\nDemo Zwei\np:Demo\nend\n"), 0o644)
	names := filepath.Join(dir, "names.srvid2")
	var stdout, stderr bytes.Buffer
	args := []string{"import-oscam", "-server", "../../testdata/oscam/oscam.server", "-srvid2", srvid2, "-lamedb", lamedb, "-names", names}
	if code := dispatch(args, &stdout, &stderr); code != 0 {
		t.Fatalf("import-oscam: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "channel names: 2 written to "+names) {
		t.Errorf("report lacks the names:\n%s", stderr.String())
	}
	tab, probs, err := channels.Load(names)
	if err != nil || len(probs) != 0 || tab.Name(0x0B00, 0, 1) != "Demo Eins" || tab.Name(0x0B00, 0, 2) != "Demo Zwei" {
		t.Errorf("names table: %v %v, 0001=%q 0002=%q", err, probs, tab.Name(0x0B00, 0, 1), tab.Name(0x0B00, 0, 2))
	}
}
