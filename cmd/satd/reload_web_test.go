package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
)

// TestSIGHUPReloadReachesTheForm: a SIGHUP reload that adds a reader shows
// the restart banner on the form's pages, one that takes it out again ends
// it, and a channel names file replaced in the state directory is read
// again by the reload.
func TestSIGHUPReloadReachesTheForm(t *testing.T) {
	d := startRig(t)
	base, err := cloneForTest(d.config())
	if err != nil {
		t.Fatal(err)
	}
	// The saved file must validate: a port picked free, not 0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base.Web.Enabled, base.Web.Listen = true, ln.Addr().String()
	base.DVBAPI.Enabled, base.Stream.Enabled = false, false // not started by this rig
	ln.Close()
	d.mu.Lock()
	d.cfg, d.configPath = base, filepath.Join(base.Global.StateDir, "satd.toml")
	d.mu.Unlock()
	form := startWeb(t, &e2eDaemon{d: d})
	c := loggedIn(t, form)
	hup := func(cfg *config.Config) string {
		t.Helper()
		if err := config.Save(d.configPath, cfg); err != nil {
			t.Fatal(err)
		}
		d.reload(d.log.component("main"))
		return getOK(t, c, "http://"+form+"/")
	}

	more, err := cloneForTest(base)
	if err != nil {
		t.Fatal(err)
	}
	more.Readers = append(more.Readers, simReader("card2", "conax"))
	srvid2 := "0001:0B00|Demo One|TV||Demo\n"
	if err := os.WriteFile(filepath.Join(base.Global.StateDir, channels.File), []byte(srvid2), 0o600); err != nil {
		t.Fatal(err)
	}
	page := hup(more)
	if !strings.Contains(page, `id="restart-banner"`) || !strings.Contains(page, "readers: ") {
		t.Errorf("after a reload that adds a reader the page has no restart banner")
	}
	if got := d.names.Name(0x0B00, 0, 1); got != "Demo One" {
		t.Errorf("after the reload service 0B00:0001 is named %q, want Demo One", got)
	}
	if page = hup(base); strings.Contains(page, `id="restart-banner"`) {
		t.Errorf("the banner stays after a reload back to the readers in force:\n%s", page)
	}
}

// cloneForTest deep-copies a configuration through TOML.
func cloneForTest(c *config.Config) (*config.Config, error) {
	var b strings.Builder
	if err := c.Encode(&b); err != nil {
		return nil, err
	}
	return config.Parse("test", []byte(b.String()))
}
