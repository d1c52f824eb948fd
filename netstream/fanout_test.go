package netstream

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestWriteBatch checks that a listener keeping up is written only once its
// oldest unsent chunk is write-batch old or batchSlots chunks are pending,
// and then gets every pending chunk in one write.
func TestWriteBatch(t *testing.T) {
	s, m := newTestMount(t)
	s.fan.batch = int64(time.Second)
	l := &listener{m: m, fd: int32(dialDetached(t, discardServer(t))), lastProgress: time.Now().UnixNano()}
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

// TestHeadVariants checks that listener response heads are built once per
// change of the announced stream values, not per connection.
func TestHeadVariants(t *testing.T) {
	_, m, _, _ := fedMount(t)
	m.info.Store(&streamInfo{name: "first\r\nX-Injected: 1"})
	plain, meta := m.head(0), m.head(16000)
	if !strings.Contains(string(plain), "icy-name: first  X-Injected: 1\r\n") || strings.Contains(string(plain), "icy-metaint:") {
		t.Fatalf("head without metadata:\n%s", plain)
	}
	if !strings.Contains(string(meta), "icy-metaint: 16000\r\n") {
		t.Fatalf("head with metadata:\n%s", meta)
	}
	if a := testing.AllocsPerRun(100, func() { m.head(0); m.head(16000) }); a != 0 {
		t.Fatalf("unchanged head rebuilt: %v allocs", a)
	}
	m.info.Store(&streamInfo{name: "second"})
	if h := string(m.head(0)); !strings.Contains(h, "icy-name: second\r\n") {
		t.Fatalf("head after a stream info change:\n%s", h)
	}
}
