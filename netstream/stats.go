package netstream

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

func subtleEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// listenerEvent is one listener session that ended, sent to the stats
// backends asynchronously. It is small: the queue holds thousands.
type listenerEvent struct {
	mount    string
	who      *session
	duration time.Duration
	bytes    uint64
	reason   string
}

// listenerGone is called by a shard after it closed l. It never blocks:
// events are dropped (and counted) when the queue is full. A listener
// without a session was admitted while nothing needed to hear about it (no
// identity, no auth cache entry, no listener_remove or stats-url) and is
// not reported.
func (s *Server) listenerGone(l *listener, reason string) {
	if l.who == nil {
		return
	}
	l.who.gone.Store(true)
	if a := l.m.adm.Load(); a != nil {
		a.released(l.who.cacheKey)
	}
	ev := listenerEvent{mount: l.m.name, who: l.who, duration: time.Duration(time.Now().UnixNano() - l.start), bytes: l.bytes, reason: reason}
	if l.who.report.Load() == reportPending {
		// The backend has not heard of this re-admission yet: the verifier
		// sends this remove right after the add.
		held := new(listenerEvent) // only here: ev itself stays on the stack
		*held = ev
		l.who.left.Store(held)
		if l.who.report.CompareAndSwap(reportPending, reportLeft) {
			return
		}
		l.who.left.Store(nil) // reported meanwhile
	}
	s.queueEvent(ev)
}

// queueEvent hands ev to statsLoop without blocking; a full queue drops it
// (counted).
func (s *Server) queueEvent(ev listenerEvent) {
	select {
	case s.events <- ev:
	default:
		s.dropped.Add(1)
	}
}

// reported marks who's re-admission report as sent and queues the remove
// that listenerGone held back if the listener left before it.
func (s *Server) reported(who *session) {
	if who.report.CompareAndSwap(reportPending, reportSent) {
		return
	}
	if ev := who.left.Swap(nil); ev != nil {
		s.queueEvent(*ev)
	}
	who.report.Store(reportSent)
}

// statsLoop batches listener events per mount and sends them: Icecast
// listener_remove POSTs (at most 4 in flight) and one batch POST to
// stats-url. Nothing here is on the admission path.
func (s *Server) statsLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	pending := map[string][]listenerEvent{}
	lastFlush := map[string]time.Time{}
	client := &http.Client{Timeout: 5 * time.Second}
	sem := make(chan struct{}, 4)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev := <-s.events:
			if len(pending[ev.mount]) < 10000 {
				pending[ev.mount] = append(pending[ev.mount], ev)
			} else {
				s.dropped.Add(1)
			}
		case now := <-t.C:
			for name, evs := range pending {
				m := s.mount(name)
				if m == nil {
					delete(pending, name)
					continue
				}
				ac := m.cfg.Load().Auth
				if now.Sub(lastFlush[name]) < ac.StatsInterval.Std() || len(evs) == 0 {
					continue
				}
				lastFlush[name] = now
				delete(pending, name)
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					s.sendEvents(s.ctx, client, sem, ac, evs)
				}()
			}
		}
	}
}

func (s *Server) sendEvents(ctx context.Context, client *http.Client, sem chan struct{}, ac AuthConfig, evs []listenerEvent) {
	post := func(url, body string) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "satd")
		if ac.Username != "" {
			req.SetBasicAuth(ac.Username, ac.Password)
		}
		resp, err := client.Do(req)
		if err != nil {
			s.log.Debug("stream: stats post", "url", redactURL(url), "err", err)
			return
		}
		resp.Body.Close()
	}
	if ac.StatsURL != "" {
		var b strings.Builder
		for _, ev := range evs {
			b.WriteString(icecastForm("listener_remove", s.cfg.Hostname, s.port(), ev.who.req,
				"duration", strconv.Itoa(int(ev.duration.Seconds())), "bytes", strconv.FormatUint(ev.bytes, 10)))
			b.WriteByte('\n')
		}
		post(ac.StatsURL, b.String())
	}
	if ac.ListenerRemove != "" {
		for _, ev := range evs {
			if ctx.Err() != nil {
				return
			}
			post(ac.ListenerRemove, icecastForm("listener_remove", s.cfg.Hostname, s.port(), ev.who.req,
				"duration", strconv.Itoa(int(ev.duration.Seconds()))))
		}
	}
}

// MountStats is a snapshot of one mount for the web form and metrics.
type MountStats struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Codec     string `json:"codec"`
	Source    string `json:"source"`   // push, upstream, file, or silence/none when sourceless
	Upstream  string `json:"upstream"` // URL of the source in use
	Fresh     bool   `json:"fresh"`
	Listeners int    `json:"listeners"`
	Bitrate   int    `json:"bitrate_kbps"`
	Title     string `json:"title"`
	Skips     uint64 `json:"skips"`
	Drops     uint64 `json:"drops"`
	AuthCalls uint64 `json:"auth_calls"`
	FailOpens uint64 `json:"auth_fail_opens"`
	AuthBusy  uint64 `json:"auth_busy"`
	Breaker   bool   `json:"auth_breaker_open"`
	// Background listener_add calls (verify-later and re-admission reports).
	AuthAsync uint64 `json:"auth_async_calls"`
	Readmits  uint64 `json:"readmits"` // admitted on a re-admission token
	// Re-admissions the backend was not told of: the verify queue was full.
	Unreported uint64 `json:"auth_readmits_unreported"`
	Revoked    uint64 `json:"auth_revoked"`   // provisional listeners closed after a deny
	Verifying  int    `json:"auth_verifying"` // provisional listeners awaiting a decision
	CacheLen   int    `json:"auth_cache"`     // cached decisions
	CacheEvict uint64 `json:"auth_cache_evicted"`
}

// Stats is a snapshot of the whole relay.
type Stats struct {
	Listeners     int          `json:"listeners"`
	Draining      bool         `json:"draining"`
	EventsDropped uint64       `json:"events_dropped"`
	Handshakes    int          `json:"handshakes"`          // connections in the request phase
	Refused       uint64       `json:"handshakes_refused"`  // closed at once: handshake caps reached
	ProxyErrors   uint64       `json:"proxy_header_errors"` // proxy-protocol-from connections closed: no or a bad PROXY header
	AdmissionRate float64      `json:"admission_rate"`      // adaptive rate now (new listeners per second)
	Mounts        []MountStats `json:"mounts"`
}

// Stats returns a snapshot; it is safe to call from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{Listeners: int(s.fan.lsn.Load()), Draining: s.draining.Load(), EventsDropped: s.dropped.Load(),
		Handshakes: int(s.handshakes.Load()), Refused: s.refused.Load(), ProxyErrors: s.proxyErrs.n.Load(), AdmissionRate: s.AdmissionRate()}
	addr := s.Addr()
	now := time.Now()
	for _, mc := range s.conf().Mounts {
		m := s.mount(mc.Name)
		if m == nil || mc.Hidden {
			continue
		}
		ms := MountStats{
			Name: m.name, URL: "http://" + addr + m.name, Codec: codec(m.codec.Load()).String(),
			Source: "none", Fresh: m.fresh(now, s.conf().ReadyFresh.Std()),
			Listeners: int(m.listeners.Load()), Bitrate: int(m.bitrate.Load() / 1000),
			Title: m.meta.Load().title, Skips: m.skips.Load(), Drops: m.drops.Load(),
		}
		if src := m.srcDesc.Load(); src != nil {
			ms.Source, ms.Upstream = kindNames[src.kind], src.url
		} else if m.everAudio.Load() {
			ms.Source = "silence"
		}
		if a := m.adm.Load(); a != nil {
			ms.AuthCalls, ms.FailOpens, ms.AuthBusy, ms.Breaker = a.calls.Load(), a.failOpens.Load(), a.busy.Load(), a.BreakerOpen()
			ms.AuthAsync, ms.Readmits, ms.Unreported, ms.Revoked = a.asyncAdds.Load(), a.readmits.Load(), a.unreported.Load(), a.revoked.Load()
			ms.CacheLen, ms.CacheEvict = a.cacheLen(), a.evicted.Load()
			if a.verify != nil {
				ms.Verifying = a.verify.pending()
			}
		}
		st.Mounts = append(st.Mounts, ms)
	}
	return st
}
