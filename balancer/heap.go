package balancer

// deadlineHeap is an indexed binary min-heap of in-flight ECM indices
// keyed by their next deadline. Each ECM is in the heap at most once, so
// the capacity is fixed at max_inflight and no timer is created per ECM.
type deadlineHeap struct {
	items []int32 // in-flight indices
	key   []Time  // by in-flight index
	pos   []int32 // by in-flight index; -1 = not in heap
}

func newDeadlineHeap(n int) deadlineHeap {
	h := deadlineHeap{items: make([]int32, 0, n), key: make([]Time, n), pos: make([]int32, n)}
	for i := range h.pos {
		h.pos[i] = -1
	}
	return h
}

// set inserts i or moves it to key k.
func (h *deadlineHeap) set(i int32, k Time) {
	h.key[i] = k
	p := h.pos[i]
	if p < 0 {
		h.items = append(h.items, i)
		p = int32(len(h.items) - 1)
		h.pos[i] = p
	}
	if !h.up(p) {
		h.down(p)
	}
}

// remove deletes i if present.
func (h *deadlineHeap) remove(i int32) {
	p := h.pos[i]
	if p < 0 {
		return
	}
	last := int32(len(h.items) - 1)
	h.swap(p, last)
	h.items = h.items[:last]
	h.pos[i] = -1
	if p < last && !h.up(p) {
		h.down(p)
	}
}

// min returns the index with the earliest deadline.
func (h *deadlineHeap) min() (int32, Time, bool) {
	if len(h.items) == 0 {
		return -1, 0, false
	}
	i := h.items[0]
	return i, h.key[i], true
}

func (h *deadlineHeap) less(a, b int32) bool { return h.key[h.items[a]] < h.key[h.items[b]] }

func (h *deadlineHeap) swap(a, b int32) {
	h.items[a], h.items[b] = h.items[b], h.items[a]
	h.pos[h.items[a]] = a
	h.pos[h.items[b]] = b
}

func (h *deadlineHeap) up(p int32) bool {
	moved := false
	for p > 0 {
		parent := (p - 1) / 2
		if !h.less(p, parent) {
			break
		}
		h.swap(p, parent)
		p = parent
		moved = true
	}
	return moved
}

func (h *deadlineHeap) down(p int32) {
	n := int32(len(h.items))
	for {
		l := 2*p + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, p) {
			return
		}
		h.swap(p, m)
		p = m
	}
}
