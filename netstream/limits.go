package netstream

import (
	"math"
	"runtime/debug"
	"sync"
	"time"
)

// lru is a map with a fixed capacity that evicts its least recently used
// entry to make room, so a peer feeding it distinct keys pushes out old
// entries instead of growing it or clearing it. It is not safe for
// concurrent use; its owner locks.
type lru[K comparable, V any] struct {
	cap   int
	items map[K]*lruNode[K, V]
	head  lruNode[K, V] // sentinel: head.next is the most recent entry
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	l := &lru[K, V]{cap: max(capacity, 1), items: map[K]*lruNode[K, V]{}}
	l.head.prev, l.head.next = &l.head, &l.head
	return l
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *lru[K, V]) front(n *lruNode[K, V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// get returns the value of k and marks it as recently used.
func (l *lru[K, V]) get(k K) (V, bool) {
	n := l.items[k]
	if n == nil {
		var zero V
		return zero, false
	}
	l.unlink(n)
	l.front(n)
	return n.val, true
}

// put stores v under k, evicting the least recently used entry when full.
// It reports whether an entry was evicted.
func (l *lru[K, V]) put(k K, v V) (evicted bool) {
	if n := l.items[k]; n != nil {
		n.val = v
		l.unlink(n)
		l.front(n)
		return false
	}
	if len(l.items) >= l.cap {
		old := l.head.prev
		l.unlink(old)
		delete(l.items, old.key)
		evicted = true
	}
	n := &lruNode[K, V]{key: k, val: v}
	l.items[k] = n
	l.front(n)
	return evicted
}

func (l *lru[K, V]) remove(k K) {
	if n := l.items[k]; n != nil {
		l.unlink(n)
		delete(l.items, k)
	}
}

func (l *lru[K, V]) len() int { return len(l.items) }

// peerGate throttles password checks per client address: after `limit`
// failures within `window` the address is locked out for `lockout`, and
// the lockout is checked before the password is compared, so a locked peer
// costs no comparison and learns nothing. Its table is capped (LRU), so a
// flood of addresses evicts old entries instead of clearing the lockouts.
// Limit and lockout come from the live configuration at each failure.
type peerGate struct {
	mu     sync.Mutex
	window time.Duration
	peers  *lru[string, *peerFails]
}

type peerFails struct {
	n      int
	since  time.Time
	locked time.Time // locked until
}

func newPeerGate(window time.Duration, capacity int) *peerGate {
	return &peerGate{window: window, peers: newLRU[string, *peerFails](capacity)}
}

// allowed reports whether addr may try a password now and, if not, when it
// may try again.
func (g *peerGate) allowed(addr string, now time.Time) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.peers.get(addr)
	if !ok || !now.Before(p.locked) {
		return true, 0
	}
	return false, p.locked.Sub(now)
}

// failed counts a wrong password from addr; the limit-th failure within
// the window locks addr out for lockout.
func (g *peerGate) failed(addr string, now time.Time, limit int, lockout time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.peers.get(addr)
	if !ok {
		p = &peerFails{since: now}
		g.peers.put(addr, p)
	}
	if now.Sub(p.since) > g.window {
		p.n, p.since = 0, now
	}
	p.n++
	if p.n >= max(limit, 1) {
		p.locked, p.n, p.since = now.Add(lockout), 0, now
	}
}

// succeeded forgets addr's failures.
func (g *peerGate) succeeded(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.peers.remove(addr)
}

// addrBuckets is a token bucket per client address in a capped table.
type addrBuckets struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration // one token per every
	buckets *lru[string, *bucketState]
}

type bucketState struct {
	tokens float64
	last   time.Time
}

func newAddrBuckets(burst int, every time.Duration, capacity int) *addrBuckets {
	return &addrBuckets{burst: float64(max(burst, 1)), every: every, buckets: newLRU[string, *bucketState](capacity)}
}

// take spends one token of addr's bucket; it reports false when the bucket
// is empty.
func (b *addrBuckets) take(addr string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.buckets.get(addr)
	if !ok {
		st = &bucketState{tokens: b.burst, last: now}
		b.buckets.put(addr, st)
	}
	if b.every > 0 {
		st.tokens = min(b.burst, st.tokens+float64(now.Sub(st.last))/float64(b.every))
	}
	st.last = now
	if st.tokens < 1 {
		return false
	}
	st.tokens--
	return true
}

// memoryBudget returns the bytes the relay's admission state (decision
// cache, verify queue, pending checks, peer tables) may use: an eighth of
// the Go runtime's soft memory limit (global.memory_limit or GOMEMLIMIT),
// or 8 MiB when no limit is set.
func memoryBudget() int64 {
	lim := debug.SetMemoryLimit(-1)
	if lim <= 0 || lim == math.MaxInt64 {
		return 8 << 20
	}
	return lim / 8
}

// Approximate heap cost of one entry of each admission table, measured
// with TestAdmissionEntryCosts; used to size the tables from memoryBudget.
const (
	costCacheEntry  = 256 // key (32 B hash), lruNode, cacheEntry, map slot
	costVerifyEntry = 64  // verifyItem and its queue slot (the session exists anyway)
	costFlight      = 4096
)

// costHandshake is what a connection reading its request head holds: its
// goroutine's stack, a pooled head buffer and, past the fast path, a
// bufio.Reader and the parsed request.
const costHandshake = 24 << 10

// sizeHandshakes returns the default cap of connections in the request
// phase: as many as the budget holds, between 256 and 1024 (256 at the
// default 48 MiB limit). A storm's connections beyond it wait in the
// kernel's accept queue.
func sizeHandshakes(budget int64) int64 {
	return min(1024, max(256, budget/costHandshake))
}

// admissionSizes are the capacities of a mount's admission tables.
type admissionSizes struct {
	cache   int // decision cache entries
	verify  int // provisional listeners awaiting a backend decision
	pending int // checks waiting for a handler
}

// sizeAdmission splits the memory budget between the tables: half for the
// decision cache, a quarter for the verify queue, a quarter for pending
// checks (each holds a goroutine and its request while it waits), never
// above the configured pending limit.
func sizeAdmission(budget int64, pending int) admissionSizes {
	return admissionSizes{
		cache:   int(max(1024, budget/2/costCacheEntry)),
		verify:  int(max(256, budget/4/costVerifyEntry)),
		pending: int(min(int64(pending), max(16, budget/4/costFlight))),
	}
}
