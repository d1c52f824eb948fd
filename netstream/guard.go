package netstream

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Descriptors kept free for everything but listeners, handshakes and the
// mounts' own needs: the listen socket, log and state files and the other
// ports of the daemon.
const fdReserve = 128

// applyLimits derives the limits that depend on the environment: the
// listener cap lowered so clients + handshakes + a reserve fit the
// descriptor limit (RLIMIT_NOFILE), and the Host allow-list of
// /status.json.
func (s *Server) applyLimits(cfg *Config) {
	hs := int64(cfg.Handshakes)
	if hs == 0 {
		hs = sizeHandshakes(s.budget)
	}
	s.hsCap.Store(hs)
	clients := int64(cfg.Clients)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		reserved := fdReserve
		for _, m := range cfg.Mounts {
			reserved += 4 // sources and upstream dials
			if m.Auth.Type == "url" || m.Auth.ListenerRemove != "" || m.Auth.StatsURL != "" {
				// backend connections, plus the checks that may wait for them
				// (a mount without a backend has neither)
				reserved += max(m.Auth.Handlers, 1) + sizeAdmission(s.budget, m.Auth.Pending).pending
			}
		}
		clients = clientsForFDs(cfg.Clients, int(hs), reserved, rl.Cur)
		if clients < int64(cfg.Clients) {
			s.log.Warn("stream: clients lowered to fit the descriptor limit (raise RLIMIT_NOFILE or lower stream.handshakes)",
				"clients", cfg.Clients, "allowed", clients, "nofile", rl.Cur, "handshakes", hs)
		}
	}
	s.maxClients.Store(clients)
	hosts := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, "": true}
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil {
		hosts[strings.ToLower(h)] = true
	}
	for _, h := range cfg.AllowedHosts {
		hosts[strings.ToLower(stripPort(h))] = true
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts[ipn.IP.String()] = true
			}
		}
	}
	s.hosts.Store(&hosts)
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// hostAllowed reports whether a Host header names this relay (DNS-rebinding
// guard of /status.json). A request without Host is not from a browser.
func (s *Server) hostAllowed(host string) bool {
	return (*s.hosts.Load())[strings.ToLower(stripPort(host))]
}

// clientsForFDs returns the listener cap that fits nofile descriptors next
// to the handshakes and the reserved descriptors (at least 1).
func clientsForFDs(clients, handshakes, reserved int, nofile uint64) int64 {
	if nofile == unix.RLIM_INFINITY || nofile >= math.MaxInt32 {
		return int64(clients)
	}
	avail := int64(nofile) - int64(handshakes) - int64(reserved)
	return max(min(int64(clients), avail), 1)
}

// enterHandshake takes a request-phase slot for a new connection from ip.
// The accept loop waits while all handshakes slots are taken (the kernel's
// accept queue holds the rest); once half are taken, one address may hold
// at most handshakes-per-client, so idle or slow connections from one peer
// cannot take the slots of the others. Below half, a load balancer that
// forwards everyone from one address is not limited. A PROXY protocol
// sender is never limited as one address (proxied): its connections count
// against their clients' addresses once moveHandshake learnt them.
func (s *Server) enterHandshake(ip string, proxied bool) bool {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	if !proxied && s.perClientFull(ip) {
		return false
	}
	s.handshakes.Add(1)
	s.hsPerAddr[ip]++
	return true
}

// perClientFull reports whether ip holds its share of the handshake slots
// (hsMu held).
func (s *Server) perClientFull(ip string) bool {
	per := s.conf().PerClient
	return per > 0 && s.handshakes.Load()*2 >= s.hsCap.Load() && s.hsPerAddr[ip] >= per
}

// moveHandshake moves a proxied connection's slot from the sender's address
// to its client's, unless the client holds its share already; it reports
// whether it moved (the slot stays with from otherwise).
func (s *Server) moveHandshake(from, to string) bool {
	if from == to {
		return true
	}
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	if s.perClientFull(to) {
		return false
	}
	if s.hsPerAddr[from]--; s.hsPerAddr[from] <= 0 {
		delete(s.hsPerAddr, from)
	}
	s.hsPerAddr[to]++
	return true
}

// waitHandshakeSlot blocks the accept loop while every handshake slot is
// taken; it reports false when the server stops.
func (s *Server) waitHandshakeSlot() bool {
	for s.handshakes.Load() >= s.hsCap.Load() {
		if !sleepCtx(s.ctx, 5*time.Millisecond) {
			return false
		}
	}
	return true
}

func (s *Server) leaveHandshake(ip string) {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	s.handshakes.Add(-1)
	if s.hsPerAddr[ip]--; s.hsPerAddr[ip] <= 0 {
		delete(s.hsPerAddr, ip)
	}
}

// rateLog lets a kind of log line through at most every 10 s and counts
// the events, logged or not: a flood of bad peers costs a line per 10 s.
type rateLog struct {
	n    atomic.Uint64
	last atomic.Int64 // unix nanos of the last line
}

// event counts one event and reports the count and whether to log it.
func (r *rateLog) event() (uint64, bool) {
	n := r.n.Add(1)
	now := time.Now().UnixNano()
	last := r.last.Load()
	return n, now-last >= int64(10*time.Second) && r.last.CompareAndSwap(last, now)
}

// acceptFailed logs accept errors (EMFILE under a flood) at most every 10 s,
// with the count since the start.
func (s *Server) acceptFailed(err error) {
	if n, ok := s.acceptErrs.event(); ok {
		s.log.Warn("stream: accept", "err", err, "errors", n)
	}
}

// proxyClient reads the PROXY header of a connection from peer (a
// proxy-protocol-from address) into buf and returns the client's address
// (peer itself for a LOCAL or UNKNOWN header, as for the balancer's health
// checks), after deny-ip, allow-ip and handshakes-per-client judged it.
// It reports false when the connection is to be closed: a missing or bad
// header is logged (at most every 10 s, with the peer and what was wrong).
func (s *Server) proxyClient(conn net.Conn, peer string, buf []byte) (string, bool) {
	h, err := readProxyHeader(conn, buf)
	if err != nil {
		if n, ok := s.proxyErrs.event(); ok {
			s.log.Warn("stream: connection from a proxy-protocol-from address closed", "peer", peer, "err", err, "closed", n)
		}
		return "", false
	}
	ip := peer
	if !h.local {
		ip = h.src.Addr().String()
	}
	if !s.ipRules.Load().admits(ip) || !s.moveHandshake(peer, ip) {
		s.refused.Add(1)
		return "", false
	}
	return ip, true
}

// checkPassword runs a source or admin password check for a client at ip
// behind the per-peer lockout: a locked address gets 429 + Retry-After
// without its password being compared; a wrong password counts a failure
// and gets 401 with the realm. It reports whether the check passed.
func (s *Server) checkPassword(conn net.Conn, ip, realm string, check func() bool) bool {
	now := time.Now()
	if ok, wait := s.passGate.allowed(ip, now); !ok {
		secs := int((wait + time.Second - 1) / time.Second)
		writeSimple(conn, http.StatusTooManyRequests, []string{"Retry-After: " + strconv.Itoa(secs)}, "too many wrong passwords from your address\n")
		return false
	}
	if !check() {
		cfg := s.conf()
		s.passGate.failed(ip, now, cfg.PassFailures, cfg.PassLockout.Std())
		writeSimple(conn, http.StatusUnauthorized, []string{`WWW-Authenticate: Basic realm="` + realm + `"`}, "bad credentials\n")
		return false
	}
	s.passGate.succeeded(ip)
	return true
}

// adaptive steers the admission rate between admission-rate-min and
// admission-rate from what the relay sustains, and hands out Retry-After
// slots so deferred listeners return spread at that rate.
type adaptive struct {
	mu      sync.Mutex
	rate    float64
	next    time.Time // the next free return slot
	lastCPU time.Duration
	lastAt  time.Time
	load    float64 // CPU use of the last period, in cores per core
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// congested reports whether the relay is behind: the process used more
// than 85 % of the CPUs it may use, a writer shard's pass took longer than
// its tick (writers lag), or half the handshake slots are taken (the accept
// path queues).
func (s *Server) congested(load float64) bool {
	if load > 0.85 {
		return true
	}
	for _, sh := range s.fan.shards {
		if sh.passNanos.Load() > int64(100*time.Millisecond) {
			return true
		}
	}
	return s.handshakes.Load()*2 > s.hsCap.Load()
}

// adjust runs once a second: additive increase by a tenth of the ceiling
// while the relay keeps up, multiplicative decrease (x0.7) while it is
// congested, between admission-rate-min and admission-rate.
func (s *Server) adjust(now time.Time, procs int) {
	cfg := s.conf()
	a := &s.adapt
	a.mu.Lock()
	cpu := cpuTime()
	if !a.lastAt.IsZero() {
		if wall := now.Sub(a.lastAt); wall > 0 {
			a.load = float64(cpu-a.lastCPU) / float64(wall) / float64(max(procs, 1))
		}
	}
	a.lastCPU, a.lastAt = cpu, now
	if a.rate == 0 {
		a.rate = cfg.AdmissionRate
	}
	if s.congested(a.load) {
		a.rate = max(cfg.AdmissionFloor, a.rate*0.7)
	} else {
		a.rate = min(cfg.AdmissionRate, a.rate+cfg.AdmissionRate/10)
	}
	rate := a.rate
	a.mu.Unlock()
	s.bucket.set(rate, cfg.AdmissionBurst)
}

// AdmissionRate returns the current adaptive admission rate.
func (s *Server) AdmissionRate() float64 {
	s.adapt.mu.Lock()
	defer s.adapt.mu.Unlock()
	if s.adapt.rate == 0 {
		return s.conf().AdmissionRate
	}
	return s.adapt.rate
}

// deferAdmission answers a listener the admission rate cannot take now with
// 503 and a Retry-After slot: the k-th deferred listener is told to come
// back k/rate seconds after the slots already handed out, so clients that
// honour it return evenly at the rate the relay admits.
func (s *Server) deferAdmission(conn net.Conn) {
	rate := s.AdmissionRate()
	now := time.Now()
	a := &s.adapt
	a.mu.Lock()
	if a.next.Before(now.Add(time.Second)) {
		a.next = now.Add(time.Second)
	}
	at := a.next
	a.next = a.next.Add(time.Duration(float64(time.Second) / rate))
	a.mu.Unlock()
	secs := int((at.Sub(now) + time.Second - 1) / time.Second)
	writeSimple(conn, http.StatusServiceUnavailable, []string{"Retry-After: " + strconv.Itoa(secs)}, "too many new connections, retry later\n")
}
