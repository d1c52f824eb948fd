package balancer

// cwCache is the CW cache: a fixed ring of entries indexed by (caid, ECM
// digest). Entries expire cache_max_time after their last update; when
// the ring is full the oldest entry is overwritten (counted as a cache
// eviction if it had not expired). Unlike OSCam, which keeps up to 10 CWs
// per ECM, an entry keeps the latest CW found.
type cwCache struct {
	entries []cacheEntry
	index   hashIndex
	next    int32
}

type cacheEntry struct {
	used    bool
	reader  int16
	caid    uint16
	groups  Groups
	hash    uint64
	md5     [16]byte
	cw      [16]byte
	updated Time
}

func newCWCache(n int) cwCache {
	return cwCache{entries: make([]cacheEntry, n), index: newHashIndex(n)}
}

type cacheMatcher struct {
	c    *cwCache
	caid uint16
	sum  [16]byte
}

func (m cacheMatcher) match(ref int32) bool {
	e := &m.c.entries[ref]
	return e.caid == m.caid && e.md5 == m.sum
}

// lookup returns a live CW for the ECM if the client's groups overlap the
// producing reader's (0 = every group).
func (c *cwCache) lookup(h uint64, caid uint16, sum *[16]byte, groups Groups, now Time, maxAge int64) ([16]byte, int, bool) {
	i := findIn(&c.index, h, cacheMatcher{c, caid, *sum})
	if i < 0 {
		return [16]byte{}, -1, false
	}
	e := &c.entries[i]
	if int64(now-e.updated) > maxAge || groups != 0 && e.groups&groups == 0 {
		return [16]byte{}, -1, false
	}
	return e.cw, int(e.reader), true
}

// insert adds or refreshes the CW of an ECM and returns 1 if a live entry
// was evicted to make room. A refresh stores the new CW: an expired entry
// re-solved by a reader must not serve its old CW with a fresh age.
func (c *cwCache) insert(h uint64, caid uint16, sum *[16]byte, cw [16]byte, groups Groups, reader int16, now Time, maxAge int64) uint64 {
	if i := findIn(&c.index, h, cacheMatcher{c, caid, *sum}); i >= 0 {
		e := &c.entries[i]
		if int64(now-e.updated) > maxAge {
			e.groups = 0 // expired: the old producers no longer vouch for it
		}
		e.cw, e.reader, e.updated = cw, reader, now
		e.groups |= groups
		return 0
	}
	i := c.next
	c.next = (c.next + 1) % int32(len(c.entries))
	e := &c.entries[i]
	evicted := uint64(0)
	if e.used {
		c.index.remove(e.hash, i)
		evicted = 1
	}
	*e = cacheEntry{used: true, reader: reader, caid: caid, groups: groups, hash: h, md5: *sum, cw: cw, updated: now}
	c.index.insert(h, i)
	return evicted
}
