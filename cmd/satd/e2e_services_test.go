package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/web"
	"satd.dev/satd/dvbapi/zap"
)

// servicesZap is a tvheadend-style client watching a Conax service and
// adding a Seca one, long enough for the Status page to be read while CWs
// flow.
const servicesZap = `
protocol = 2
client_name = "Tvheadend e2e"
crypto_period = "800ms"
ecm_interval = "100ms"
cw_deadline = "1s"
verify = "sha256"

[[service]]
name = "conax-news"
system = "conax"
sid = 0x1234
pmt_pid = 0x0100
pids = [0x0101, 0x0102]
adapter = 1
demux = 0
  [[service.ecm]]
  caid = 0x0B00
  pid = 0x0200

[[service]]
name = "seca-movies"
system = "seca"
sid = 0x2001
pmt_pid = 0x0110
pids = [0x0111, 0x0112]
adapter = 1
demux = 1
  [[service.ecm]]
  caid = 0x0100
  pid = 0x0300

[[step]]
do = "zap"
service = "conax-news"
hold = "500ms"

[[step]]
do = "add"
service = "seca-movies"
hold = "4s"
hold_until_release = true
`

// wantService is what the Status page must say about one service.
type wantService struct {
	sid    uint16
	caid   uint16
	reader string
	demux  uint8
}

var servicesWanted = []wantService{{0x1234, 0x0B00, "conax-sim", 0}, {0x2001, 0x0100, "seca-sim", 1}}

// servicesShown reports whether every wanted service is listed as
// descrambling by the client, by its reader, with a few ECMs answered.
func servicesShown(got []web.ServiceStatus) bool {
	for _, w := range servicesWanted {
		found := false
		for _, s := range got {
			found = found || s.SID == w.sid && s.CAID == w.caid && s.Reader == w.reader && s.Demux == w.demux &&
				s.Adapter == 1 && s.Client == "Tvheadend e2e" && s.State == "descrambling" && s.ECMOK >= 2 && s.ECMPID != 0
		}
		if !found {
			return false
		}
	}
	return true
}

// TestServicesOnStatusPage runs satd (sim Conax and Seca readers, balancer,
// dvbapi and the web form), plays a client that watches two services, and
// reads them, with the reader that answered each, from daemonStatus, from
// /api/status and from the Status page; once the client has gone they are
// gone too.
func TestServicesOnStatusPage(t *testing.T) {
	skipE2E(t)
	cfg := e2eConfig(t, t.TempDir(), simReader("conax-sim", "conax"), simReader("seca-sim", "seca"))
	cfg.Web.Enabled, cfg.Web.Listen = true, "127.0.0.1:0"
	e := startE2E(t, cfg)
	form := startWeb(t, e)

	// Log in first: the password hash is slow on a loaded machine and
	// must not eat the time the client keeps its services running.
	c := loggedIn(t, form)
	sc, err := zap.Parse("services scenario", []byte(servicesZap))
	if err != nil {
		t.Fatal(err)
	}
	// The client holds its services until the checks below are done (a
	// login hashes with argon2id, slow on a loaded machine); release ends
	// the hold, also when a check stops the test early.
	release := make(chan struct{})
	sc.Release = release
	played := make(chan *zap.Report, 1)
	go func() { played <- playZap(t, "services", sc, zap.Dial("tcp", e.tcp)) }()
	finish := sync.OnceValue(func() *zap.Report { close(release); return <-played })
	t.Cleanup(func() { finish() })

	var st web.Status
	deadline := time.Now().Add(hangGuard)
	for st = (daemonStatus{e.d}).Status(); !servicesShown(st.Services) && time.Now().Before(deadline); st = (daemonStatus{e.d}).Status() {
		time.Sleep(20 * time.Millisecond)
	}
	if !servicesShown(st.Services) {
		t.Errorf("daemonStatus services %+v, want %+v descrambling", st.Services, servicesWanted)
	}

	api := getOK(t, c, "http://"+form+"/api/status")
	var doc struct {
		Services []web.ServiceStatus `json:"services"`
	}
	if err := json.Unmarshal([]byte(api), &doc); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, api)
	}
	if !servicesShown(doc.Services) {
		t.Errorf("/api/status services %+v, want %+v", doc.Services, servicesWanted)
	}
	for _, key := range []string{`"reader": "conax-sim"`, `"caid": 2816`, `"card_system": "conax"`, `"ecm_ok":`} {
		if !strings.Contains(api, key) {
			t.Errorf("/api/status lacks %s:\n%s", key, api)
		}
	}
	page := getOK(t, c, "http://"+form+"/")
	_, table, _ := strings.Cut(page, `id="services"`)
	table, _, _ = strings.Cut(table, "</table>")
	for _, cell := range []string{"0B00@000000:1234", "0100@", ":2001", "conax-sim", "seca-sim", "Tvheadend e2e", "descrambling"} {
		if !strings.Contains(table, cell) {
			t.Errorf("Status page services table lacks %q:\n%s", cell, table)
		}
	}

	if rep := finish(); rep != nil {
		checkServed(t, "services", sc, rep, map[string]string{"conax-news": "conax-sim", "seca-movies": "seca-sim"})
	}
	deadline = time.Now().Add(time.Minute) // a hang guard: it takes milliseconds
	for len((daemonStatus{e.d}).Status().Services) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := (daemonStatus{e.d}).Status().Services; len(left) > 0 {
		t.Errorf("services listed after the client left: %+v", left)
	}
}

// startWeb builds and starts the web form on the e2e daemon, stopped with
// the rest, and returns the address it bound.
func startWeb(t *testing.T, e *e2eDaemon) string {
	t.Helper()
	c, err := buildWeb(env{cfg: e.d.cfg, log: e.d.log.component("web"), daemon: e.d})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.d.addPart("web", c)
	return c.(*webComponent).srv.Addr()
}

// loggedIn sets the form's first password from loopback, as the first
// visit does, and returns a client holding the session cookie.
func loggedIn(t *testing.T, addr string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	// The timeout only bounds a hung server: setting the password and
	// logging in hash with argon2id, many seconds on a loaded machine.
	c := &http.Client{Jar: jar, Timeout: 2 * time.Minute}
	resp, err := c.PostForm("http://"+addr+"/setup", url.Values{"password": {"correct horse battery"}, "repeat": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("setup ended on %s with %s", resp.Request.URL, resp.Status)
	}
	return c
}

// getOK fetches u and returns its body, failing the test on any status but
// 200.
func getOK(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", u, resp.Status, err, b)
	}
	return string(b)
}
