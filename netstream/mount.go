package netstream

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Source kinds, by priority: a push preempts an upstream, which preempts the
// file loop.
const (
	kindPush = iota
	kindUpstream
	kindFile
)

var kindNames = [...]string{"push", "upstream", "file"}

// sourceRef identifies the source feeding a mount.
type sourceRef struct {
	kind int
	url  string
	stop func() // asks the source to let go (preemption)
}

// streamInfo holds the icy-* values a source announced.
type streamInfo struct {
	name, description, url, genre, contentType string
	public                                     bool
	bitrate                                    int // kbit/s
}

// metaState is the current title and its precomputed ICY block.
type metaState struct {
	ver   uint32
	title string
	block []byte
}

// oggHeaders is the header set (identification, comment, setup pages) of
// the current Ogg logical stream, and where the ring holds it: slots start
// to end hold the header pages (end may also hold the first audio pages).
type oggHeaders struct {
	pages      []byte
	start, end uint64
}

// mount is one mount point: its ring, the frame writer feeding it, the
// silence generator, metadata and the listener registry.
type mount struct {
	srv  *Server
	name string
	cfg  atomic.Pointer[MountConfig]
	ring *ring

	mu          sync.Mutex // serialises ingest, silence and publishing
	fr          *framer
	codec       atomic.Uint32
	active      *sourceRef
	fillN       int
	fillSync    bool
	fillSince   time.Time
	key         uint32
	silence     []byte
	silenceDur  time.Duration
	gapStart    time.Time // zero while real audio flows
	gapProduced time.Duration
	downSince   time.Time // sourceless since (zero = has a source)
	closing     bool      // hold expired: listeners are being closed
	bytesIn     uint64    // real audio bytes, for the bitrate estimate
	rateMark    time.Time
	rateBytes   uint64
	oggStart    uint64    // ring sequence of the header set being captured
	oggPending  bool      // a header set is being captured
	edge        *liveEdge // live-edge search of a joining upstream (nil until the first)

	lastReal  atomic.Int64 // unix nanos of the last real (not silence) frame
	everAudio atomic.Bool
	bitrate   atomic.Int64 // bits per second
	info      atomic.Pointer[streamInfo]
	meta      atomic.Pointer[metaState]
	oggHdr    atomic.Pointer[oggHeaders]
	srcDesc   atomic.Pointer[sourceRef]
	heads     [2]atomic.Pointer[headVariant] // without and with icy-metaint

	adm       atomic.Pointer[admission]
	listeners atomic.Int64
	peak      atomic.Int64 // most listeners at once (Icecast's listener_peak)
	rate      atomic.Int32 // sample rate of the audio (0 = unknown)
	chans     atomic.Int32 // channels of the audio (0 = unknown)
	since     atomic.Int64 // unix nanos when the current source attached (stream_start)
	skips     atomic.Uint64
	drops     atomic.Uint64

	smu      sync.Mutex
	sessions map[string][]*listener // identity -> live connections, oldest first (max-devices)

	intro   atomic.Pointer[[]byte] // intro file played to new listeners
	waiting atomic.Int64           // listeners held while an on-demand upstream connects
	demand  chan struct{}          // kicked when an on-demand mount gets a listener

	stopSources func()
	done        chan struct{}
}

func newMount(srv *Server, cfg MountConfig) *mount {
	m := &mount{
		srv: srv, name: cfg.Name, ring: newRing(srv.cfg.RingSize),
		fr: newFramer(codecUnknown), sessions: map[string][]*listener{}, demand: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	m.cfg.Store(&cfg)
	m.loadIntro(cfg.Intro)
	m.setTitle(cfg.Title)
	m.info.Store(&streamInfo{})
	m.downSince = time.Now()
	return m
}

// setTitle installs a new StreamTitle; listeners pick it up at their next
// metadata point. It allocates once per change, never per chunk.
func (m *mount) setTitle(t string) {
	t = sanitizeTitle(t)
	old := m.meta.Load()
	if old != nil && old.title == t {
		return
	}
	var ver uint32 = 1
	if old != nil {
		ver = old.ver + 1
	}
	m.meta.Store(&metaState{ver: ver, title: t, block: buildMetaBlock(t)})
}

// attach makes src the mount's source if nothing of higher or equal priority
// feeds it; a lower-priority source is preempted.
func (m *mount) attach(src *sourceRef, c codec) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.active; a != nil {
		if a.kind <= src.kind {
			return false
		}
		if a.stop != nil {
			a.stop()
		}
	}
	m.active = src
	m.srcDesc.Store(src)
	m.fr.reset(c)
	if src.kind == kindUpstream && m.everAudio.Load() {
		// It replaces a source listeners were hearing: skip its burst.
		if m.edge == nil {
			m.edge = newLiveEdge()
		}
		m.edge.start()
	} else if m.edge != nil {
		m.edge.active = false
	}
	m.codec.Store(uint32(c))
	m.downSince = time.Time{}
	m.closing = false
	m.since.Store(time.Now().UnixNano())
	m.overrideFallback()
	m.srv.log.Info("stream: source attached", "mount", m.name, "kind", kindNames[src.kind], "url", src.url, "codec", c.String())
	return true
}

// detach removes src if it is still the active source; silence starts at once.
func (m *mount) detach(src *sourceRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active != src {
		return
	}
	m.active = nil
	m.srcDesc.Store(nil)
	m.downSince = time.Now()
	if m.gapStart.IsZero() {
		m.gapStart, m.gapProduced = time.Now(), 0
	}
	m.srv.log.Warn("stream: source lost", "mount", m.name, "kind", kindNames[src.kind], "url", src.url)
	if fb := m.fallback(); fb != nil {
		go m.srv.moveClients(m, fb) // the fallback plays instead of silence
	}
}

// fallback returns the fallback mount when it has a source, else nil.
func (m *mount) fallback() *mount {
	name := m.cfg.Load().FallbackMount
	if name == "" {
		return nil
	}
	fb := m.srv.mount(name)
	if fb == nil || fb == m || fb.srcDesc.Load() == nil {
		return nil
	}
	return fb
}

// overrideFallback moves the fallback mount's listeners back to m when its
// source returns and fallback-override is set (Icecast moves them all).
func (m *mount) overrideFallback() {
	mc := m.cfg.Load()
	if !mc.FallbackOverride || mc.FallbackMount == "" {
		return
	}
	if fb := m.srv.mount(mc.FallbackMount); fb != nil && fb != m {
		go m.srv.moveClients(fb, m)
	}
}

// ingest feeds bytes from src; it returns false if src is no longer active.
func (m *mount) ingest(src *sourceRef, p []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active != src {
		return false
	}
	m.fr.write(p, m)
	return true
}

// putFrame appends one frame to the ring (called with m.mu held, by the
// framer for real audio or by the silence generator).
func (m *mount) putFrame(f []byte, fi frameInfo) {
	if e := m.edge; e != nil && e.active && !m.fr.oggCapturing { // header pages pass
		done, taken := e.add(time.Now(), f, fi)
		if !done {
			return
		}
		m.releaseEdge()
		if taken {
			return
		}
	}
	if codec(m.codec.Load()) == codecOgg && len(f) > 5 && f[5]&2 != 0 {
		// A new header set starts its own slot, so that a listener can
		// be started exactly at it.
		m.publishLocked()
		m.oggStart, m.oggPending = m.ring.head.Load(), true
	}
	m.realFrame(f, fi)
	m.appendFrame(f)
}

// releaseEdge ends a live-edge search: silence bridges the gap up to the
// live edge, MP3 priming frames refill the bit reservoir, then the held live
// frames follow, so the ring stays in real time with nothing repeated.
func (m *mount) releaseEdge() {
	e := m.edge
	e.active = false
	primers := e.primers()
	if codec(m.codec.Load()) != codecMP3 {
		primers = nil
	}
	var primeDur time.Duration
	for _, p := range primers {
		if fi, ok := parseMP3(p); ok {
			primeDur += fi.dur
		}
	}
	if !m.gapStart.IsZero() {
		m.fillSilence(e.tMax.Add(-primeDur))
	}
	for _, p := range primers {
		if muteMP3(p) {
			m.appendFrame(p)
		}
	}
	for _, h := range e.frames {
		m.putFrame(e.held[h.off:h.off+h.n], h.fi)
	}
}

// appendFrame copies one frame into the ring, publishing full slots.
func (m *mount) appendFrame(f []byte) {
	r := m.ring
	sync := true
	for len(f) > 0 {
		if m.fillN > 0 && (sync && m.fillN+len(f) > slotCap || m.fillN == slotCap) {
			m.publishLocked()
		}
		sl := r.at(r.head.Load())
		if m.fillN == 0 {
			m.fillSync, m.fillSince = sync, time.Now()
		}
		n := copy(sl.buf[m.fillN:], f)
		m.fillN += n
		f = f[n:]
		sync = false
	}
}

// realFrame tracks parameters, bitrate and freshness of real audio.
func (m *mount) realFrame(f []byte, fi frameInfo) {
	now := time.Now()
	m.lastReal.Store(now.UnixNano())
	m.everAudio.Store(true)
	m.gapStart = time.Time{}
	c := codec(m.codec.Load())
	if fi.key != m.key || m.silence == nil && c != codecOgg {
		if m.key != 0 && fi.key != m.key {
			m.srv.log.Warn("stream: codec parameters changed, closing listeners over the drain window", "mount", m.name)
			m.staggerClose(m.srv.cfg.DrainWindow.Std())
		}
		m.key = fi.key
		m.rate.Store(int32(fi.sampleRate))
		m.chans.Store(int32(fi.channels))
		m.silence = silenceFrame(c, f)
		m.silenceDur = fi.dur
	}
	if c == codecOgg && m.oggPending && !m.fr.oggCapturing && len(m.fr.oggHdr) > 0 {
		// The first audio page: the header set is complete.
		m.oggPending = false
		m.oggHdr.Store(&oggHeaders{pages: append([]byte(nil), m.fr.oggHdr...), start: m.oggStart, end: m.ring.head.Load()})
	}
	m.bytesIn += uint64(len(f))
	if fi.bitrate > 0 {
		m.bitrate.Store(int64(fi.bitrate))
	} else if d := now.Sub(m.rateMark); d > 5*time.Second {
		if !m.rateMark.IsZero() {
			m.bitrate.Store(int64(float64(m.bytesIn-m.rateBytes) * 8 / d.Seconds()))
		}
		m.rateMark, m.rateBytes = now, m.bytesIn
	}
}

// publishLocked publishes the slot being filled and wakes the writers.
func (m *mount) publishLocked() {
	if m.fillN == 0 {
		return
	}
	m.ring.publish(m.fillN, m.fillSync)
	m.fillN = 0
	m.srv.fan.kick()
}

// tick runs every 100 ms: flushes a partial slot, bridges gaps with silence,
// and enforces the fallback hold.
func (m *mount) tick(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg := m.cfg.Load()
	last := time.Unix(0, m.lastReal.Load())
	stalled := m.active == nil || now.Sub(last) > time.Second
	if stalled && m.everAudio.Load() && !m.edge.searching() {
		if m.gapStart.IsZero() {
			m.gapStart, m.gapProduced = last, 0
			if cfg.FallbackTitle != "" {
				m.setTitle(cfg.FallbackTitle)
			}
		}
		m.fillSilence(now)
	}
	if m.active == nil && !m.downSince.IsZero() && !m.closing && m.listeners.Load() > 0 &&
		now.Sub(m.downSince) > cfg.FallbackHold.Std() {
		m.closing = true
		m.srv.log.Warn("stream: fallback hold expired, closing listeners over the drain window", "mount", m.name)
		m.staggerClose(m.srv.cfg.DrainWindow.Std())
	}
	if m.fillN > 0 && now.Sub(m.fillSince) > 200*time.Millisecond {
		m.publishLocked()
	}
}

// fillSilence writes silent frames so that the stream keeps real time.
func (m *mount) fillSilence(now time.Time) {
	if m.silence == nil || m.silenceDur <= 0 {
		return // Ogg: hold the connection without data
	}
	target := now.Sub(m.gapStart)
	if target-m.gapProduced > 2*time.Second { // never burst more than 2 s
		m.gapProduced = target - 2*time.Second
	}
	for m.gapProduced < target {
		m.appendFrame(m.silence)
		m.gapProduced += m.silenceDur
	}
}

// staggerClose schedules every listener of the mount to close at a random
// moment within window, so their reconnects do not arrive all at once.
func (m *mount) staggerClose(window time.Duration) {
	now := time.Now().UnixNano()
	m.srv.fan.each(func(l *listener) {
		if l.m == m {
			l.closeAt.Store(now + rand.Int64N(int64(window)+1))
		}
	})
}

// fresh reports whether real audio arrived within d.
func (m *mount) fresh(now time.Time, d time.Duration) bool {
	return m.everAudio.Load() && now.Sub(time.Unix(0, m.lastReal.Load())) <= d
}

// playable reports whether a new listener can be served now: audio was seen
// and either it still flows or gaps are being bridged within the hold.
func (m *mount) playable() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.everAudio.Load() || m.closing {
		return false
	}
	return m.active != nil || m.silence != nil
}

// addListener counts a new listener and keeps the peak.
func (m *mount) addListener() {
	n := m.listeners.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
}

// register records l under its identity; beyond max-devices live
// connections of that identity (default 1: the newest connection wins) the
// oldest is closed.
func (m *mount) register(l *listener) {
	id := l.identity()
	if id == "" {
		return
	}
	limit := max(m.cfg.Load().MaxDevices, 1)
	m.smu.Lock()
	live := append(m.sessions[id], l)
	var old []*listener
	if len(live) > limit {
		old = append(old, live[:len(live)-limit]...)
		live = append(live[:0], live[len(live)-limit:]...)
	}
	m.sessions[id] = live
	m.smu.Unlock()
	for _, o := range old {
		o.kill.Store(true)
		m.srv.fan.kickOne(o)
	}
}

func (m *mount) unregister(l *listener) {
	id := l.identity()
	if id == "" {
		return
	}
	m.smu.Lock()
	live := slices.DeleteFunc(m.sessions[id], func(x *listener) bool { return x == l })
	if len(live) == 0 {
		delete(m.sessions, id)
	} else {
		m.sessions[id] = live
	}
	m.smu.Unlock()
}
