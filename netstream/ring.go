package netstream

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// slotCap is the capacity of one ring slot: 0.25 s at 128 kbit/s.
const slotCap = 4096

// slot is one published chunk of the ring. sync is true when the chunk starts
// on a frame boundary (a frame larger than a slot spans several slots).
type slot struct {
	seq  atomic.Uint64 // sequence number + 1 of the data held; 0 = never written
	n    int
	at   int64 // unix nanos of the publication
	sync bool
	buf  []byte // sub-slice of the ring's backing array, capacity slotCap
}

// ring is the fixed per-mount buffer shared by all listeners of the mount. It
// is allocated once; publishing a chunk allocates nothing. A single writer
// (the mount, under its mutex) fills slot head, then publishes it by storing
// its seq and advancing head; readers only touch slots below head.
type ring struct {
	slots   []slot
	mask    uint64
	head    atomic.Uint64 // next sequence number to publish
	backing []byte
}

func newRing(bytes int) *ring {
	n := 1
	for n*slotCap < bytes {
		n <<= 1
	}
	r := &ring{slots: make([]slot, n), mask: uint64(n - 1)}
	var mapped bool
	r.backing, mapped = allocBacking(n * slotCap)
	if mapped {
		runtime.AddCleanup(r, func(b []byte) { _ = unix.Munmap(b) }, r.backing)
	}
	for i := range r.slots {
		r.slots[i].buf = r.backing[i*slotCap : (i+1)*slotCap : (i+1)*slotCap]
		// Commit the page now: the ring's memory is fixed by configuration
		// from the start instead of creeping up as the ring first fills.
		r.slots[i].buf[0] = 0
	}
	return r
}

// allocBacking returns the ring's zeroed audio memory, mapped outside the
// Go heap when possible. The ring is the largest and longest-lived object
// of the relay and holds no pointers: on the heap it would also raise the
// garbage collector's heap goal (GOGC headroom) by its own size, doubling
// its cost in RSS. mapped says the caller must unmap it (newRing does when
// the ring becomes unreachable, i.e. no mount or listener refers to it).
func allocBacking(size int) (b []byte, mapped bool) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size), false
	}
	return b, true
}

// at returns the slot that holds (or will hold) sequence s.
func (r *ring) at(s uint64) *slot { return &r.slots[s&r.mask] }

// valid reports whether sequence s is still held by the ring.
func (r *ring) valid(s uint64) bool { return r.at(s).seq.Load() == s+1 }

// publish makes the slot at head visible with n bytes.
func (r *ring) publish(n int, sync bool) {
	h := r.head.Load()
	sl := r.at(h)
	sl.n, sl.sync, sl.at = n, sync, time.Now().UnixNano()
	sl.seq.Store(h + 1)
	r.head.Store(h + 1)
}

// startFor returns the sequence a listener starting with about burst bytes of
// history should begin at: a frame-aligned slot at or after head minus the
// burst, never older than the ring holds.
func (r *ring) startFor(burst int) uint64 {
	h := r.head.Load()
	s, got := h, 0
	for s > 0 && h-s < uint64(len(r.slots))-8 && got < burst {
		if !r.valid(s - 1) {
			break
		}
		s--
		got += r.at(s).n
	}
	for s < h && !r.at(s).sync {
		s++
	}
	return s
}
