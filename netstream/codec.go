package netstream

import (
	"encoding/binary"
	"strings"
	"time"
)

// codec is the audio container format of a mount.
type codec uint8

const (
	codecUnknown codec = iota
	codecMP3
	codecAAC
	codecOgg
)

// codecForType maps a Content-Type to a codec.
func codecForType(ct string) codec {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg":
		return codecMP3
	case "audio/aac", "audio/aacp", "audio/x-aac", "audio/adts":
		return codecAAC
	case "application/ogg", "audio/ogg", "audio/opus", "audio/vorbis":
		return codecOgg
	}
	return codecUnknown
}

func (c codec) String() string {
	switch c {
	case codecMP3:
		return "mp3"
	case codecAAC:
		return "aac"
	case codecOgg:
		return "ogg"
	}
	return "unknown"
}

// contentType is the Content-Type sent to listeners for the codec.
func (c codec) contentType() string {
	switch c {
	case codecMP3:
		return "audio/mpeg"
	case codecAAC:
		return "audio/aac"
	case codecOgg:
		return "application/ogg"
	}
	return "application/octet-stream"
}

// frameInfo describes one codec frame (an Ogg page for Ogg).
type frameInfo struct {
	size       int
	dur        time.Duration // 0 if unknown
	sampleRate int
	channels   int
	bitrate    int    // bits per second, 0 if unknown
	key        uint32 // parameters that must stay equal across a splice
}

var mp3Bitrates = [2][3][16]int{
	{ // MPEG-1: layer I, II, III
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},
	},
	{ // MPEG-2 and 2.5: layer I, II, III
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
	},
}

var mp3Rates = [4][3]int{{11025, 12000, 8000}, {}, {22050, 24000, 16000}, {44100, 48000, 32000}}

// parseMP3 decodes an MPEG audio frame header at b[0:4]. ok is false if the
// four bytes are not a usable header (free-format bitrate is not supported).
func parseMP3(b []byte) (fi frameInfo, ok bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return fi, false
	}
	ver := (b[1] >> 3) & 3
	layer := (b[1] >> 1) & 3
	bri := b[2] >> 4
	sri := (b[2] >> 2) & 3
	if ver == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3 {
		return fi, false
	}
	li := 3 - int(layer) // 0 = layer I
	vi := 0
	if ver != 3 {
		vi = 1
	}
	br := mp3Bitrates[vi][li][bri] * 1000
	sr := mp3Rates[ver][sri]
	pad := int(b[2]>>1) & 1
	var size, samples int
	switch {
	case li == 0:
		size, samples = (12*br/sr+pad)*4, 384
	case li == 2 && vi == 1:
		size, samples = 72*br/sr+pad, 576
	default:
		size, samples = 144*br/sr+pad, 1152
	}
	ch := 2
	if b[3]>>6 == 3 {
		ch = 1
	}
	return frameInfo{
		size: size, dur: time.Duration(samples) * time.Second / time.Duration(sr),
		sampleRate: sr, channels: ch, bitrate: br,
		key: uint32(b[1]&0xFE)<<8 | uint32(b[2]&0x0C) | uint32(b[3]>>6),
	}, size >= 4
}

var adtsRates = [16]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseADTS decodes an ADTS header at b[0:7].
func parseADTS(b []byte) (fi frameInfo, ok bool) {
	if len(b) < 7 || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
		return fi, false
	}
	sri := (b[2] >> 2) & 0xF
	size := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
	hdr := 7
	if b[1]&1 == 0 {
		hdr = 9
	}
	if sri > 12 || size < hdr {
		return fi, false
	}
	sr := adtsRates[sri]
	samples := 1024 * (int(b[6]&3) + 1)
	ch := int(b[2]&1)<<2 | int(b[3]>>6)
	dur := time.Duration(samples) * time.Second / time.Duration(sr)
	return frameInfo{
		size: size, dur: dur, sampleRate: sr, channels: ch,
		bitrate: int(int64(size) * 8 * int64(time.Second) / int64(dur)),
		key:     uint32(b[2]&0xFD)<<8 | uint32(b[3]>>6),
	}, true
}

// parseOggPage decodes an Ogg page header at b. need > 0 means more bytes are
// needed to know the page size.
func parseOggPage(b []byte) (fi frameInfo, need int, ok bool) {
	if len(b) < 27 {
		return fi, 27, string(b[:min(4, len(b))]) == "OggS"[:min(4, len(b))]
	}
	if string(b[:4]) != "OggS" || b[4] != 0 {
		return fi, 0, false
	}
	nseg := int(b[26])
	if len(b) < 27+nseg {
		return fi, 27 + nseg, true
	}
	size := 27 + nseg
	for _, s := range b[27 : 27+nseg] {
		size += int(s)
	}
	return frameInfo{size: size}, 0, true
}

// oggGranule returns the granule position of a page.
func oggGranule(p []byte) uint64 { return binary.LittleEndian.Uint64(p[6:14]) }

// oggRate finds the sample rate in a Vorbis or Opus identification header
// page, or 0.
func oggRate(p []byte) int {
	nseg := int(p[26])
	body := p[27+nseg:]
	switch {
	case len(body) >= 16 && string(body[:7]) == "\x01vorbis":
		return int(binary.LittleEndian.Uint32(body[12:16]))
	case len(body) >= 8 && string(body[:8]) == "OpusHead":
		return 48000
	}
	return 0
}

// frameSink receives whole frames from a framer.
type frameSink interface {
	putFrame(frame []byte, fi frameInfo)
}

// maxCarry bounds the bytes a framer holds back; an Ogg page is at most 65307.
const maxCarry = 72 << 10

// framer cuts a byte stream into whole codec frames, resynchronising after
// garbage, so that every published chunk starts on a frame boundary.
type framer struct {
	codec  codec
	buf    []byte // fixed capacity maxCarry
	n      int
	locked bool // the previous frame ended where this one starts

	// Ogg header pages (identification, comment, setup) that a listener
	// joining mid-stream needs first.
	oggHdr       []byte
	oggCapturing bool
	oggRate      int
	oggLastGran  uint64
}

func newFramer(c codec) *framer {
	return &framer{codec: c, buf: make([]byte, maxCarry), oggHdr: make([]byte, 0, maxCarry)}
}

// reset forgets partial data, e.g. when the source changes.
func (f *framer) reset(c codec) {
	f.codec, f.n, f.locked = c, 0, false
}

// write feeds bytes and emits every complete frame to sink.
func (f *framer) write(p []byte, sink frameSink) {
	for len(p) > 0 {
		k := copy(f.buf[f.n:], p)
		f.n += k
		p = p[k:]
		f.scan(sink)
	}
}

func (f *framer) scan(sink frameSink) {
	i := 0
	for i < f.n {
		fi, need, ok := f.frameAt(f.buf[i:f.n])
		if !ok {
			f.locked = false
			i++
			continue
		}
		if need > 0 {
			break
		}
		if f.codec == codecOgg {
			f.oggPage(f.buf[i:i+fi.size], &fi)
		}
		f.locked = true
		sink.putFrame(f.buf[i:i+fi.size], fi)
		i += fi.size
	}
	if i == 0 && f.n == len(f.buf) {
		i = 1 // cannot happen with valid frames; guarantees progress
	}
	f.n = copy(f.buf, f.buf[i:f.n])
}

// frameAt reports the frame at b: need > 0 means wait for more bytes.
func (f *framer) frameAt(b []byte) (fi frameInfo, need int, ok bool) {
	switch f.codec {
	case codecOgg:
		fi, need, ok = parseOggPage(b)
		if ok && need == 0 && len(b) < fi.size {
			need = fi.size
		}
		return fi, need, ok
	case codecMP3, codecAAC:
		parse, hdr := parseMP3, 4
		if f.codec == codecAAC {
			parse, hdr = parseADTS, 7
		}
		if len(b) < hdr {
			return fi, hdr, b[0] == 0xFF
		}
		fi, ok = parse(b)
		if !ok {
			return fi, 0, false
		}
		if f.locked {
			if len(b) < fi.size {
				return fi, fi.size, true
			}
			return fi, 0, true
		}
		// Not locked: confirm with the next header to reject false syncs.
		if len(b) < fi.size+hdr {
			return fi, fi.size + hdr, true
		}
		next, ok2 := parse(b[fi.size:])
		if !ok2 || next.key != fi.key {
			return fi, 0, false
		}
		return fi, 0, true
	}
	return fi, 0, false
}

// oggPage tracks header pages and derives the page duration from granules.
func (f *framer) oggPage(p []byte, fi *frameInfo) {
	if len(p) < 27 {
		return
	}
	gran := oggGranule(p)
	if p[5]&2 != 0 { // beginning of stream: new header set
		f.oggHdr = f.oggHdr[:0]
		f.oggCapturing = true
		f.oggRate = oggRate(p)
		f.oggLastGran = 0
	}
	if f.oggCapturing {
		if gran == 0 && len(f.oggHdr)+len(p) <= cap(f.oggHdr) {
			f.oggHdr = append(f.oggHdr, p...)
			return
		}
		f.oggCapturing = false
	}
	if f.oggRate > 0 && gran != ^uint64(0) && gran > f.oggLastGran {
		fi.dur = time.Duration(gran-f.oggLastGran) * time.Second / time.Duration(f.oggRate)
		f.oggLastGran = gran
	}
	fi.sampleRate = f.oggRate
}

// silenceFrame builds one silent frame with the parameters of the sample
// frame, or nil if the codec cannot be synthesised (Ogg, free format, or an
// AAC channel layout without a known silent payload).
func silenceFrame(c codec, sample []byte) []byte {
	switch c {
	case codecMP3:
		fi, ok := parseMP3(sample)
		if !ok || (sample[1]>>1)&3 != 1 { // layer III only
			return nil
		}
		hdr := [4]byte{sample[0], sample[1] | 1, sample[2] &^ 2, sample[3]}
		fi, _ = parseMP3(hdr[:])
		// A layer III frame whose side information is all zero carries no
		// Huffman data: decoders output digital silence.
		out := make([]byte, fi.size)
		copy(out, hdr[:])
		return out
	case codecAAC:
		fi, ok := parseADTS(sample)
		if !ok {
			return nil
		}
		var raw []byte
		switch fi.channels {
		case 1: // SCE with zero spectral data, then END
			raw = []byte{0x01, 0x40, 0x20, 0x07}
		case 2: // CPE with zero spectral data, then END
			raw = []byte{0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80}
		default:
			return nil
		}
		n := 7 + len(raw)
		out := make([]byte, n)
		out[0], out[1] = 0xFF, 0xF1
		out[2] = sample[2]
		out[3] = sample[3]&0xC0 | byte(n>>11)&3
		out[4] = byte(n >> 3)
		out[5] = byte(n<<5) | 0x1F
		out[6] = 0xFC
		copy(out[7:], raw)
		return out
	}
	return nil
}
