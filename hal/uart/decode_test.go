package uart

import (
	"testing"

	"satd.dev/satd/hal"
)

// item is one decoded byte and its mark.
type item struct {
	b    byte
	mark error
}

// drain decodes src fed in pieces of at most feed bytes, reading with dst
// buffers of size dstLen, the way Port.Read uses the decoder.
func drain(src []byte, feed, dstLen int) []item {
	var d decoder
	var out []item
	dst := make([]byte, dstLen)
	for len(src) > 0 {
		chunk := src[:min(feed, len(src))]
		src = src[len(chunk):]
		for len(chunk) > 0 {
			if _, err, ok := d.takeHeld(dst); ok {
				out = append(out, item{dst[0], err})
				continue
			}
			n, used, mark := d.decode(dst, chunk)
			chunk = chunk[used:]
			if mark != nil {
				if n != 1 {
					panic("marked byte not returned alone")
				}
				out = append(out, item{dst[0], mark})
				continue
			}
			for _, c := range dst[:n] {
				out = append(out, item{c, nil})
			}
		}
	}
	if n, err, ok := d.takeHeld(dst); ok && n == 1 {
		out = append(out, item{dst[0], err})
	}
	return out
}

// reference decodes a whole PARMRK stream at once.
func reference(src []byte) []item {
	var out []item
	for i := 0; i < len(src); i++ {
		switch {
		case src[i] != 0xFF:
			out = append(out, item{src[i], nil})
		case i+1 < len(src) && src[i+1] == 0xFF:
			out = append(out, item{0xFF, nil})
			i++
		case i+2 < len(src) && src[i+1] == 0x00:
			m := error(hal.ErrParity)
			if src[i+2] == 0 {
				m = hal.ErrFraming
			}
			out = append(out, item{src[i+2], m})
			i += 2
		case i+1 < len(src) && src[i+1] != 0x00:
			out = append(out, item{0xFF, nil})
		default:
			return out // incomplete escape at the end: held in state
		}
	}
	return out
}

func TestDecodeSyntheticPARMRK(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want []item
	}{
		{"plain", []byte{0x3B, 0x02, 0x14}, []item{{0x3B, nil}, {0x02, nil}, {0x14, nil}}},
		{"literal FF", []byte{0x3B, 0xFF, 0xFF, 0x11}, []item{{0x3B, nil}, {0xFF, nil}, {0x11, nil}}},
		{"inverse TS with parity error", []byte{0xFF, 0x00, 0x03, 0x5D}, []item{{0x03, hal.ErrParity}, {0x5D, nil}}},
		{"break", []byte{0x60, 0xFF, 0x00, 0x00}, []item{{0x60, nil}, {0x00, hal.ErrFraming}}},
		{"two marks", []byte{0xFF, 0x00, 0x03, 0xFF, 0x00, 0xFF}, []item{{0x03, hal.ErrParity}, {0xFF, hal.ErrParity}}},
	} {
		for _, feed := range []int{1, 2, 3, 100} {
			for _, dl := range []int{1, 2, 64} {
				got := drain(tc.raw, feed, dl)
				if !sameItems(got, tc.want) {
					t.Errorf("%s feed=%d dst=%d: got %v, want %v", tc.name, feed, dl, got, tc.want)
				}
			}
		}
	}
}

func sameItems(a, b []item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzDecode checks that any raw stream, split anywhere and read with any
// buffer size, decodes like the whole-buffer reference and never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x3B, 0xFF, 0xFF, 0x11}, uint8(1), uint8(1))
	f.Add([]byte{0xFF, 0x00, 0x03, 0xFF, 0x00, 0x00, 0xFF}, uint8(2), uint8(3))
	f.Add([]byte{0xFF, 0x12, 0xFF}, uint8(5), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, feed, dst uint8) {
		got := drain(raw, int(feed%16)+1, int(dst%8)+1)
		want := reference(raw)
		if !sameItems(got, want) {
			t.Fatalf("raw % x: got %v, want %v", raw, got, want)
		}
	})
}
