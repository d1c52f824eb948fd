package netstream

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Icecast 2.4 compatibility: /status-json.xsl and the admin endpoints that
// players, directories and dashboards use. Shapes, key order and messages
// follow what Icecast 2.4.4 answers (TestIcecastStatusJSONShape compares
// the keys against a real icecast2).

// serverID is what /status-json.xsl reports as server_id.
const serverID = "Icecast 2.4.4 compatible (satd)"

// iceTime formats a time as Icecast does in server_start and stream_start.
func iceTime(t time.Time) (rfc, iso string) {
	return t.Format("Mon, 02 Jan 2006 15:04:05 -0700"), t.Format("2006-01-02T15:04:05-0700")
}

// kv is one key of an ordered JSON object (or XML element list).
type kv struct {
	k string
	v any // string, int, or nil
}

// listed returns the mounts Icecast would list: those with audio, not
// hidden, in configuration order.
func (s *Server) listed(all bool) []*mount {
	var out []*mount
	for _, mc := range s.conf().Mounts {
		m := s.mount(mc.Name)
		if m == nil || !m.everAudio.Load() || (!all && m.cfg.Load().Hidden) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// listenURL is the mount's URL as Icecast announces it: hostname and the
// listen port.
func (s *Server) listenURL(m *mount) string {
	return "http://" + net.JoinHostPort(s.conf().Hostname, s.port()) + m.name
}

// sourceKeys returns the keys /status-json.xsl shows for a mount, in
// Icecast's order (alphabetical from its stats tree); optional ones appear
// only when known, as in Icecast.
func (s *Server) sourceKeys(m *mount) []kv {
	si := m.info.Load()
	kbps := si.bitrate
	if kbps == 0 {
		kbps = int(m.bitrate.Load() / 1000)
	}
	rate, chans := int(m.rate.Load()), int(m.chans.Load())
	var keys []kv
	add := func(k string, v any, ok bool) {
		if ok {
			keys = append(keys, kv{k, v})
		}
	}
	var info []string
	if kbps > 0 {
		info = append(info, "bitrate="+strconv.Itoa(kbps))
	}
	if rate > 0 {
		info = append(info, "samplerate="+strconv.Itoa(rate))
	}
	if chans > 0 {
		info = append(info, "channels="+strconv.Itoa(chans))
	}
	add("audio_info", strings.Join(info, ";"), len(info) > 0)
	add("bitrate", kbps, kbps > 0)
	add("channels", chans, chans > 0)
	add("genre", si.genre, si.genre != "")
	add("listener_peak", int(m.peak.Load()), true)
	add("listeners", int(m.listeners.Load()), true)
	add("listenurl", s.listenURL(m), true)
	add("samplerate", rate, rate > 0)
	add("server_description", si.description, si.description != "")
	add("server_name", si.name, si.name != "")
	ct := si.contentType
	if ct == "" {
		ct = codec(m.codec.Load()).contentType()
	}
	add("server_type", ct, true)
	add("server_url", si.url, si.url != "")
	rfc, iso := iceTime(time.Unix(0, m.since.Load()))
	add("stream_start", rfc, true)
	add("stream_start_iso8601", iso, true)
	title := m.meta.Load().title
	add("title", title, title != "")
	return keys
}

// globalKeys are the icestats keys before the sources.
func (s *Server) globalKeys() []kv {
	cfg := s.conf()
	rfc, iso := iceTime(s.started)
	return []kv{{"admin", cfg.AdminContact}, {"host", cfg.Hostname}, {"location", cfg.Location},
		{"server_id", serverID}, {"server_start", rfc}, {"server_start_iso8601", iso}}
}

// writeObject appends an ordered JSON object.
func writeObject(b *strings.Builder, keys []kv) {
	b.WriteByte('{')
	for i, p := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.k)
		v, _ := json.Marshal(p.v)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
}

// statusJSON renders /status-json.xsl: "source" is an object for one
// mount, an array for several and absent for none, with Icecast's trailing
// "dummy": null in each source.
func (s *Server) statusJSON() string {
	var b strings.Builder
	b.WriteString(`{"icestats":`)
	g := s.globalKeys()
	mounts := s.listed(false)
	var src strings.Builder
	if len(mounts) > 1 {
		src.WriteByte('[')
	}
	for i, m := range mounts {
		if i > 0 {
			src.WriteByte(',')
		}
		writeObject(&src, append(s.sourceKeys(m), kv{"dummy", nil}))
	}
	if len(mounts) > 1 {
		src.WriteByte(']')
	}
	b.WriteString(strings.TrimSuffix(objectString(g), "}"))
	if len(mounts) > 0 {
		b.WriteString(`,"source":` + src.String())
	}
	b.WriteString("}}")
	return b.String()
}

func objectString(keys []kv) string {
	var b strings.Builder
	writeObject(&b, keys)
	return b.String()
}

// xmlEscaper escapes XML character data and attribute values. It stands
// in for encoding/xml, which would add about 100 KB to the ARMv7 binary for
// this alone.
var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;",
	"\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")

// xmlText escapes s for XML character data; other control characters,
// which XML 1.0 cannot carry, become U+FFFD.
func xmlText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return '\uFFFD'
		}
		return r
	}, s)
	return xmlEscaper.Replace(s)
}

// xmlElems renders keys as <k>v</k>.
func xmlElems(b *strings.Builder, keys []kv) {
	for _, p := range keys {
		v := ""
		switch x := p.v.(type) {
		case string:
			v = xmlText(x)
		case int:
			v = strconv.Itoa(x)
		}
		b.WriteString("<" + p.k + ">" + v + "</" + p.k + ">")
	}
}

const xmlHead = "<?xml version=\"1.0\"?>\n"

// iceResponse is Icecast's answer to an admin action.
func iceResponse(msg string, ok bool) string {
	ret := "0"
	if ok {
		ret = "1"
	}
	return xmlHead + "<iceresponse><message>" + xmlText(msg) + "</message><return>" + ret + "</return></iceresponse>\n"
}

// adminAPI serves /admin/listclients, killclient, moveclients, stats and
// listmounts with Icecast's parameters and XML answers, for the admin
// credentials only. It reports false for any other path.
func (s *Server) adminAPI(conn net.Conn, req *http.Request, ip string) bool {
	cmd, ok := strings.CutPrefix(req.URL.Path, "/admin/")
	if !ok || !slices.Contains([]string{"listclients", "killclient", "moveclients", "stats", "listmounts"}, cmd) {
		return false
	}
	user, pass, _ := req.BasicAuth()
	cfg := s.conf()
	if !s.checkPassword(conn, ip, "Icecast2 Server", func() bool {
		return cfg.AdminPassword != "" && user == cfg.AdminUser && constEq(pass, cfg.AdminPassword)
	}) {
		return true
	}
	q := req.URL.Query()
	var m *mount
	if cmd != "stats" && cmd != "listmounts" {
		if m = s.mount(q.Get("mount")); m == nil || !m.everAudio.Load() {
			writeSimple(conn, http.StatusBadRequest, nil, "Source does not exist\n")
			return true
		}
	}
	xmlOK := func(body string) {
		writeSimple(conn, http.StatusOK, []string{"Content-Type: text/xml"}, bodyFor(req, body))
	}
	switch cmd {
	case "listclients":
		xmlOK(s.listClients(m))
	case "killclient":
		id, _ := strconv.ParseUint(q.Get("id"), 10, 32)
		if s.killClient(m, uint32(id)) {
			xmlOK(iceResponse("Client "+q.Get("id")+" removed", true))
		} else {
			xmlOK(iceResponse("Client "+q.Get("id")+" not found", false))
		}
	case "moveclients":
		dst := s.mount(q.Get("destination"))
		if dst == nil || dst == m {
			writeSimple(conn, http.StatusBadRequest, nil, "No such destination\n")
			return true
		}
		s.moveClients(m, dst)
		xmlOK(iceResponse("Clients moved from "+m.name+" to "+dst.name, true))
	case "listmounts":
		var b strings.Builder
		b.WriteString(xmlHead + "<icestats>")
		for _, m := range s.listed(true) {
			b.WriteString(`<source mount="` + xmlText(m.name) + `"><fallback>` + xmlText(m.cfg.Load().FallbackMount) + "</fallback>")
			xmlElems(&b, []kv{{"listeners", int(m.listeners.Load())},
				{"Connected", int(time.Since(time.Unix(0, m.since.Load())).Seconds())},
				{"content-type", codec(m.codec.Load()).contentType()}})
			b.WriteString("</source>")
		}
		xmlOK(b.String() + "</icestats>\n")
	case "stats":
		var b strings.Builder
		b.WriteString(xmlHead + "<icestats>")
		mounts := s.listed(true)
		xmlElems(&b, append(s.globalKeys(), kv{"listeners", int(s.fan.lsn.Load())}, kv{"sources", len(mounts)}))
		for _, m := range mounts {
			b.WriteString(`<source mount="` + xmlText(m.name) + `">`)
			mc := m.cfg.Load()
			max := "unlimited"
			if mc.MaxListeners > 0 {
				max = strconv.Itoa(mc.MaxListeners)
			}
			pub := 0
			if m.info.Load().public {
				pub = 1
			}
			xmlElems(&b, append(s.sourceKeys(m), kv{"max_listeners", max}, kv{"public", pub}))
			b.WriteString("</source>")
		}
		xmlOK(b.String() + "</icestats>\n")
	}
	return true
}

// peerIP returns the address of a listener's socket ("" for a TLS
// listener, whose socket is the shard's end of a socket pair).
func peerIP(fd int32) string {
	sa, err := unix.Getpeername(int(fd))
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:]).String()
	case *unix.SockaddrInet6:
		return net.IP(a.Addr[:]).String()
	}
	return ""
}

// listClients renders Icecast's listclients answer for m.
func (s *Server) listClients(m *mount) string {
	var rows strings.Builder
	n := 0
	now := time.Now()
	s.fan.each(func(l *listener) {
		if l.m != m {
			return
		}
		n++
		agent, ip := "", peerIP(l.fd)
		if l.who != nil {
			agent = l.who.req.agent
			if ip == "" || l.who.req.proxied {
				ip = l.who.req.ip // the PROXY header's client, not the balancer
			}
		}
		id := strconv.FormatUint(uint64(l.id), 10)
		rows.WriteString("<listener><IP>" + xmlText(ip) + "</IP><UserAgent>" + xmlText(agent) + "</UserAgent><Connected>" +
			strconv.Itoa(int(now.Sub(time.Unix(0, l.start)).Seconds())) + "</Connected><ID>" + id + "</ID></listener>")
	})
	return xmlHead + `<icestats><source mount="` + xmlText(m.name) + `"><Listeners>` + strconv.Itoa(n) + "</Listeners>" +
		rows.String() + "</source></icestats>\n"
}

// killClient schedules the listener with id on m to close now.
func (s *Server) killClient(m *mount, id uint32) bool {
	found := false
	s.fan.each(func(l *listener) {
		if l.m == m && l.id == id {
			l.closeAt.Store(1)
			found = true
		}
	})
	if found {
		s.fan.kick()
	}
	return found
}

// moveClients moves every listener of m to dst at dst's live edge.
func (s *Server) moveClients(m, dst *mount) {
	s.fan.each(func(l *listener) {
		if l.m == m {
			l.moveTo.Store(dst)
		}
	})
	s.fan.kick()
}
