package netstream

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxIov bounds the segments written by one writev.
const maxIov = 16

// A listener that keeps up is sent audio once its oldest unsent chunk is
// writeBatch old or batchSlots chunks (16 KiB) are pending, whichever comes
// first: one write per second at 128 kbit/s, far below queue-size and
// tcp-notsent-lowat at any bitrate. Most of the relay's CPU is kernel time
// per send, so fewer, larger sends cost far less; players buffer more than
// a second (the burst alone is about four).
const (
	writeBatch = time.Second
	batchSlots = 4
)

// listener is one connected listener. It has no goroutine, no net.Conn and
// no request state of its own: a writer shard services its raw socket with
// non-blocking writes. It is kept small because it is the per-listener cost.
type listener struct {
	m   *mount   // changed only by its shard, under the shard's mutex (moveclients)
	fd  int32    // non-blocking socket owned by the shard (closed by finish)
	id  uint32   // Icecast client ID (listclients, killclient)
	who *session // nil for an anonymous listener nobody needs to hear about

	cursor  uint64 // ring sequence being sent
	off     int    // bytes of the cursor slot already sent
	metaint int    // 0 = no inline metadata
	until   int    // audio bytes before the next metadata point
	metaBlk []byte // metadata block being sent
	metaOff int
	metaVer uint32 // title version of metaBlk (0 = the zero block)
	sentVer uint32
	pre     []byte // response head, then the Ogg header pages
	preOff  int32  // bytes of pre already sent
	preHead int32  // length of the response head within pre; the rest is audio

	start        int64 // unix nanos of the admission
	bytes        uint64
	lastProgress int64
	skipWin      int64
	skipCount    int32
	kill         atomic.Bool
	closeAt      atomic.Int64          // unix nanos; 0 = not scheduled
	limitAt      int64                 // unix nanos from the auth time limit; 0 = none
	moveTo       atomic.Pointer[mount] // set by moveclients; the shard moves l
}

// session is who a listener is, kept only when something needs it after the
// handshake: the newest-connection-wins registry (identity), the auth
// decision cache (cacheKey) or the listener_remove and stats backends (the
// request fields).
type session struct {
	identity string // user or token subject; "" = anonymous
	cacheKey string
	req      admitRequest // without header and token
	gone     atomic.Bool  // the listener was closed (the verifier skips its provisional check)
	// report is the state of the re-admission report (reportNone ...
	// reportSent): while it is pending, the listener's listener_remove
	// waits in left so the backend never hears of a remove before the add.
	report atomic.Uint32
	left   atomic.Pointer[listenerEvent] // the remove held back while reportLeft
}

// States of a session's re-admission report. One lifetime: none → pending
// (queued on the verifier) → sent; or pending → left (the listener closed
// first: listenerGone parks its remove event on the session) → sent, when
// the verifier, having reported the add, queues the parked remove. A report
// never queued (queue full) stays none and the remove goes out as usual.
const (
	reportNone uint32 = iota
	reportPending
	reportLeft
	reportSent
)

// identity returns the session identity of l, "" when anonymous.
func (l *listener) identity() string {
	if l.who == nil {
		return ""
	}
	return l.who.identity
}

// segKind says what a write segment holds, so a partial write can be
// accounted for exactly.
type segKind uint8

const (
	segPre      segKind = iota
	segMeta             // an ICY metadata block
	segAudio            // ring data
	segPreAudio         // Ogg header pages replayed from pre: audio for metaint
)

type seg struct {
	kind segKind
	cont bool // continues the listener's partly sent metadata block
	ver  uint32
	seq  uint64
	blk  []byte
	n    int
}

// shard is one writer goroutine servicing many listeners.
type shard struct {
	fan  *fanout
	mu   sync.Mutex
	add  []*listener
	ls   []*listener
	kick chan struct{}

	bufs  [maxIov][]byte
	segs  [maxIov]seg
	k     int
	audio bool   // some segment holds ring data
	first uint64 // sequence of the first ring segment
	wio   iovecs

	passNanos atomic.Int64 // duration of the last pass (writer lag signal)
}

// fanout owns the writer shards.
type fanout struct {
	srv    *Server
	shards []*shard
	next   atomic.Uint64
	wg     sync.WaitGroup
	quit   chan struct{}
	lsn    atomic.Int64
	batch  int64 // writeBatch in nanoseconds (tests set 0: no batching)
}

func newFanout(srv *Server, n int) *fanout {
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 8)
	}
	f := &fanout{srv: srv, quit: make(chan struct{}), batch: int64(writeBatch)}
	for range n {
		f.shards = append(f.shards, &shard{fan: f, kick: make(chan struct{}, 1)})
	}
	return f
}

func (f *fanout) start() {
	for _, sh := range f.shards {
		f.wg.Add(1)
		go sh.run()
	}
}

func (f *fanout) stop() {
	close(f.quit)
	f.wg.Wait()
}

// kick wakes every shard; it never blocks or allocates.
func (f *fanout) kick() {
	for _, sh := range f.shards {
		select {
		case sh.kick <- struct{}{}:
		default:
		}
	}
}

func (f *fanout) kickOne(*listener) { f.kick() }

// attach hands a listener to the least recently chosen shard.
func (f *fanout) attach(l *listener) {
	sh := f.shards[f.next.Add(1)%uint64(len(f.shards))]
	sh.mu.Lock()
	sh.add = append(sh.add, l)
	sh.mu.Unlock()
	f.lsn.Add(1)
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// each calls fn for every listener (registered or pending); fn must only
// touch atomic fields.
func (f *fanout) each(fn func(*listener)) {
	for _, sh := range f.shards {
		sh.mu.Lock()
		for _, l := range sh.ls {
			fn(l)
		}
		for _, l := range sh.add {
			fn(l)
		}
		sh.mu.Unlock()
	}
}

func (sh *shard) run() {
	defer sh.fan.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		// The tick retries full sockets and applies scheduled closes; a
		// shard without listeners waits for a kick only, so an idle relay
		// does not wake up ten times a second per shard.
		var tick <-chan time.Time
		if len(sh.ls) > 0 {
			tick = t.C
		}
		select {
		case <-sh.fan.quit:
			sh.closeAll()
			return
		case <-sh.kick:
		case <-tick:
		}
		start := time.Now().UnixNano()
		sh.pass(start)
		sh.passNanos.Store(time.Now().UnixNano() - start)
	}
}

func (sh *shard) closeAll() {
	sh.mu.Lock()
	all := append(sh.ls, sh.add...)
	sh.ls, sh.add = nil, nil
	sh.mu.Unlock()
	for _, l := range all {
		sh.fan.finish(l, "shutdown")
	}
}

// pass services every listener once.
func (sh *shard) pass(now int64) {
	sh.mu.Lock()
	if len(sh.add) > 0 {
		sh.ls = append(sh.ls, sh.add...)
		clear(sh.add)
		sh.add = sh.add[:0]
	}
	sh.mu.Unlock()
	for i := 0; i < len(sh.ls); {
		l := sh.ls[i]
		if reason := sh.service(l, now); reason != "" {
			sh.mu.Lock()
			last := len(sh.ls) - 1
			sh.ls[i] = sh.ls[last]
			sh.ls[last] = nil
			sh.ls = sh.ls[:last]
			sh.mu.Unlock()
			sh.fan.finish(l, reason)
			continue
		}
		i++
	}
}

// service writes what listener l can take now. It returns a non-empty reason
// when l must be closed. It allocates nothing.
func (sh *shard) service(l *listener, now int64) string {
	if l.kill.Load() {
		return "replaced"
	}
	if c := l.closeAt.Load(); c != 0 && now >= c {
		return "closed"
	}
	if l.limitAt != 0 && now >= l.limitAt {
		return "time limit"
	}
	if to := l.moveTo.Load(); to != nil && int(l.preOff) == len(l.pre) && l.metaOff == len(l.metaBlk) {
		sh.move(l, to)
	}
	cfg := &sh.fan.srv.cfg
	r := l.m.ring
	head := r.head.Load()
	if int(l.preOff) == len(l.pre) && l.metaOff == len(l.metaBlk) {
		if l.cursor >= head {
			l.lastProgress = now
			return ""
		}
		// Batch the sends of a listener that keeps up (see writeBatch).
		if head-l.cursor < batchSlots && now-r.at(l.cursor).at < sh.fan.batch {
			return ""
		}
	}
	if head-l.cursor > uint64(cfg.QueueSize/slotCap) && l.metaOff == len(l.metaBlk) {
		if now-l.skipWin > int64(time.Minute) {
			l.skipWin, l.skipCount = now, 0
		}
		l.skipCount++
		l.m.skips.Add(1)
		if int(l.skipCount) > cfg.MaxSkips {
			l.m.drops.Add(1)
			return "too slow"
		}
		l.cursor, l.off = r.startFor(l.m.cfg.Load().burst(cfg)), 0
	}
	sh.build(l, head)
	if sh.k == 0 {
		return ""
	}
	// A full socket (EAGAIN) is retried on the next pass: never park.
	n, err := sh.wio.writev(uintptr(l.fd), sh.bufs[:sh.k])
	if err != nil && !errors.Is(err, syscall.EAGAIN) {
		return "write: " + err.Error()
	}
	if n > 0 {
		sh.advance(l, n)
		l.lastProgress = now
		if sh.audio && !r.valid(sh.first) { // lapped during the write: data may be torn
			l.m.drops.Add(1)
			return "lapped"
		}
	} else if now-l.lastProgress > int64(cfg.WriteTimeout) {
		l.m.drops.Add(1)
		return "write timeout"
	}
	return ""
}

func (sh *shard) push(kind segKind, seq uint64, b []byte) {
	if kind == segAudio && !sh.audio {
		sh.audio, sh.first = true, seq
	}
	sh.segs[sh.k] = seg{kind: kind, seq: seq, blk: b, n: len(b)}
	sh.bufs[sh.k] = b
	sh.k++
}

// build fills bufs/segs from l's position up to head without changing l.
// The Ogg header pages at the end of pre are audio to the listener: they
// count against the metadata interval like ring data does.
func (sh *shard) build(l *listener, head uint64) {
	sh.k, sh.audio = 0, false
	if l.preOff < l.preHead {
		sh.push(segPre, 0, l.pre[l.preOff:l.preHead])
	}
	until := l.until
	if l.metaOff < len(l.metaBlk) {
		sh.push(segMeta, 0, l.metaBlk[l.metaOff:])
		sh.segs[sh.k-1].cont, sh.segs[sh.k-1].ver = true, l.metaVer
		until = l.metaint
	}
	sent := l.sentVer
	if l.metaOff < len(l.metaBlk) && l.metaVer != 0 {
		sent = l.metaVer
	}
	hdr := l.pre[max(l.preOff, l.preHead):]
	r := l.m.ring
	s, off := l.cursor, l.off
	for sh.k < maxIov-1 {
		var b []byte
		kind := segPreAudio
		if len(hdr) > 0 {
			b = hdr
		} else {
			if s >= head {
				break
			}
			sl := r.at(s)
			if off >= sl.n {
				s, off = s+1, 0
				continue
			}
			b, kind = sl.buf[off:sl.n], segAudio
		}
		if l.metaint > 0 && until == 0 {
			blk, ver := zeroMeta, uint32(0)
			if ms := l.m.meta.Load(); ms.ver != sent {
				blk, ver, sent = ms.block, ms.ver, ms.ver
			}
			sh.push(segMeta, 0, blk)
			sh.segs[sh.k-1].ver = ver
			until = l.metaint
			continue
		}
		take := len(b)
		if l.metaint > 0 {
			take = min(take, until)
			until -= take
		}
		sh.push(kind, s, b[:take])
		if kind == segPreAudio {
			hdr = hdr[take:]
		} else {
			off += take
		}
	}
}

// advance moves l past n written bytes.
func (sh *shard) advance(l *listener, n int) {
	l.bytes += uint64(n)
	for i := 0; i < sh.k && n > 0; i++ {
		sg := &sh.segs[i]
		c := min(n, sg.n)
		n -= c
		switch sg.kind {
		case segPre, segPreAudio:
			l.preOff += int32(c)
			if sg.kind == segPreAudio && l.metaint > 0 {
				l.until -= c
			}
			if int(l.preOff) == len(l.pre) {
				l.pre, l.preOff, l.preHead = nil, 0, 0
			}
		case segMeta:
			if !sg.cont { // a new block starts
				l.metaBlk, l.metaOff, l.metaVer = sg.blk, 0, sg.ver
			}
			l.metaOff += c
			if l.metaOff == len(l.metaBlk) {
				l.until = l.metaint
				if l.metaVer != 0 {
					l.sentVer = l.metaVer
				}
			}
		case segAudio:
			l.off += c
			if l.metaint > 0 {
				l.until -= c
			}
			if l.off == l.m.ring.at(sg.seq).n {
				l.cursor, l.off = sg.seq+1, 0
			}
		}
	}
}

// move hands l over to mount to at that mount's live edge (Icecast's
// moveclients). It runs between two writes, with no metadata block or
// response head half sent, so the ICY interval simply continues.
func (sh *shard) move(l *listener, to *mount) {
	l.moveTo.Store(nil)
	from := l.m
	if to == from {
		return
	}
	from.listeners.Add(-1)
	from.unregister(l)
	sh.mu.Lock()
	l.m = to
	sh.mu.Unlock()
	to.addListener()
	to.register(l)
	l.cursor, l.off = to.ring.startFor(0), 0
	l.sentVer = 0 // the new mount's title goes out at the next metadata point
	if h := to.oggHdr.Load(); h != nil && codec(to.codec.Load()) == codecOgg {
		l.pre, l.preOff, l.preHead = h.pages, 0, 0
	}
}

// finish closes a listener and reports its session.
func (f *fanout) finish(l *listener, reason string) {
	_ = syscall.Close(int(l.fd))
	f.lsn.Add(-1)
	l.m.listeners.Add(-1)
	l.m.unregister(l)
	f.srv.listenerGone(l, reason)
}
