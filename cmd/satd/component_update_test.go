package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/update"
)

func TestDaemonHealthWebURL(t *testing.T) {
	tests := []struct {
		listen  string
		enabled bool
		want    string
	}{
		{"127.0.0.1:8080", true, "http://127.0.0.1:8080/"},
		{"0.0.0.0:80", true, "http://127.0.0.1:80/"},
		{":8080", true, "http://127.0.0.1:8080/"},
		{"192.168.1.5:8080", true, "http://192.168.1.5:8080/"},
		{"127.0.0.1:8080", false, ""},
	}
	for _, tc := range tests {
		cfg := config.Default()
		cfg.Web.Listen, cfg.Web.Enabled = tc.listen, tc.enabled
		if got := (daemonHealth{d: &daemon{cfg: cfg}}).WebURL(); got != tc.want {
			t.Errorf("listen %q enabled %v: WebURL %q, want %q", tc.listen, tc.enabled, got, tc.want)
		}
	}
}

func TestMakeManifest(t *testing.T) {
	payload := filepath.Join(t.TempDir(), "satd-linux-armv7")
	os.WriteFile(payload, []byte("binary"), 0o755)
	var out, errs bytes.Buffer
	code := dispatch([]string{"make-manifest", "-version", "1.2.0", "-board", "satrx-armv7", payload}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	m, err := update.ParseManifest("out", out.Bytes())
	if err != nil || m.Size != 6 || m.URL != "satd-linux-armv7" || m.Kind != update.KindBinary {
		t.Errorf("manifest %+v, %v", m, err)
	}
	code = dispatch([]string{"make-manifest", "-version", "one", "-board", "b", payload}, &out, &errs)
	if code == 0 || !strings.Contains(errs.String(), "version") {
		t.Errorf("bad version accepted: %d %s", code, errs.String())
	}
}
