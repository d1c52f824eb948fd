package netstream

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pushHeaders are what a source client (e.g. ffmpeg, butt) announces.
const pushHeaders = "Content-Type: audio/mpeg\r\nIce-Name: pushed name\r\nIce-Description: pushed description\r\n" +
	"Ice-Genre: test genre\r\nIce-Url: http://example.invalid/\r\nIce-Public: 0\r\nIce-Audio-Info: bitrate=128;samplerate=44100;channels=2\r\n"

// pushSource streams the demo frames in real time to addr's mount with an
// Icecast PUT until the test ends or the returned connection is closed.
func pushSource(t testing.TB, addr, mount, user, pass string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "PUT " + mount + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Basic " + basicAuth(user, pass) + "\r\n" + pushHeaders + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hangGuard)) // a hang guard: the answer takes milliseconds
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, " 200") {
		t.Fatalf("PUT %s to %s: %q %v", mount, addr, status, err)
	}
	frames := demoFrames(t)
	go func() {
		start := time.Now()
		for i := 0; ; i++ {
			if _, err := c.Write(frames[i%len(frames)]); err != nil {
				return
			}
			if ahead := time.Duration(i+1)*frameDur - time.Since(start) - 2*time.Second; ahead > 0 { // pacing
				time.Sleep(ahead) // two seconds ahead, like an encoder's first buffer
			}
		}
	}()
	return c
}

// adminGet fetches an admin URL with the admin credentials.
func adminGet(t testing.TB, addr, pathQuery string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+pathQuery, nil)
	req.SetBasicAuth("admin", "adminpw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startIcecast runs Debian's icecast2 on a port reserved and released just
// before (retrying on a clash, at most 5 times) with the test's passwords.
func startIcecast(t *testing.T) string {
	t.Helper()
	exe, err := exec.LookPath("icecast2")
	if err != nil {
		t.Skip("icecast2 not installed (apt-get install icecast2); CI installs it")
	}
	dir := t.TempDir()
	owner := ""
	if os.Getuid() == 0 { // icecast refuses to run as root without changeowner
		owner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
		for _, d := range []string{filepath.Dir(dir), dir} {
			_ = os.Chmod(d, 0o777)
		}
	}
	for attempt := range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		conf := fmt.Sprintf(`<icecast><location>Earth</location><admin>icemaster@localhost</admin><hostname>localhost</hostname>
<limits><clients>100</clients><sources>4</sources></limits>
<authentication><source-password>hackme</source-password><admin-user>admin</admin-user><admin-password>adminpw</admin-password></authentication>
<listen-socket><port>%d</port><bind-address>127.0.0.1</bind-address></listen-socket>
<paths><basedir>/usr/share/icecast2</basedir><logdir>%s</logdir><webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
<logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>1</loglevel></logging>
<security><chroot>0</chroot>%s</security></icecast>`, port, dir, owner)
		file := filepath.Join(dir, fmt.Sprintf("icecast-%d.xml", attempt))
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-c", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		// Retry on another port only when icecast2 exits (the port was
		// taken meanwhile); a slow start is waited for, up to a hang guard.
		for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
			select {
			case <-exited:
			default:
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
					return addr
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			break
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("icecast2 on port %d did not come up (attempt %d); retrying on another port", port, attempt+1)
	}
	t.Fatal("icecast2 did not start in 5 attempts")
	return ""
}

// jsonKeys returns the keys of a JSON object in document order.
func jsonKeys(t testing.TB, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, _ := dec.Token()
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// statusShape returns the ordered icestats keys and the keys of the first
// source of a /status-json.xsl answer.
func statusShape(t testing.TB, addr string) (top, source []string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status-json.xsl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Icestats json.RawMessage `json:"icestats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("%s/status-json.xsl: %v", addr, err)
	}
	var ice struct {
		Source json.RawMessage `json:"source"`
	}
	_ = json.Unmarshal(doc.Icestats, &ice)
	first := ice.Source
	if strings.HasPrefix(string(first), "[") { // several mounts: an array, as in Icecast
		var all []json.RawMessage
		_ = json.Unmarshal(first, &all)
		first = all[0]
	}
	return jsonKeys(t, doc.Icestats), jsonKeys(t, first)
}

// xmlPaths returns the element paths of an XML document, for comparing
// shapes (values differ between servers).
func xmlPaths(t testing.TB, doc string) []string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	var stack, out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("xml %q: %v", doc, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			stack = append(stack, e.Name.Local)
			p := strings.Join(stack, "/")
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// TestIcecastStatusJSONShape is Done-when 3: the same push source with the
// same headers and title goes into a real icecast2 and into satd;
// /status-json.xsl must have the same keys in the same order, and
// listclients the same XML shape. Then listclients, killclient and
// moveclients are driven on satd.
func TestIcecastStatusJSONShape(t *testing.T) {
	ice := startIcecast(t)
	live, other := DefaultMount(), fileMount()
	live.Name = "/live"
	other.Name = "/other"
	s := startServer(t, testConfig(live, other))
	for _, addr := range []string{ice, s.Addr()} {
		pushSource(t, addr, "/live", "source", "hackme")
	}
	waitFor(t, 5*time.Second, "pushed audio", func() bool { return s.mount("/live").fresh(time.Now(), time.Second) })
	waitBurst(t, s.mount("/other"))
	for _, addr := range []string{ice, s.Addr()} {
		waitFor(t, 5*time.Second, "the mount on "+addr, func() bool {
			_, body := adminGet(t, addr, "/admin/metadata?mount=/live&mode=updinfo&song=Artist%20-%20Song")
			return strings.Contains(body, "<return>1</return>")
		})
	}
	var iceTop, iceSrc []string
	waitFor(t, 10*time.Second, "icecast2 showing the title", func() bool { // it applies it with the next data
		iceTop, iceSrc = statusShape(t, ice)
		return slices.Contains(iceSrc, "title")
	})
	top, src := statusShape(t, s.Addr())
	if !slices.Equal(top, iceTop) || !slices.Equal(src, iceSrc) {
		t.Fatalf("status-json.xsl keys differ from icecast2's:\nicecast: %q\n         %q\nsatd:    %q\n         %q", iceTop, iceSrc, top, src)
	}

	// One listener on each server; listclients has Icecast's XML shape.
	var cls []*streamClient
	for _, addr := range []string{ice, s.Addr()} {
		cls = append(cls, dialListener(t, addr, "/live"))
	}
	_, iceList := adminGet(t, ice, "/admin/listclients?mount=/live")
	code, list := adminGet(t, s.Addr(), "/admin/listclients?mount=/live")
	if code != 200 || !slices.Equal(xmlPaths(t, list), xmlPaths(t, iceList)) {
		t.Fatalf("listclients %d:\n%s\nicecast2:\n%s", code, list, iceList)
	}
	var lc struct {
		Source struct {
			Listeners int `xml:"Listeners"`
			Listener  []struct {
				IP string `xml:"IP"`
				ID string `xml:"ID"`
			} `xml:"listener"`
		} `xml:"source"`
	}
	if err := xml.Unmarshal([]byte(list), &lc); err != nil || lc.Source.Listeners != 1 || lc.Source.Listener[0].IP != "127.0.0.1" {
		t.Fatalf("listclients: %v %+v", err, lc)
	}
	if code, _ := getStatus(t, "http://"+s.Addr()+"/admin/listclients?mount=/live"); code != 401 {
		t.Fatalf("listclients without credentials: %d", code)
	}

	// moveclients: the listener continues on /other without a reconnect.
	cl := cls[1]
	cl.readFor(200 * time.Millisecond)
	_, moved := adminGet(t, s.Addr(), "/admin/moveclients?mount=/live&destination=/other")
	if !strings.Contains(moved, "Clients moved from /live to /other") {
		t.Fatalf("moveclients: %s", moved)
	}
	waitFor(t, 5*time.Second, "the listener on /other", func() bool {
		return s.mount("/other").listeners.Load() == 1 && s.mount("/live").listeners.Load() == 0
	})
	cl.readFrames(t, 20) // still streaming after the move

	// killclient on the new mount closes it; an unknown ID is reported.
	_, l2 := adminGet(t, s.Addr(), "/admin/listclients?mount=/other")
	lc.Source.Listener = nil
	if err := xml.Unmarshal([]byte(l2), &lc); err != nil || len(lc.Source.Listener) != 1 {
		t.Fatalf("listclients after the move: %s", l2)
	}
	id := lc.Source.Listener[0].ID
	if _, r := adminGet(t, s.Addr(), "/admin/killclient?mount=/other&id=999999"); !strings.Contains(r, "Client 999999 not found") {
		t.Fatalf("killclient of an unknown id: %s", r)
	}
	if _, r := adminGet(t, s.Addr(), "/admin/killclient?mount=/other&id="+id); !strings.Contains(r, "Client "+id+" removed") {
		t.Fatalf("killclient: %s", r)
	}
	waitFor(t, 5*time.Second, "the killed listener gone", func() bool { return s.mount("/other").listeners.Load() == 0 })

	for _, p := range []string{"/admin/listmounts", "/admin/stats"} {
		_, iceDoc := adminGet(t, ice, p)
		code, doc := adminGet(t, s.Addr(), p)
		if code != 200 || !strings.HasPrefix(doc, "<?xml") {
			t.Fatalf("%s: %d %s", p, code, doc)
		}
		for _, want := range xmlPaths(t, iceDoc) {
			if strings.HasPrefix(want, "icestats/source/") || p == "/admin/listmounts" {
				if !slices.Contains(xmlPaths(t, doc), want) && !strings.Contains("user_agent source_ip slow_listeners total_bytes_read total_bytes_sent", want[strings.LastIndexByte(want, '/')+1:]) {
					t.Errorf("%s lacks %s (icecast2 has it)", p, want)
				}
			}
		}
	}
}
