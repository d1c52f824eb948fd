package netstream

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestMetaBlockFormat(t *testing.T) {
	b := buildMetaBlock("Daft Punk - One More Time")
	if b[0] != 3 || len(b) != 49 || !bytes.HasPrefix(b[1:], []byte("StreamTitle='Daft Punk - One More Time';")) {
		t.Fatalf("block %q", b)
	}
	long := buildMetaBlock(string(bytes.Repeat([]byte("x"), 5000)))
	if len(long) != 1+255*16 {
		t.Fatalf("long block %d bytes", len(long))
	}
}

func TestICYStripperRemovesMetadata(t *testing.T) {
	audio := make([]byte, 50000)
	for i := range audio {
		audio[i] = byte(i*7 + 1)
	}
	var stream []byte
	titles := []string{"one", "two 'quoted'", "three"}
	for i := 0; i*1000 < len(audio); i++ {
		stream = append(stream, audio[i*1000:min(len(audio), (i+1)*1000)]...)
		if (i+1)*1000 < len(audio) || true {
			if i%15 == 0 && i/15 < len(titles) {
				stream = append(stream, buildMetaBlock(titles[i/15])...)
			} else {
				stream = append(stream, 0)
			}
		}
	}
	var got []string
	s := newICYStripper(1000, func(t string) { got = append(got, t) })
	var out []byte
	for len(stream) > 0 {
		n := min(len(stream), 1+rand.IntN(3000))
		chunk := append([]byte(nil), stream[:n]...)
		k := s.strip(chunk)
		out = append(out, chunk[:k]...)
		stream = stream[n:]
	}
	if !bytes.Equal(out, audio) {
		t.Fatalf("audio differs: %d vs %d bytes", len(out), len(audio))
	}
	if len(got) != 3 || got[1] != "two 'quoted'" {
		t.Fatalf("titles %q", got)
	}
}

// TestICYInsertionProperty drives the writer shard's build/advance with
// random metaint values, slot sizes, partial writes and title changes, and
// checks with the reference parser that a client reconstructs exactly the
// audio bytes and the title sequence.
func TestICYInsertionProperty(t *testing.T) {
	for round := range 30 {
		rng := rand.New(rand.NewPCG(uint64(round), 9))
		srv := &Server{}
		cfg := testConfig()
		srv.cfgp.Store(&cfg)
		srv.fan = newFanout(srv, 1)
		m := &mount{srv: srv, ring: newRing(1 << 20)}
		m.setTitle("first")
		metaint := 1 + rng.IntN(5000)
		// Odd rounds replay "Ogg header pages" after the head: audio that
		// counts against the interval like ring data.
		hdr := make([]byte, (round%2)*(1+rng.IntN(9000)))
		for i := range hdr {
			hdr[i] = byte(rng.Uint32())
		}
		pre := append([]byte("HEAD\r\n\r\n"), hdr...)
		l := &listener{m: m, metaint: metaint, until: metaint, pre: pre, preHead: int32(len("HEAD\r\n\r\n"))}
		sh := srv.fan.shards[0]
		audio := append([]byte(nil), hdr...)
		var wire []byte
		set := []string{"first"}
		for step := range 300 {
			if rng.IntN(4) == 0 { // publish a slot of random size
				n := 1 + rng.IntN(slotCap)
				sl := m.ring.at(m.ring.head.Load())
				for i := range n {
					sl.buf[i] = byte(rng.Uint32())
				}
				audio = append(audio, sl.buf[:n]...)
				m.ring.publish(n, true)
			}
			if rng.IntN(40) == 0 {
				title := "title " + string(rune('a'+step%26))
				if title != m.meta.Load().title {
					set = append(set, title)
				}
				m.setTitle(title)
			}
			sh.build(l, m.ring.head.Load())
			var all []byte
			for _, b := range sh.bufs[:sh.k] {
				all = append(all, b...)
			}
			n := len(all)
			if n > 0 && rng.IntN(2) == 0 {
				n = rng.IntN(n + 1) // partial write
			}
			wire = append(wire, all[:n]...)
			sh.advance(l, n)
		}
		// Drain what is left.
		for range 1000 {
			sh.build(l, m.ring.head.Load())
			if sh.k == 0 {
				break
			}
			var all []byte
			for _, b := range sh.bufs[:sh.k] {
				all = append(all, b...)
			}
			wire = append(wire, all...)
			sh.advance(l, len(all))
		}
		body, ok := bytes.CutPrefix(wire, []byte("HEAD\r\n\r\n"))
		if !ok {
			t.Fatal("response head missing")
		}
		gotAudio, gotTitles, err := readICY(body, metaint)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotAudio, audio) {
			t.Fatalf("round %d metaint %d: audio differs (%d vs %d bytes)", round, metaint, len(gotAudio), len(audio))
		}
		// The titles seen must follow the order they were set in.
		j := 0
		for _, tt := range gotTitles {
			for j < len(set) && set[j] != tt {
				j++
			}
			if j == len(set) {
				t.Fatalf("round %d: title %q out of order; set %q got %q", round, tt, set, gotTitles)
			}
		}
		for i := 1; i < len(gotTitles); i++ {
			if gotTitles[i] == gotTitles[i-1] {
				t.Fatalf("round %d: title %q sent twice in a row", round, gotTitles[i])
			}
		}
	}
}

func FuzzICYStripper(f *testing.F) {
	f.Add(16, []byte("0123456789abcdef\x01StreamTitle='x';\x00\x00\x00\x000123"))
	f.Add(1, []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, metaint int, in []byte) {
		if metaint <= 0 || metaint > 1<<16 {
			return
		}
		s := newICYStripper(metaint, func(string) {})
		n := s.strip(append([]byte(nil), in...))
		if n > len(in) {
			t.Fatalf("%d audio bytes from %d", n, len(in))
		}
	})
}

func FuzzParseStreamTitle(f *testing.F) {
	f.Add([]byte("StreamTitle='a - b';StreamUrl='x';\x00\x00"))
	f.Add([]byte("StreamTitle='unterminated"))
	f.Fuzz(func(t *testing.T, in []byte) {
		title, err := parseStreamTitle(in)
		if err == nil && len(title) > len(in) {
			t.Fatal("title longer than input")
		}
	})
}
