package netstream

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLiveEdge drives the live-edge search on a fake clock: arrival times
// are given, so the result does not depend on the machine's speed.
func TestLiveEdge(t *testing.T) {
	const fd = frameDur
	type arrival struct {
		at     time.Duration // since the first frame
		frames int
	}
	// burst: n frames at once, then real time in chunks of chunk frames.
	burst := func(n, chunk int) []arrival {
		a := []arrival{{0, n}}
		for i := 1; i < 60; i++ {
			a = append(a, arrival{time.Duration(i*chunk) * fd, chunk})
		}
		return a
	}
	cases := []struct {
		name      string
		arrivals  []arrival
		firstLive int // index of the first frame released as live
		primed    int
	}{
		{"Icecast burst then frames one by one", burst(150, 1), 150, 2},
		{"burst then 10-frame chunks", burst(150, 10), 150, 2},
		{"no burst", burst(1, 4), 1, 1},
		{"burst over a slow link (3x real time for 1.5 s)", func() []arrival {
			var a []arrival
			for i := 0; i < 60; i++ { // 180 frames in 60 frame durations
				a = append(a, arrival{time.Duration(i) * fd, 3})
			}
			for i := 60; i < 120; i++ {
				a = append(a, arrival{time.Duration(i) * fd, 1})
			}
			return a
		}(), 180, 2},
		{"an upstream that bursts longer than edgeMaxWait is taken as it is", func() []arrival {
			var a []arrival
			for i := 0; i < 200; i++ {
				a = append(a, arrival{time.Duration(i) * fd, 3})
			}
			return a
		}(), 3 * int((edgeMaxWait+fd-1)/fd), 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newLiveEdge()
			e.start()
			t0 := time.Unix(1000, 0)
			n := 0
			for _, a := range c.arrivals {
				for range a.frames {
					f := []byte{byte(n), byte(n >> 8)}
					n++
					done, taken := e.add(t0.Add(a.at), f, frameInfo{dur: fd})
					if !done {
						continue
					}
					if !taken {
						t.Fatal("frame not taken without overflow")
					}
					first := e.held[e.frames[0].off:]
					if got := int(first[0]) | int(first[1])<<8; got != c.firstLive {
						t.Fatalf("first live frame %d, want %d", got, c.firstLive)
					}
					if got := len(e.primers()); got != c.primed {
						t.Fatalf("%d priming frames, want %d", got, c.primed)
					}
					if p := e.primers(); int(p[len(p)-1][0])|int(p[len(p)-1][1])<<8 != c.firstLive-1 {
						t.Fatalf("last primer %v is not the frame before the first live one", p[len(p)-1])
					}
					return
				}
			}
			t.Fatal("live edge never found")
		})
	}
}

// TestMuteMP3 checks that a muted frame keeps its header and main data,
// carries zero side information (with a valid CRC when protected), and
// decodes to silence.
func TestMuteMP3(t *testing.T) {
	f := append([]byte(nil), demoFrames(t)[50]...)
	orig := append([]byte(nil), f...)
	if !muteMP3(f) {
		t.Fatal("demo frame not muted")
	}
	side := 32
	if !bytes.Equal(f[:4], orig[:4]) || !bytes.Equal(f[4+side:], orig[4+side:]) || !bytes.Equal(f[4:4+side], make([]byte, side)) {
		t.Fatal("muting must zero exactly the side information")
	}
	// A CRC-protected copy: the CRC covers header bytes 2-3 and side info.
	p := append([]byte(nil), orig...)
	p[1] &^= 1
	if !muteMP3(p) || crc16(crc16(0xFFFF, p[2:4]), p[6:6+side]) != uint16(p[4])<<8|uint16(p[5]) {
		t.Fatal("CRC not recomputed")
	}
	if muteMP3([]byte{0xFF, 0xF1, 0x50, 0x80, 0, 0, 0}) {
		t.Fatal("an ADTS frame was muted")
	}
}

// TestUpstreamSwitchAtLiveEdge is Done-when 1's switch half: a listener
// stays connected through three upstream switches (failover, switch-back,
// failover) between two upstreams playing the same program. Every frame
// it receives is identified in the program; there must be no repeated
// audio, the media it received between the first and the last program
// frame must match the program time they span within 0.5 s (no latency
// added, nothing lost), and ffmpeg must decode the capture without a
// bit-reservoir error at the splices.
func TestUpstreamSwitchAtLiveEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 12 s of real streaming")
	}
	needFFmpeg(t)
	src := makeAudio(t, t.TempDir(), "noise.mp3", "anoisesrc=d=60:c=pink:a=0.3", "-ar", "44100", "-ac", "2",
		"-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3")
	program := mp3Frames(t, src)
	index := map[string]int{}
	for i, f := range program {
		index[string(f)] = i
	}
	epoch := time.Now().Add(-10 * time.Second)
	primary := newProgramUpstream(t, program, "primary", epoch)
	backup := newProgramUpstream(t, program, "backup", epoch)
	mc := DefaultMount()
	mc.Name = "/relay"
	mc.Upstreams = []string{primary.url("/live"), backup.url("/live")}
	mc.SwitchBack = Duration(300 * time.Millisecond)
	mc.RetryBase = Duration(200 * time.Millisecond)
	s := startServer(t, testConfig(mc))
	s.fan.batch = 0
	m := s.mount("/relay")
	on := func(u *fakeUpstream) func() bool {
		return func() bool {
			m.mu.Lock()
			searching := m.edge.searching()
			m.mu.Unlock()
			d := m.srcDesc.Load()
			return d != nil && d.url == u.url("/live") && !searching && m.fresh(time.Now(), 100*time.Millisecond)
		}
	}
	waitFor(t, 5*time.Second, "primary", on(primary))
	waitBurst(t, m)

	cl := dialListener(t, s.Addr(), "/relay")
	var body []byte
	var wg sync.WaitGroup
	wg.Add(1)
	// Read until the client is closed below, however long the switches take
	// on a loaded machine (readFor's window is only a hang guard here).
	go func() { defer wg.Done(); body = cl.readFor(10 * hangGuard) }()
	time.Sleep(1500 * time.Millisecond)
	pAddr := primary.addr
	primary.stop() // switch 1: failover
	waitFor(t, 5*time.Second, "failover", on(backup))
	time.Sleep(time.Second)
	primary.start(pAddr) // switch 2: back to the preferred upstream
	waitFor(t, 5*time.Second, "switch back", on(primary))
	time.Sleep(time.Second)
	primary.stop() // switch 3: failover again
	waitFor(t, 5*time.Second, "second failover", on(backup))
	time.Sleep(1500 * time.Millisecond)
	cl.conn.Close()
	wg.Wait()

	var got frameCollector
	fr := newFramer(codecMP3)
	fr.write(body, &got)
	first, last, prev := -1, -1, -1
	media := 0           // frames from the first program frame to the last one
	var reservoir []byte // main data the decoder has seen, newest last
	for n, f := range got.frames {
		i, ok := index[string(f)]
		if first >= 0 {
			media++
		}
		if ok && n > 0 {
			// The bit reservoir the frame reaches back into must hold its
			// own program's bytes, not another stream's or silence.
			var want []byte
			for j := max(0, i-3); j < i; j++ {
				want = append(want, mainData(program[j])...)
			}
			// (The first frames of the capture reach back before its start,
			// as any listener's first frames do.)
			if back := mainDataBegin(f); back > 0 && len(reservoir) >= back && !bytes.Equal(reservoir[len(reservoir)-back:], want[len(want)-back:]) {
				t.Fatalf("program frame %d (capture frame %d) reaches %d bytes back into a reservoir of other bytes: a bad splice", i, n, back)
			}
		}
		reservoir = append(reservoir, mainData(f)...)
		if !ok {
			continue // silence or a muted priming frame
		}
		if i <= prev {
			t.Fatalf("program frame %d after %d: repeated audio", i, prev)
		}
		if first < 0 {
			first, media = i, 1
		}
		prev, last = i, i
	}
	span := last - first + 1
	drift := time.Duration(media-span) * frameDur
	t.Logf("%d frames received, program frames %d..%d: %d frames of media for %d of program time (%+v)",
		len(got.frames), first, last, media, span, drift.Round(time.Millisecond))
	if span < 300 || drift > 500*time.Millisecond || drift < -500*time.Millisecond {
		t.Fatalf("media %d frames for %d program frames: %v off real time", media, span, drift)
	}
	capture := filepath.Join(t.TempDir(), "capture.mp3")
	if err := os.WriteFile(capture, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ffmpeg", "-v", "error", "-i", capture, "-f", "null", "-").CombinedOutput()
	// The capture starts mid-stream like any listener's: its first frame
	// may miss its reservoir. Any other error is a bad splice.
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); len(out) > 0 && lines > 0 {
		t.Fatalf("ffmpeg errors decoding the capture:\n%s", out)
	}
}

// sideInfoLen returns the offset of the side information of an MPEG
// layer III frame and its length.
func sideInfo(f []byte) (off, n int) {
	off, n = 4, 32
	if f[1]&1 == 0 {
		off = 6
	}
	mono := f[3]>>6 == 3
	switch {
	case f[1]&0x18 == 0x18 && mono:
		n = 17
	case f[1]&0x18 != 0x18 && mono:
		n = 9
	case f[1]&0x18 != 0x18:
		n = 17
	}
	return off, n
}

// mainData returns the main data of a layer III frame.
func mainData(f []byte) []byte {
	off, n := sideInfo(f)
	return f[off+n:]
}

// mainDataBegin returns how many bytes before its own main data a layer III
// frame's main data starts (MPEG-1: 9 bits).
func mainDataBegin(f []byte) int {
	off, _ := sideInfo(f)
	return int(f[off])<<1 | int(f[off+1]>>7)
}
