package netstream

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"satd.dev/satd/internal/duration"
)

// Duration is a duration written as a Go duration string ("500ms", "30s").
type Duration = duration.Duration

// Config is the [stream] section: the LAN audio relay.
type Config struct {
	Enabled        bool     `toml:"enabled" comment:"run the LAN audio relay"`
	Listen         string   `toml:"listen" comment:"host:port the relay listens on (listeners, sources, /healthz, /readyz)"`
	Hostname       string   `toml:"hostname" comment:"server name sent to URL-auth backends in the server field"`
	Clients        int      `toml:"clients" comment:"maximum listeners over all mounts; new ones get 503 + Retry-After beyond it"`
	HeaderTimeout  Duration `toml:"header-timeout" comment:"time a client has to send its request headers"`
	SourceTimeout  Duration `toml:"source-timeout" comment:"a source or upstream that sends nothing for this long is dropped"`
	QueueSize      int      `toml:"queue-size" comment:"bytes a listener may lag behind live before it is skipped to the live edge"`
	BurstSize      int      `toml:"burst-size" comment:"bytes sent at once to a new listener so its player starts immediately"`
	RingSize       int      `toml:"ring-size" comment:"bytes of the fixed per-mount ring (memory per mount); must exceed queue-size"`
	WriteTimeout   Duration `toml:"write-timeout" comment:"a listener that accepts no byte for this long is dropped"`
	MaxSkips       int      `toml:"max-skips-per-minute" comment:"skips to the live edge allowed per minute before a slow listener is dropped"`
	NotsentLowat   int      `toml:"tcp-notsent-lowat" comment:"TCP_NOTSENT_LOWAT on listener sockets in bytes (0 = kernel default)"`
	Writers        int      `toml:"writers" comment:"writer goroutines shared by all listeners (0 = one per CPU)"`
	SourcePassword string   `toml:"source-password" secret:"true" comment:"password for PUT/SOURCE pushes (user source) unless the mount sets its own"`
	AdminUser      string   `toml:"admin-user" comment:"user for /admin/metadata"`
	AdminPassword  string   `toml:"admin-password" secret:"true" comment:"password for /admin/metadata (empty = only source credentials)"`
	ReadyFresh     Duration `toml:"ready-source-fresh" comment:"/readyz fails when a mount got no real audio for this long"`
	AdmissionRate  float64  `toml:"admission-rate" comment:"ceiling of the adaptive admission rate: new listener connections admitted per second (token bucket)"`
	AdmissionBurst int      `toml:"admission-burst" comment:"token-bucket depth for new listener connections"`
	RetryAfter     Duration `toml:"retry-after" comment:"base Retry-After on 503; a random jitter of the same size is added"`
	DrainDelay     Duration `toml:"drain-delay" comment:"on shutdown, time /readyz fails before accepting stops (2x the LB check interval)"`
	DrainWindow    Duration `toml:"drain-window" comment:"on shutdown, listeners are disconnected spread over this window"`
	AdmissionFloor float64  `toml:"admission-rate-min" comment:"floor of the adaptive admission rate (new listeners per second) when the writers lag or the CPU is saturated"`
	Handshakes     int      `toml:"handshakes" comment:"connections whose request head is being read, at most (accepting waits beyond); with clients it bounds the relay's descriptors (0 = sized from global.memory_limit, at most 1024)"`
	PerClient      int      `toml:"handshakes-per-client" comment:"once half the handshake slots are taken, connections one client address may hold in the request phase (0 = no per-address cap; keep 0 behind a load balancer unless it is in proxy-protocol-from)"`
	PassFailures   int      `toml:"password-failures" comment:"wrong source or admin passwords from one address within a minute before it is locked out"`
	PassLockout    Duration `toml:"password-lockout" comment:"how long an address is refused source and admin logins (429) after password-failures"`
	AllowedHosts   []string `toml:"allowed-hosts" comment:"Host header values /status.json answers besides localhost, the listen address and the box's own addresses (the daemon adds web.allowed_hosts)"`

	// Sockets and TLS (a group of their own keeps the alignment of the
	// fields above untouched).
	SSLCertificate string         `toml:"ssl-certificate" comment:"PEM certificate chain for ssl listen sockets (Icecast's <ssl-certificate>; may hold the key too: RSA, ECDSA or Ed25519); re-read on reload (SIGHUP)"`
	SSLKey         string         `toml:"ssl-key" comment:"PEM private key of ssl-certificate (empty = in the certificate file)"`
	ListenSockets  []ListenSocket `toml:"listen-socket" comment:"more sockets besides listen, like Icecast's <listen-socket> (port, bind-address, ssl)"`
	Location       string         `toml:"location" comment:"location shown in /status-json.xsl and /admin/stats (Icecast's <location>)"`
	DenyIP         []string       `toml:"deny-ip" comment:"client addresses or CIDR prefixes whose connections are closed at once (Icecast's deny-ip)"`
	AllowIP        []string       `toml:"allow-ip" comment:"if set, only these addresses or CIDR prefixes may connect (Icecast's allow-ip); deny-ip still applies"`
	TrustedProxies []string       `toml:"trusted-proxies" comment:"load balancers (addresses or CIDR prefixes) whose X-Forwarded-For names the listener's address for auth, fail-open quotas and stats; anyone else's is ignored (empty = none)"`
	ProxyFrom      []string       `toml:"proxy-protocol-from" comment:"load balancers (addresses or CIDR prefixes) that prepend a PROXY protocol header (HAProxy send-proxy or send-proxy-v2) naming the client; their connections must carry one and are then known by the client's address everywhere; anyone else's are served without (empty = off)"`
	MasterServer   string         `toml:"master-server" comment:"host of an Icecast-compatible master whose mounts this relay also relays (Icecast's master-server; empty = none)"`
	MasterPort     int            `toml:"master-server-port" comment:"port of master-server"`
	MasterInterval Duration       `toml:"master-update-interval" comment:"how often the master's mount list is fetched"`
	MasterUser     string         `toml:"master-username" comment:"user for the master's /admin/streamlist.txt and its mounts"`
	MasterPassword string         `toml:"master-password" secret:"true" comment:"password of master-username"`
	YPURLs         []string       `toml:"yp-url" comment:"YP directory URLs (Icecast's <directory><yp-url>) where public mounts are listed"`
	YPTimeout      Duration       `toml:"yp-url-timeout" comment:"deadline of one YP directory request"`
	AdminContact   string         `toml:"admin" comment:"admin contact shown in /status-json.xsl and /admin/stats (Icecast's <admin>)"`

	Mounts []MountConfig `toml:"mount" comment:"one [[stream.mount]] table per mount point"`
}

// MountConfig is one [[stream.mount]] table. Option names follow Icecast's
// <mount> where Icecast has the concept.
type MountConfig struct {
	Name              string     `toml:"mount-name" comment:"mount path, e.g. /radio"`
	Upstreams         []string   `toml:"upstream" comment:"ordered http:// or https:// upstream URLs (Icecast or SHOUTcast); the first one is preferred"`
	File              string     `toml:"file" comment:"local file or FIFO played in a loop in real time (MP3, AAC/ADTS or Ogg)"`
	Username          string     `toml:"username" comment:"user for PUT/SOURCE pushes to this mount"`
	Password          string     `toml:"password" secret:"true" comment:"password for PUT/SOURCE pushes to this mount (empty = source-password, both empty = no push)"`
	MaxListeners      int        `toml:"max-listeners" comment:"listener limit of this mount (0 = unlimited)"`
	StreamName        string     `toml:"stream-name" comment:"icy-name when the source does not give one"`
	StreamDescription string     `toml:"stream-description" comment:"icy-description when the source does not give one"`
	StreamURL         string     `toml:"stream-url" comment:"icy-url when the source does not give one"`
	Genre             string     `toml:"genre" comment:"icy-genre when the source does not give one"`
	Public            bool       `toml:"public" comment:"icy-pub value"`
	Type              string     `toml:"type" comment:"Content-Type override (audio/mpeg, audio/aac, application/ogg); empty = from the source"`
	Title             string     `toml:"title" comment:"initial StreamTitle (the file source keeps it)"`
	MetaInterval      int        `toml:"icy-metadata-interval" comment:"bytes between ICY metadata blocks for clients that ask (Icecast 16000)"`
	FallbackMount     string     `toml:"fallback-mount" comment:"mount that listeners move to while this one has no source (Icecast's <fallback-mount>); they get it instead of silence"`
	FallbackOverride  bool       `toml:"fallback-override" comment:"when this mount's source returns, listeners of fallback-mount move back to it (Icecast's <fallback-override>)"`
	Intro             string     `toml:"intro" comment:"file played to each new listener before the stream (Icecast's <intro>; same codec and parameters as the stream, at most 1 MiB)"`
	OnDemand          bool       `toml:"on-demand" comment:"pull the upstream only while the mount has listeners (Icecast's relay <on-demand>)"`
	BurstSize         int        `toml:"burst-size" comment:"bytes of burst for this mount's new listeners (0 = stream.burst-size; Icecast's per-mount <burst-size>)"`
	MaxListenerDur    Duration   `toml:"max-listener-duration" comment:"listeners are disconnected after this long (0 = never; Icecast's <max-listener-duration>)"`
	MaxDevices        int        `toml:"max-devices" comment:"live connections one account (user or token subject) may hold on this mount; beyond it the oldest is closed (0 or 1 = newest wins)"`
	Hidden            bool       `toml:"hidden" comment:"leave the mount out of /status-json.xsl and /status.json (Icecast's <hidden>); admin still lists it"`
	OggNoICY          bool       `toml:"ogg-no-icy" comment:"like Icecast, offer no ICY metadata on an Ogg mount (titles then reach players only in the Ogg comment header)"`
	FallbackHold      Duration   `toml:"fallback-hold" comment:"how long listeners get silence while the mount has no source, before a staggered close"`
	FallbackTitle     string     `toml:"fallback-title" comment:"StreamTitle while sourceless (empty = keep the last one)"`
	RetryBase         Duration   `toml:"retry-base" comment:"upstream reconnect backoff base (full jitter)"`
	RetryMax          Duration   `toml:"retry-max" comment:"upstream reconnect backoff cap"`
	SwitchBack        Duration   `toml:"switch-back-interval" comment:"how often a preferred upstream is probed while a backup is in use"`
	Auth              AuthConfig `toml:"authentication" comment:"listener admission"`
}

// AuthConfig is a mount's [stream.mount.authentication] table. URL options
// keep the names of Icecast's <authentication type="url">; the resilience
// options keep Icecast-KH's names where it has them.
type AuthConfig struct {
	Type            string   `toml:"type" comment:"none, url (Icecast URL auth), users (static Basic users) or token (signed tokens only)"`
	ListenerAdd     string   `toml:"listener_add" comment:"URL POSTed for each new listener (Icecast fields); icecast-auth-user: 1 grants"`
	ListenerRemove  string   `toml:"listener_remove" comment:"URL POSTed asynchronously when a listener leaves"`
	Username        string   `toml:"username" comment:"Basic user sent to the auth backend (empty = the listener's own)"`
	Password        string   `toml:"password" secret:"true" comment:"Basic password sent to the auth backend"`
	AuthHeader      string   `toml:"auth_header" comment:"grant header line"`
	TimelimitHeader string   `toml:"timelimit_header" comment:"header giving seconds until forced disconnect"`
	Headers         string   `toml:"headers" comment:"comma-separated listener request headers forwarded as POST fields"`
	HeaderPrefix    string   `toml:"header_prefix" comment:"prefix of the forwarded header fields"`
	Users           []string `toml:"users" secret:"true" comment:"user:password pairs for type users"`
	Challenge       bool     `toml:"basic-challenge" comment:"this is a Basic-auth mount: missing or refused credentials get 401 + WWW-Authenticate"`
	OnError         string   `toml:"on-error" comment:"open (admit) or closed (503 + Retry-After) when the backend is down, slow or the breaker is open"`
	Timeout         Duration `toml:"timeout" comment:"deadline of one admission check, queueing included"`
	Handlers        int      `toml:"handlers" comment:"auth backend calls in flight at most"`
	Pending         int      `toml:"pending" comment:"admission checks allowed to wait for a handler"`
	OnErrorWait     Duration `toml:"on_error_wait" comment:"circuit breaker: backend not called for this long (jittered) after 5 consecutive failures"`
	CacheTTL        Duration `toml:"cache-ttl" comment:"how long a grant is reused without a backend call"`
	NegativeTTL     Duration `toml:"negative-ttl" comment:"how long a deny is reused"`
	StaleTTL        Duration `toml:"stale-ttl" comment:"expired grants still admit for this long while the backend fails"`
	ReconnectGrace  Duration `toml:"reconnect-grace" comment:"a listener who left less than this ago is readmitted from cache"`
	TokenKeys       []string `toml:"token-keys" secret:"true" comment:"hex HMAC-SHA256 keys for signed listener tokens (two for rotation)"`
	StatsURL        string   `toml:"stats-url" comment:"URL receiving batched listener events (form lines), asynchronously"`
	StatsInterval   Duration `toml:"stats-interval" comment:"how often listener event batches are sent"`
	CacheSize       int      `toml:"cache-size" comment:"decision cache entries at most, least recently used evicted (0 = sized from global.memory_limit)"`
	FailOpenBurst   int      `toml:"fail-open-burst" comment:"fail-open admissions one client address may get at once"`
	FailOpenEvery   Duration `toml:"fail-open-interval" comment:"one more fail-open admission per client address per this interval"`
	VerifyGrace     Duration `toml:"verify-grace" comment:"a provisionally admitted listener the backend then denies is closed after this"`
	VerifyRate      float64  `toml:"verify-rate" comment:"background listener_add calls per second at most (verify-later and re-admission reports)"`
	ReadmitTTL      Duration `toml:"readmit-ttl" comment:"life of a re-admission token (needs token-keys; 0 = no re-admission tokens)"`
	ReadmitRedirect bool     `toml:"readmit-redirect" comment:"redirect a newly granted listener to its URL with a re-admission token, so any player carries it"`
}

// DefaultConfig returns the documented defaults of the [stream] section.
func DefaultConfig() Config {
	return Config{
		Enabled:        false,
		Listen:         "127.0.0.1:8000",
		Hostname:       "127.0.0.1",
		Clients:        10000,
		HeaderTimeout:  Duration(5 * time.Second),
		SourceTimeout:  Duration(10 * time.Second),
		QueueSize:      524288,
		BurstSize:      65536,
		RingSize:       2 << 20,
		WriteTimeout:   Duration(10 * time.Second),
		MaxSkips:       3,
		NotsentLowat:   65536,
		ReadyFresh:     Duration(5 * time.Second),
		AdmissionRate:  5000,
		AdmissionBurst: 4000,
		RetryAfter:     Duration(5 * time.Second),
		DrainDelay:     Duration(4 * time.Second),
		DrainWindow:    Duration(30 * time.Second),
		AdminUser:      "admin",
		Location:       "Earth",
		MasterPort:     8000,
		YPTimeout:      Duration(15 * time.Second),
		MasterInterval: Duration(120 * time.Second),
		MasterUser:     "relay",
		AdminContact:   "icemaster@localhost",
		AdmissionFloor: 50,
		PassFailures:   5,
		PassLockout:    Duration(5 * time.Minute),
	}
}

// DefaultMount returns the documented defaults of a [[stream.mount]] table.
func DefaultMount() MountConfig {
	return MountConfig{
		Username:     "source",
		MetaInterval: 16000,
		FallbackHold: Duration(60 * time.Second),
		RetryBase:    Duration(500 * time.Millisecond),
		RetryMax:     Duration(30 * time.Second),
		SwitchBack:   Duration(10 * time.Second),
		Auth:         DefaultAuth(),
	}
}

// DefaultAuth returns the documented defaults of an authentication table.
func DefaultAuth() AuthConfig {
	return AuthConfig{
		Type:            "none",
		AuthHeader:      "icecast-auth-user: 1",
		TimelimitHeader: "icecast-auth-timelimit:",
		OnError:         "open",
		Timeout:         Duration(2500 * time.Millisecond),
		Handlers:        16,
		Pending:         500,
		OnErrorWait:     Duration(30 * time.Second),
		CacheTTL:        Duration(10 * time.Minute),
		NegativeTTL:     Duration(30 * time.Second),
		StaleTTL:        Duration(time.Hour),
		ReconnectGrace:  Duration(10 * time.Minute),
		StatsInterval:   Duration(5 * time.Second),
		FailOpenBurst:   4,
		FailOpenEvery:   Duration(30 * time.Second),
		VerifyGrace:     Duration(10 * time.Second),
		VerifyRate:      200,
		ReadmitTTL:      Duration(time.Hour),
		ReadmitRedirect: true,
	}
}

// WithDefaults returns a copy of c whose mounts have every zero option set to
// its default, so a TOML file may list only what it changes.
func (c Config) WithDefaults() Config {
	out := c
	out.Mounts = make([]MountConfig, len(c.Mounts))
	for i, m := range c.Mounts {
		out.Mounts[i] = m.withDefaults()
	}
	return out
}

func (m MountConfig) withDefaults() MountConfig {
	d := DefaultMount()
	setStr(&m.Username, d.Username)
	setInt(&m.MetaInterval, d.MetaInterval)
	setDur(&m.FallbackHold, d.FallbackHold)
	setDur(&m.RetryBase, d.RetryBase)
	setDur(&m.RetryMax, d.RetryMax)
	setDur(&m.SwitchBack, d.SwitchBack)
	a, da := &m.Auth, d.Auth
	setStr(&a.Type, da.Type)
	setStr(&a.AuthHeader, da.AuthHeader)
	setStr(&a.TimelimitHeader, da.TimelimitHeader)
	setStr(&a.OnError, da.OnError)
	setDur(&a.Timeout, da.Timeout)
	setInt(&a.Handlers, da.Handlers)
	setInt(&a.Pending, da.Pending)
	setDur(&a.OnErrorWait, da.OnErrorWait)
	setDur(&a.CacheTTL, da.CacheTTL)
	setDur(&a.NegativeTTL, da.NegativeTTL)
	setDur(&a.StaleTTL, da.StaleTTL)
	setDur(&a.ReconnectGrace, da.ReconnectGrace)
	setDur(&a.StatsInterval, da.StatsInterval)
	setInt(&a.FailOpenBurst, da.FailOpenBurst)
	setDur(&a.FailOpenEvery, da.FailOpenEvery)
	setDur(&a.VerifyGrace, da.VerifyGrace)
	if a.VerifyRate == 0 {
		a.VerifyRate = da.VerifyRate
	}
	return m
}

func setStr(p *string, d string) {
	if *p == "" {
		*p = d
	}
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *Duration, d Duration) {
	if *p == 0 {
		*p = d
	}
}

// Validate reports every problem of the section, with keys relative to it.
func (c Config) Validate(report func(key, msg string)) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		report("listen", fmt.Sprintf("%q is not host:port: %v", c.Listen, err))
	}
	positive := []struct {
		key string
		v   int64
	}{
		{"header-timeout", int64(c.HeaderTimeout)}, {"source-timeout", int64(c.SourceTimeout)},
		{"queue-size", int64(c.QueueSize)}, {"ring-size", int64(c.RingSize)},
		{"write-timeout", int64(c.WriteTimeout)}, {"ready-source-fresh", int64(c.ReadyFresh)},
		{"admission-burst", int64(c.AdmissionBurst)}, {"retry-after", int64(c.RetryAfter)},
		{"clients", int64(c.Clients)},
		{"password-failures", int64(c.PassFailures)},
		{"password-lockout", int64(c.PassLockout)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			report(p.key, "must be greater than zero")
		}
	}
	if c.AdmissionRate <= 0 {
		report("admission-rate", "must be greater than zero")
	}
	if c.AdmissionFloor <= 0 || c.AdmissionFloor > c.AdmissionRate {
		report("admission-rate-min", "must be greater than zero and at most admission-rate")
	}
	if c.BurstSize < 0 || c.MaxSkips < 0 || c.NotsentLowat < 0 || c.Writers < 0 || c.PerClient < 0 || c.Handshakes < 0 {
		report("burst-size", "burst-size, max-skips-per-minute, tcp-notsent-lowat, writers, handshakes and handshakes-per-client must not be negative")
	}
	if c.RingSize > 0 && c.QueueSize+c.BurstSize+4*slotCap >= c.RingSize {
		report("ring-size", fmt.Sprintf("must exceed queue-size + burst-size + %d bytes of guard (got %d)", 4*slotCap, c.RingSize))
	}
	if c.DrainDelay < 0 || c.DrainWindow < 0 {
		report("drain-window", "drain-delay and drain-window must not be negative")
	}
	c.validateSockets(report)
	for i, u := range c.YPURLs {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			report(fmt.Sprintf("yp-url[%d]", i), fmt.Sprintf("%q must be an http(s) URL", u))
		}
	}
	if len(c.YPURLs) > 0 && c.YPTimeout <= 0 {
		report("yp-url-timeout", "must be greater than zero")
	}
	if c.MasterServer != "" && (c.MasterPort <= 0 || c.MasterPort > 65535 || c.MasterInterval <= 0 || strings.ContainsAny(c.MasterServer, "/@:?# ")) {
		report("master-server", "needs a bare host, master-server-port 1-65535 and a positive master-update-interval")
	}
	for _, l := range []struct {
		key  string
		vals []string
	}{{"deny-ip", c.DenyIP}, {"allow-ip", c.AllowIP}, {"trusted-proxies", c.TrustedProxies}, {"proxy-protocol-from", c.ProxyFrom}} {
		for i, v := range l.vals {
			if _, err := parsePrefix(v); err != nil {
				report(fmt.Sprintf("%s[%d]", l.key, i), err.Error())
			}
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Mounts {
		prefix := fmt.Sprintf("mount[%d].", i)
		if seen[m.Name] {
			report(prefix+"mount-name", fmt.Sprintf("%q is used by two mounts", m.Name))
		}
		seen[m.Name] = true
		m.Validate(func(k, msg string) { report(prefix+k, msg) })
		if m.BurstSize > 0 && c.RingSize > 0 && c.QueueSize+m.BurstSize+4*slotCap >= c.RingSize {
			report(prefix+"burst-size", fmt.Sprintf("must leave ring-size room: queue-size + burst-size + %d < %d", 4*slotCap, c.RingSize))
		}
		if fb := m.FallbackMount; fb != "" && (fb == m.Name || !slices.ContainsFunc(c.Mounts, func(o MountConfig) bool { return o.Name == fb })) {
			report(prefix+"fallback-mount", fmt.Sprintf("%q must name another configured mount", fb))
		}
	}
}

// burst is the mount's burst size: its own, else the server's.
func (m *MountConfig) burst(c *Config) int {
	if m.BurstSize > 0 {
		return m.BurstSize
	}
	return c.BurstSize
}

// Validate reports every problem of one mount.
func (m MountConfig) Validate(report func(key, msg string)) {
	if !strings.HasPrefix(m.Name, "/") || len(m.Name) < 2 || strings.ContainsAny(m.Name, "? #") {
		report("mount-name", fmt.Sprintf("%q must start with / and hold no space, ? or #", m.Name))
	}
	if strings.HasPrefix(m.Name, "/admin/") {
		report("mount-name", fmt.Sprintf("%q is reserved (/admin/ is the admin API)", m.Name))
	}
	switch m.Name {
	case "/healthz", "/readyz", "/status.json", "/status-json.xsl":
		report("mount-name", fmt.Sprintf("%q is reserved", m.Name))
	}
	for i, u := range m.Upstreams {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			report(fmt.Sprintf("upstream[%d]", i), fmt.Sprintf("%q must be an http(s)://host[:port]/path URL", u))
		}
	}
	if m.Type != "" && codecForType(m.Type) == codecUnknown {
		report("type", fmt.Sprintf("%q is not one of audio/mpeg, audio/aac, audio/aacp, application/ogg, audio/ogg", m.Type))
	}
	if m.MetaInterval < 0 || m.MetaInterval > 1<<20 {
		report("icy-metadata-interval", "must be between 1 and 1048576 (0 = default 16000)")
	}
	if m.MaxListeners < 0 || m.MaxDevices < 0 || m.BurstSize < 0 || m.MaxListenerDur < 0 {
		report("max-listeners", "max-listeners, max-devices, burst-size and max-listener-duration must not be negative")
	}
	if m.OnDemand && len(m.Upstreams) == 0 {
		report("on-demand", "needs an upstream to pull on demand")
	}
	if m.FallbackHold < 0 || m.RetryBase < 0 || m.RetryMax < m.RetryBase || m.SwitchBack < 0 {
		report("retry-max", "durations must not be negative and retry-max must be >= retry-base")
	}
	m.Auth.Validate(func(k, msg string) { report("authentication."+k, msg) })
}

// Validate reports every problem of an authentication table.
func (a AuthConfig) Validate(report func(key, msg string)) {
	switch a.Type {
	case "", "none", "token":
	case "url":
		if u, err := url.Parse(a.ListenerAdd); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			report("listener_add", fmt.Sprintf("%q must be an http(s) URL for type url", a.ListenerAdd))
		}
	case "users":
		if len(a.Users) == 0 {
			report("users", "type users needs at least one user:password")
		}
	default:
		report("type", fmt.Sprintf("%q is not one of none, url, users, token", a.Type))
	}
	for i, u := range a.Users {
		if !strings.Contains(u, ":") {
			report(fmt.Sprintf("users[%d]", i), "must be user:password")
		}
	}
	if a.Type == "token" && len(a.TokenKeys) == 0 {
		report("token-keys", "type token needs at least one key")
	}
	for i, k := range a.TokenKeys {
		if _, err := parseTokenKey(k); err != nil {
			report(fmt.Sprintf("token-keys[%d]", i), err.Error())
		}
	}
	switch a.OnError {
	case "", "open", "closed":
	default:
		report("on-error", fmt.Sprintf("%q is not open or closed", a.OnError))
	}
	if a.CacheSize < 0 || a.FailOpenBurst < 0 || a.FailOpenEvery < 0 || a.VerifyGrace < 0 || a.VerifyRate < 0 || a.ReadmitTTL < 0 {
		report("cache-size", "cache-size, fail-open-burst, fail-open-interval, verify-grace, verify-rate and readmit-ttl must not be negative")
	}
	if a.Handlers < 0 || a.Pending < 0 || a.Timeout < 0 {
		report("handlers", "handlers, pending and timeout must not be negative")
	}
	if a.ListenerRemove != "" {
		if u, err := url.Parse(a.ListenerRemove); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			report("listener_remove", fmt.Sprintf("%q must be an http(s) URL", a.ListenerRemove))
		}
	}
}
