package netstream

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestDemoFramesAreMP3At128k(t *testing.T) {
	frames := demoFrames(t)
	for i, f := range frames {
		fi, ok := parseMP3(f)
		if !ok || fi.size != len(f) || fi.sampleRate != 44100 || fi.bitrate != 128000 || fi.channels != 2 {
			t.Fatalf("frame %d: %+v ok=%v len=%d", i, fi, ok, len(f))
		}
	}
}

func TestFramerResynchronisesAfterGarbage(t *testing.T) {
	frames := demoFrames(t)[:50]
	var in []byte
	in = append(in, []byte("ID3 garbage \xff\xfb junk")...)
	for i, f := range frames {
		in = append(in, f...)
		if i == 20 {
			in = append(in, 0xFF, 0xE0, 1, 2, 3) // a false sync inside the stream
		}
	}
	var c frameCollector
	fr := newFramer(codecMP3)
	for len(in) > 0 { // odd chunk sizes
		n := min(len(in), 333)
		fr.write(in[:n], &c)
		in = in[n:]
	}
	if len(c.frames) < 48 {
		t.Fatalf("got %d frames, want >= 48", len(c.frames))
	}
	for i, f := range c.frames {
		if _, ok := parseMP3(f); !ok {
			t.Fatalf("frame %d is not a frame", i)
		}
	}
}

func adtsSample(channels int) []byte {
	h := []byte{0xFF, 0xF1, 0x50, byte(channels << 6), 0, 0, 0xFC} // AAC LC, 44.1 kHz
	n := 7 + 100
	h[3] |= byte(n>>11) & 3
	h[4] = byte(n >> 3)
	h[5] = byte(n<<5) | 0x1F
	return append(h, make([]byte, 100)...)
}

func TestSilenceFramesKeepParameters(t *testing.T) {
	mp3 := demoFrames(t)[10]
	s := silenceFrame(codecMP3, mp3)
	a, _ := parseMP3(mp3)
	b, ok := parseMP3(s)
	if !ok || a.key != b.key || b.size != len(s) || b.dur != a.dur {
		t.Fatalf("mp3 silence %+v vs %+v", b, a)
	}
	for _, ch := range []int{1, 2} {
		s := silenceFrame(codecAAC, adtsSample(ch))
		fi, ok := parseADTS(s)
		if !ok || fi.size != len(s) || fi.channels != ch || fi.sampleRate != 44100 {
			t.Fatalf("aac silence ch=%d: %+v ok=%v", ch, fi, ok)
		}
	}
	if silenceFrame(codecOgg, []byte("OggS")) != nil {
		t.Fatal("ogg silence must be nil")
	}
}

// TestSilenceDecodes runs ffmpeg on synthesised silence: it must decode
// without errors to digital silence.
func TestSilenceDecodes(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (apt-get install ffmpeg); make test installs it")
	}
	dir := t.TempDir()
	cases := map[string][]byte{
		"s.mp3": silenceFrame(codecMP3, demoFrames(t)[10]),
		"s.aac": silenceFrame(codecAAC, adtsSample(2)),
	}
	for name, f := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat(f, 200), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", p, "-f", "s16le", "-").Output()
		if err != nil || len(out) == 0 {
			t.Fatalf("%s: ffmpeg: %v (%d bytes)", name, err, len(out))
		}
		if bytes.Count(out, []byte{0}) < len(out)*99/100 {
			t.Fatalf("%s: decoded audio is not silence", name)
		}
	}
}

func oggPage(flags byte, gran uint64, body []byte) []byte {
	p := make([]byte, 27)
	copy(p, "OggS")
	p[5] = flags
	binary.LittleEndian.PutUint64(p[6:], gran)
	var segs []byte
	for n := len(body); ; n -= 255 {
		if n >= 255 {
			segs = append(segs, 255)
			continue
		}
		segs = append(segs, byte(n))
		break
	}
	p[26] = byte(len(segs))
	p = append(p, segs...)
	return append(p, body...)
}

func TestOggHeadersAndDurations(t *testing.T) {
	id := make([]byte, 30)
	copy(id, "\x01vorbis")
	binary.LittleEndian.PutUint32(id[12:], 44100)
	var in []byte
	in = append(in, oggPage(2, 0, id)...)
	in = append(in, oggPage(0, 0, []byte("\x03vorbis comments"))...)
	in = append(in, oggPage(0, 44100, bytes.Repeat([]byte{7}, 600))...)
	in = append(in, oggPage(0, 88200, bytes.Repeat([]byte{8}, 600))...)
	var c frameCollector
	fr := newFramer(codecOgg)
	fr.write(append([]byte("junk"), in...), &c)
	if len(c.frames) != 4 {
		t.Fatalf("got %d pages", len(c.frames))
	}
	if got := len(fr.oggHdr); got != len(oggPage(2, 0, id))+len(oggPage(0, 0, []byte("\x03vorbis comments"))) {
		t.Fatalf("header pages: %d bytes", got)
	}
	if c.infos[3].dur != time.Second {
		t.Fatalf("page duration %v", c.infos[3].dur)
	}
}

func FuzzFramer(f *testing.F) {
	raw, _ := os.ReadFile(demoFile)
	f.Add(byte(1), raw[:3000])
	f.Add(byte(2), adtsSample(2))
	f.Add(byte(3), oggPage(2, 0, []byte("\x01vorbis0123456789abcdefghijk")))
	f.Add(byte(1), []byte{0xFF, 0xFB, 0x90, 0x64, 0xFF})
	f.Fuzz(func(t *testing.T, c byte, in []byte) {
		var col frameCollector
		fr := newFramer(codec(c%3 + 1))
		fr.write(in, &col)
		total := 0
		for _, fm := range col.frames {
			total += len(fm)
		}
		if total > len(in) {
			t.Fatalf("emitted %d bytes from %d", total, len(in))
		}
	})
}

func FuzzParseStatusLine(f *testing.F) {
	f.Add("HTTP/1.0 200 OK")
	f.Add("ICY 200 OK")
	f.Add("HTTP/1.1 404")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, line string) {
		n, err := parseStatusLine(line)
		if err == nil && (n < 100 || n > 999) {
			t.Fatalf("accepted code %d", n)
		}
	})
}
