package netstream

import (
	"testing"
	"time"
	"unsafe"
)

// TestWriteBatch checks that a listener keeping up is written only once its
// oldest unsent chunk is write-batch old or batchSlots chunks are pending,
// and then gets every pending chunk in one write.
func TestWriteBatch(t *testing.T) {
	s, m := newTestMount(t)
	s.cfg.WriteBatch = Duration(time.Second)
	l := &listener{m: m, fd: dialDetached(t, discardServer(t)), lastProgress: time.Now().UnixNano()}
	sh := s.fan.shards[0]
	tests := []struct {
		name    string
		publish int   // chunks published before the step
		after   int64 // step time after the oldest unsent chunk was published
		bytes   uint64
	}{
		{"younger than write-batch", batchSlots - 1, int64(time.Second) - 1, 0},
		{"write-batch old: all pending at once", 0, int64(time.Second), (batchSlots - 1) * slotCap},
		{"caught up", 0, 2 * int64(time.Second), (batchSlots - 1) * slotCap},
		{"batchSlots pending", batchSlots, 0, (2*batchSlots - 1) * slotCap},
	}
	for _, tc := range tests {
		for range tc.publish {
			m.ring.publish(slotCap, true)
		}
		oldest := m.ring.at(min(l.cursor, m.ring.head.Load()-1)).at
		if why := sh.service(l, oldest+tc.after); why != "" {
			t.Fatalf("%s: dropped: %s", tc.name, why)
		}
		if l.bytes != tc.bytes {
			t.Fatalf("%s: %d bytes sent, want %d", tc.name, l.bytes, tc.bytes)
		}
	}
	if want := uint64(2*batchSlots - 1); l.cursor != want {
		t.Fatalf("cursor %d, want %d", l.cursor, want)
	}
}

// TestListenerSize guards the per-listener memory: a streaming listener is
// this struct (one size class) and its socket, nothing else.
func TestListenerSize(t *testing.T) {
	if n := unsafe.Sizeof(listener{}); n > 192 {
		t.Fatalf("listener is %d bytes, want at most 192", n)
	}
}
