package balancer

// hashIndex is a fixed-size open-addressing hash index (linear probing,
// backward-shift deletion) from a 64-bit hash to an int32 reference. It
// stores no keys: callers walk the candidates with the same hash and
// compare their own records, so lookups cost O(1) whatever the table
// size and never allocate.
type hashIndex struct {
	mask  uint32
	slots []indexSlot
}

type indexSlot struct {
	hash uint64
	ref  int32 // record index + 1; 0 = empty
}

// newHashIndex sizes the index for capacity records at <= 50% load.
func newHashIndex(capacity int) hashIndex {
	n := 2
	for n < 2*capacity {
		n <<= 1
	}
	return hashIndex{mask: uint32(n - 1), slots: make([]indexSlot, n)}
}

func (x *hashIndex) home(h uint64) uint32 { return uint32(h^h>>32) & x.mask }

// next returns the position after pos in probe order.
func (x *hashIndex) next(pos uint32) uint32 { return (pos + 1) & x.mask }

// find returns the first record with hash h at or after pos for which
// match is true, walking until an empty slot. It returns -1 if none.
// Callers pass a concrete matcher, so no closure is allocated.
func findIn[M interface{ match(ref int32) bool }](x *hashIndex, h uint64, m M) int32 {
	for pos := x.home(h); ; pos = x.next(pos) {
		s := x.slots[pos]
		if s.ref == 0 {
			return -1
		}
		if s.hash == h && m.match(s.ref-1) {
			return s.ref - 1
		}
	}
}

// insert adds ref under hash h. The caller guarantees free capacity.
func (x *hashIndex) insert(h uint64, ref int32) {
	pos := x.home(h)
	for x.slots[pos].ref != 0 {
		pos = x.next(pos)
	}
	x.slots[pos] = indexSlot{hash: h, ref: ref + 1}
}

// remove deletes ref stored under hash h, shifting later probes back so
// that no tombstones are needed.
func (x *hashIndex) remove(h uint64, ref int32) {
	pos := x.home(h)
	for x.slots[pos].ref != ref+1 {
		if x.slots[pos].ref == 0 {
			return
		}
		pos = x.next(pos)
	}
	i := pos
	for j := x.next(i); x.slots[j].ref != 0; j = x.next(j) {
		k := x.home(x.slots[j].hash)
		// Move slot j into the hole at i if its home is not in (i, j].
		if (j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j)) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = indexSlot{}
}

// mix64 is a fast 64-bit finaliser (splitmix64) for building hashes.
func mix64(v uint64) uint64 {
	v ^= v >> 30
	v *= 0xbf58476d1ce4e5b9
	v ^= v >> 27
	v *= 0x94d049bb133111eb
	v ^= v >> 31
	return v
}
