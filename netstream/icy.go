package netstream

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// maxMetaText is the largest ICY metadata text: 255 blocks of 16 bytes.
const maxMetaText = 255 * 16

// zeroMeta is the ICY block meaning "no change"; shared, never written.
var zeroMeta = []byte{0}

// buildMetaBlock returns the ICY block (length byte, then text padded with NUL
// to 16 bytes) for a title. Quotes in the title are kept as the source sent
// them; the text is truncated to the protocol maximum.
func buildMetaBlock(title string) []byte {
	text := "StreamTitle='" + title + "';"
	if len(text) > maxMetaText {
		text = text[:maxMetaText-2] + "';"
	}
	n := (len(text) + 15) / 16
	out := make([]byte, 1+n*16)
	out[0] = byte(n)
	copy(out[1:], text)
	return out
}

// ErrBadMetadata is returned for a malformed ICY metadata text.
var ErrBadMetadata = errors.New("malformed ICY metadata")

// parseStreamTitle extracts StreamTitle from an ICY metadata text such as
// "StreamTitle='a - b';StreamUrl=”;" (trailing NULs allowed).
func parseStreamTitle(text []byte) (string, error) {
	text = bytes.TrimRight(text, "\x00")
	const key = "StreamTitle='"
	i := bytes.Index(text, []byte(key))
	if i < 0 {
		return "", fmt.Errorf("%w: no StreamTitle in %q", ErrBadMetadata, text)
	}
	rest := text[i+len(key):]
	// The title ends at the last "';" before the next field or the end;
	// titles may contain quotes.
	end := bytes.Index(rest, []byte("';StreamUrl="))
	if end < 0 {
		end = bytes.LastIndex(rest, []byte("';"))
	}
	if end < 0 {
		return "", fmt.Errorf("%w: unterminated StreamTitle in %q", ErrBadMetadata, text)
	}
	return string(rest[:end]), nil
}

// icyStripper removes inline ICY metadata from an upstream body that was
// requested with Icy-MetaData: 1 and announced icy-metaint.
type icyStripper struct {
	metaint int
	until   int    // audio bytes before the next length byte
	want    int    // metadata bytes still expected; -1 = expecting length byte
	meta    []byte // fixed capacity maxMetaText
	onTitle func(string)
}

func newICYStripper(metaint int, onTitle func(string)) *icyStripper {
	return &icyStripper{metaint: metaint, until: metaint, want: -1, meta: make([]byte, 0, maxMetaText), onTitle: onTitle}
}

// strip compacts the audio bytes of p to its front and returns their count.
func (s *icyStripper) strip(p []byte) int {
	out := 0
	for i := 0; i < len(p); {
		switch {
		case s.until > 0:
			n := min(s.until, len(p)-i)
			out += copy(p[out:], p[i:i+n])
			i += n
			s.until -= n
		case s.want < 0:
			s.want = int(p[i]) * 16
			s.meta = s.meta[:0]
			i++
			if s.want == 0 {
				s.want, s.until = -1, s.metaint
			}
		default:
			n := min(s.want, len(p)-i)
			s.meta = append(s.meta, p[i:i+n]...)
			i += n
			s.want -= n
			if s.want == 0 {
				if t, err := parseStreamTitle(s.meta); err == nil && s.onTitle != nil {
					s.onTitle(t)
				}
				s.want, s.until = -1, s.metaint
			}
		}
	}
	return out
}

// readICY is a reference client-side parser: it splits a listener body with
// the given metaint into audio bytes and the sequence of titles announced.
// Tests use it as the "reference client".
func readICY(body []byte, metaint int) (audio []byte, titles []string, err error) {
	for len(body) > 0 {
		n := min(metaint, len(body))
		audio = append(audio, body[:n]...)
		body = body[n:]
		if len(body) == 0 {
			break
		}
		l := int(body[0]) * 16
		body = body[1:]
		if l == 0 {
			continue
		}
		if len(body) < l {
			return audio, titles, nil // cut by the end of the capture
		}
		t, perr := parseStreamTitle(body[:l])
		if perr != nil {
			return audio, titles, perr
		}
		titles = append(titles, t)
		body = body[l:]
	}
	return audio, titles, nil
}

// sanitizeTitle removes bytes that would break the ICY text framing.
func sanitizeTitle(t string) string {
	t = strings.Map(func(r rune) rune {
		if r == 0 || r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, t)
	return t
}
