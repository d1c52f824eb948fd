package netstream

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFallbackOverride: listeners of a mount whose source leaves move to
// its fallback-mount (not silence), a new listener of the sourceless mount
// is served from the fallback, and with fallback-override they all move
// back when the source returns, without reconnecting.
func TestFallbackOverride(t *testing.T) {
	fb := fileMount()
	fb.Name = "/fallback"
	main := DefaultMount()
	main.Name = "/main"
	main.FallbackMount = "/fallback"
	main.FallbackOverride = true
	s := startServer(t, testConfig(main, fb))
	mm, fm := s.mount("/main"), s.mount("/fallback")
	push := pushSource(t, s.Addr(), "/main", "source", "hackme")
	waitFor(t, 5*time.Second, "pushed audio", func() bool { return mm.fresh(time.Now(), time.Second) })
	waitBurst(t, fm)
	cl := dialListener(t, s.Addr(), "/main")
	cl.readFor(200 * time.Millisecond)
	counts := func(m, f int64) func() bool {
		return func() bool { return mm.listeners.Load() == m && fm.listeners.Load() == f }
	}

	push.Close()
	waitFor(t, 5*time.Second, "the listener moved to the fallback", counts(0, 1))
	cl.readFrames(t, 20) // audio from the fallback, not silence
	late := dialListener(t, s.Addr(), "/main")
	if late.code() != 200 {
		t.Fatalf("a listener of the sourceless mount got %s", late.status)
	}
	waitFor(t, 5*time.Second, "the new listener served by the fallback", counts(0, 2))

	pushSource(t, s.Addr(), "/main", "source", "hackme")
	waitFor(t, 5*time.Second, "fallback-override moving everyone back", counts(2, 0))
	cl.readFrames(t, 20) // back on /main, still the same connection
}

// TestIntroFile: every new listener first gets the intro, then the stream;
// with ICY the intro counts against the metadata interval like audio.
func TestIntroFile(t *testing.T) {
	frames := demoFrames(t)
	var intro []byte
	for _, f := range frames[:40] {
		intro = append(intro, f...)
	}
	file := filepath.Join(t.TempDir(), "intro.mp3")
	if err := os.WriteFile(file, intro, 0o600); err != nil {
		t.Fatal(err)
	}
	mc := fileMount()
	mc.Intro = file
	mc.MetaInterval = 1000
	s := startServer(t, testConfig(mc))
	waitBurst(t, s.mount("/demo"))
	for _, icy := range []bool{false, true} {
		var extra []string
		if icy {
			extra = append(extra, "Icy-MetaData: 1")
		}
		cl := dialListener(t, s.Addr(), "/demo", extra...)
		// Read until the intro and 20 frames of stream after it are there
		// (and, with ICY, the first title).
		unwrap := func(body []byte) ([]byte, []string, error) {
			if !icy {
				return body, nil, nil
			}
			return readICY(body, 1000)
		}
		body := cl.readUntil(t, "the intro and 20 frames after it", func(b []byte) bool {
			audio, titles, err := unwrap(b)
			if err != nil || len(audio) < len(intro) || icy && len(titles) == 0 {
				return err != nil // a parse error ends the wait; the checks below report it
			}
			f, _ := countFrames(t, audio[len(intro):])
			return f >= 20
		})
		audio, titles, err := unwrap(body)
		if icy && (err != nil || len(titles) == 0 || titles[0] != "demo title") {
			t.Fatalf("ICY after an intro: %v %q", err, titles)
		}
		if !bytes.HasPrefix(audio, intro) {
			t.Fatalf("icy=%v: the stream does not start with the %d-byte intro", icy, len(intro))
		}
	}
}

// TestOnDemandRelay: an on-demand relay connects its upstream only while it
// has listeners: none before the first, one while listening (the first
// listener waits for it and plays), none again demandGrace after the last
// one left.
func TestOnDemandRelay(t *testing.T) {
	up := newFakeUpstream(t, demoFrames(t), "on demand")
	mc := DefaultMount()
	mc.Name = "/relay"
	mc.Upstreams = []string{up.url("/live")}
	mc.OnDemand = true
	s := startServer(t, testConfig(mc))
	time.Sleep(500 * time.Millisecond) // a relay that is not on demand would connect now
	if n := up.served.Load(); n != 0 {
		t.Fatalf("upstream pulled %d times without listeners", n)
	}
	cl := dialListener(t, s.Addr(), "/relay")
	if cl.code() != 200 {
		t.Fatalf("first listener: %s", cl.status)
	}
	cl.readFrames(t, 20)
	if up.active.Load() != 1 {
		t.Fatalf("%d upstream streams while listened to", up.active.Load())
	}
	cl.conn.Close()
	waitFor(t, demandGrace+5*time.Second, "the upstream released", func() bool { return up.active.Load() == 0 })
	cl2 := dialListener(t, s.Addr(), "/relay")
	waitFor(t, 5*time.Second, "the upstream pulled again", func() bool { return up.active.Load() == 1 })
	cl2.readFrames(t, 20)
}

// TestHiddenMount: a hidden mount plays but is left out of
// /status-json.xsl and /status.json; the admin API still lists it.
func TestHiddenMount(t *testing.T) {
	shown, hidden := fileMount(), fileMount()
	hidden.Name, hidden.Hidden = "/secret", true
	s := startServer(t, testConfig(shown, hidden))
	waitBurst(t, s.mount("/secret"))
	waitBurst(t, s.mount("/demo"))
	if cl := dialListener(t, s.Addr(), "/secret"); cl.code() != 200 {
		t.Fatalf("hidden mount does not play: %s", cl.status)
	}
	for _, p := range []string{"/status-json.xsl", "/status.json"} {
		resp, err := http.Get("http://" + s.Addr() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "/demo") || strings.Contains(string(b), "/secret") {
			t.Fatalf("%s: %s", p, b)
		}
	}
	if _, doc := adminGet(t, s.Addr(), "/admin/listmounts"); !strings.Contains(doc, `mount="/secret"`) {
		t.Fatalf("listmounts lacks the hidden mount: %s", doc)
	}
}

// TestMaxListenerDuration: a listener is disconnected once
// max-listener-duration has passed.
func TestMaxListenerDuration(t *testing.T) {
	mc := fileMount()
	mc.MaxListenerDur = Duration(time.Second)
	s := startServer(t, testConfig(mc))
	waitBurst(t, s.mount("/demo"))
	cl := dialListener(t, s.Addr(), "/demo")
	got := cl.readToEnd(t) // the relay must close it
	if f, _ := countFrames(t, got); f < 20 {
		t.Fatalf("%d frames before the limit", f)
	}
	waitFor(t, 5*time.Second, "the listener closed", func() bool { return s.mount("/demo").listeners.Load() == 0 })
}

// TestIPDenyAllow: connections from a denied address, or from one outside
// allow-ip, are closed without an answer; a reload applies new lists.
func TestIPDenyAllow(t *testing.T) {
	cfg := testConfig(fileMount())
	s := startServer(t, cfg)
	waitBurst(t, s.mount("/demo"))
	answered := func() bool {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n")
		// A hang guard: an answer or a close comes at once either way, and a
		// denied connection held open would still not count as answered.
		_ = c.SetReadDeadline(time.Now().Add(hangGuard))
		b, _ := io.ReadAll(c)
		return strings.HasPrefix(string(b), "HTTP/1.0 200")
	}
	cases := []struct {
		name        string
		deny, allow []string
		want        bool
	}{
		{"no lists", nil, nil, true},
		{"deny the address", []string{"127.0.0.1"}, nil, false},
		{"deny a prefix", []string{"127.0.0.0/8"}, nil, false},
		{"allow-ip without it", nil, []string{"192.0.2.0/24"}, false},
		{"allow-ip with it", nil, []string{"192.0.2.0/24", "127.0.0.1/32"}, true},
		{"deny wins over allow", []string{"127.0.0.1"}, []string{"127.0.0.0/8"}, false},
	}
	for _, c := range cases {
		next := cfg
		next.DenyIP, next.AllowIP = c.deny, c.allow
		if err := s.Reload(next); err != nil {
			t.Fatal(err)
		}
		if got := answered(); got != c.want {
			t.Errorf("%s: answered %v, want %v", c.name, got, c.want)
		}
	}
	bad := cfg
	bad.DenyIP = []string{"not-an-ip"}
	if err := s.Reload(bad); err == nil || !strings.Contains(err.Error(), "deny-ip[0]") {
		t.Fatalf("bad deny-ip: %v", err)
	}
}

// TestMaxDevices: one account may hold max-devices connections; the next
// one closes the oldest (the default of 1 keeps "the newest wins").
func TestMaxDevices(t *testing.T) {
	mc := fileMount()
	mc.Auth.Type = "users"
	mc.Auth.Users = []string{"alice:pw"}
	mc.MaxDevices = 2
	s := startServer(t, testConfig(mc))
	m := s.mount("/demo")
	waitBurst(t, m)
	auth := "Authorization: Basic " + basicAuth("alice", "pw")
	var cls []*streamClient
	for i := range 3 {
		cl := dialListener(t, s.Addr(), "/demo", auth)
		if cl.code() != 200 {
			t.Fatalf("device %d: %s", i+1, cl.status)
		}
		cls = append(cls, cl)
		want := int64(min(i+1, 2))
		waitFor(t, 5*time.Second, "live devices", func() bool { return m.listeners.Load() == want })
	}
	// The first device was closed; the other two still stream.
	_ = cls[0].conn.SetReadDeadline(time.Now().Add(hangGuard)) // a hang guard
	if _, err := io.Copy(io.Discard, cls[0].br); err != nil {  // nil: the relay closed it
		t.Fatalf("the oldest device was not closed: %v", err)
	}
	for i, cl := range cls[1:] {
		cl.readUntil(t, fmt.Sprintf("device %d: 20 frames", i+2), func(b []byte) bool {
			f, sil := countFrames(t, b)
			return f-sil >= 20
		})
	}
	if n := m.listeners.Load(); n != 2 {
		t.Fatalf("%d live devices, want 2", n)
	}
}

// TestMasterSlaveRelay: a relay with master-server relays every mount the
// master lists in /admin/streamlist.txt, and drops one the master no longer
// has.
func TestMasterSlaveRelay(t *testing.T) {
	two := fileMount()
	two.Name = "/two"
	mcfg := testConfig(fileMount(), two)
	master := startServer(t, mcfg)
	waitBurst(t, master.mount("/two"))
	_, port, _ := net.SplitHostPort(master.Addr())
	if code, list := adminGet(t, master.Addr(), "/admin/streamlist.txt"); code != 200 || list != "/demo\n/two\n" {
		t.Fatalf("streamlist.txt: %d %q", code, list)
	}
	scfg := testConfig()
	scfg.MasterServer = "127.0.0.1"
	scfg.MasterPort, _ = strconv.Atoi(port)
	scfg.MasterUser, scfg.MasterPassword = "admin", "adminpw"
	scfg.MasterInterval = Duration(200 * time.Millisecond)
	slave := startServer(t, scfg)
	for _, name := range []string{"/demo", "/two"} {
		waitFor(t, 10*time.Second, "the slave relaying "+name, func() bool {
			m := slave.mount(name)
			return m != nil && m.fresh(time.Now(), time.Second)
		})
	}
	cl := dialListener(t, slave.Addr(), "/two", "Icy-MetaData: 1")
	cl.readFrames(t, 20)
	next := mcfg
	next.Mounts = next.Mounts[:1]
	if err := master.Reload(next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the slave dropping /two", func() bool { return slave.mount("/two") == nil })
	if slave.mount("/demo") == nil {
		t.Fatal("the slave dropped /demo too")
	}
}

// TestYPListing: a public mount is added to the YP directory with the YP
// protocol's fields, touched at the TouchFreq it asks for with the
// listener count, and removed once it is no longer listed (hidden).
func TestYPListing(t *testing.T) {
	type call struct{ action, sid, sn, listenurl, typ, listeners string }
	calls := make(chan call, 100)
	yp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		calls <- call{r.Form.Get("action"), r.Form.Get("sid"), r.Form.Get("sn"), r.Form.Get("listenurl"), r.Form.Get("type"), r.Form.Get("listeners")}
		w.Header().Set("YPResponse", "1")
		w.Header().Set("SID", "sid-1")
		w.Header().Set("TouchFreq", "1")
	}))
	t.Cleanup(yp.Close)
	mc := fileMount()
	mc.Public = true
	cfg := testConfig(mc)
	cfg.YPURLs = []string{yp.URL + "/cgi-bin/yp-cgi"}
	s := startServer(t, cfg)
	next := func(action string) call {
		t.Helper()
		deadline := time.After(hangGuard)
		for {
			select {
			case c := <-calls:
				if c.action == action {
					return c
				}
			case <-deadline:
				t.Fatalf("no YP %s", action)
			}
		}
	}
	add := next("add")
	if add.sn != "satd demo" || add.typ != "audio/mpeg" || !strings.HasSuffix(add.listenurl, "/demo") {
		t.Fatalf("add: %+v", add)
	}
	dialListener(t, s.Addr(), "/demo")
	for i, c := 0, next("touch"); c.listeners != "1"; i, c = i+1, next("touch") {
		if c.sid != "sid-1" || i == 15 {
			t.Fatalf("touch %d: %+v", i, c)
		}
	}
	mc.Hidden = true // no longer listed anywhere
	cfg.Mounts = []MountConfig{mc}
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if rm := next("remove"); rm.sid != "sid-1" {
		t.Fatalf("remove: %+v", rm)
	}
}
