package balancer

// undefAvg is OSCam's UNDEF_AVG: the average of an entry without samples.
const undefAvg = 99999

// ringSize is the number of FOUND times kept per entry.
const ringSize = 10

// statKey is OSCam's stat key K. ecmlen 0 is a wildcard (see match).
type statKey struct {
	caid, srvid, chid, ecmlen uint16
	prid                      uint32
}

// statEntry is one reader's statistics for one key.
type statEntry struct {
	key     statKey
	rc      Result
	ringIdx int8
	inUse   bool
	count   int32
	avg     int32
	fail    int32
	last    Time
	ring    [ringSize]uint16
	// prev and next link entries by last update, oldest first.
	prev, next int32
}

// statTable is a reader's fixed-capacity stats store: entries in a
// preallocated array, a hash index on (caid, prid, srvid, chid) and a
// list ordered by last update. When the table is full, the least recently
// updated entry is evicted (counted in evictions); cleanup by age walks
// the same list from the old end, so both cost O(1) per entry removed.
type statTable struct {
	entries    []statEntry
	index      hashIndex
	head, tail int32 // oldest, newest; -1 = empty
	free       int32 // free list through next
	n          int
	evictions  uint64
}

func newStatTable(capacity int) statTable {
	t := statTable{entries: make([]statEntry, capacity), index: newHashIndex(capacity), head: -1, tail: -1}
	for i := range t.entries {
		t.entries[i].next = int32(i + 1)
	}
	t.entries[capacity-1].next = -1
	return t
}

func (k statKey) hash() uint64 {
	return mix64(uint64(k.caid)<<48|uint64(k.srvid)<<32|uint64(k.prid)) ^ mix64(uint64(k.chid)+0x9e3779b97f4a7c15)
}

type statMatcher struct {
	t *statTable
	k statKey
}

// match implements OSCam's ecmlen compatibility: equal, stored 0, or
// queried 0.
func (m statMatcher) match(ref int32) bool {
	e := &m.t.entries[ref]
	return e.key.caid == m.k.caid && e.key.prid == m.k.prid && e.key.srvid == m.k.srvid &&
		e.key.chid == m.k.chid && (e.key.ecmlen == m.k.ecmlen || e.key.ecmlen == 0 || m.k.ecmlen == 0)
}

// get returns the entry for k or -1. A stored ecmlen of 0 adopts k's.
func (t *statTable) get(k statKey) int32 {
	i := findIn(&t.index, k.hash(), statMatcher{t, k})
	if i >= 0 && t.entries[i].key.ecmlen == 0 {
		t.entries[i].key.ecmlen = k.ecmlen
	}
	return i
}

// create adds a fresh entry for k (OSCam §2.4), evicting the least
// recently updated entry when the table is full.
func (t *statTable) create(k statKey, now Time) int32 {
	if t.free < 0 {
		t.remove(t.head)
		t.evictions++
	}
	i := t.free
	e := &t.entries[i]
	t.free = e.next
	*e = statEntry{key: k, rc: Found, avg: undefAvg, last: now, inUse: true, prev: t.tail, next: -1}
	t.linkTail(i)
	t.index.insert(k.hash(), i)
	t.n++
	return i
}

func (t *statTable) linkTail(i int32) {
	e := &t.entries[i]
	e.prev, e.next = t.tail, -1
	if t.tail >= 0 {
		t.entries[t.tail].next = i
	} else {
		t.head = i
	}
	t.tail = i
}

func (t *statTable) unlink(i int32) {
	e := &t.entries[i]
	if e.prev >= 0 {
		t.entries[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.entries[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
}

// touch sets last = now and moves the entry to the new end.
func (t *statTable) touch(i int32, now Time) {
	t.entries[i].last = now
	if t.tail != i {
		t.unlink(i)
		t.linkTail(i)
	}
}

// remove deletes entry i.
func (t *statTable) remove(i int32) {
	e := &t.entries[i]
	t.index.remove(e.key.hash(), i)
	t.unlink(i)
	e.inUse = false
	e.next = t.free
	t.free = i
	t.n--
}

// cleanup deletes entries last updated before cutoff and returns how many.
func (t *statTable) cleanup(cutoff Time) int {
	n := 0
	for t.head >= 0 && t.entries[t.head].last < cutoff {
		t.remove(t.head)
		n++
	}
	return n
}

// insertLoaded adds an entry read from the stats file. Callers insert
// in order of last update (the loader sorts) so the list stays ordered.
func (t *statTable) insertLoaded(e statEntry) {
	i := t.create(e.key, e.last)
	e.inUse, e.prev, e.next = true, t.entries[i].prev, t.entries[i].next
	t.entries[i] = e
}

// pushTime records a FOUND time in the ring and recomputes the average of
// the non-zero slots (OSCam advances the index before writing).
func (e *statEntry) pushTime(ms int) {
	if ms > 0xFFFF {
		ms = 0xFFFF
	}
	e.ringIdx++
	if e.ringIdx >= ringSize {
		e.ringIdx = 0
	}
	e.ring[e.ringIdx] = uint16(ms)
	sum, n := 0, 0
	for _, v := range e.ring {
		if v != 0 {
			sum += int(v)
			n++
		}
	}
	if n == 0 {
		e.avg = undefAvg
	} else {
		e.avg = int32(sum / n)
	}
}

// resetAvg clears the ring and the average.
func (e *statEntry) resetAvg() {
	e.ring = [ringSize]uint16{}
	e.ringIdx = 0
	e.avg = undefAvg
}
