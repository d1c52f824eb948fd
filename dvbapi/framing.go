package dvbapi

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ProtocolError is malformed input from a client or server: Offset is the
// byte offset in the connection's stream where Field starts.
type ProtocolError struct {
	Offset int64
	Field  string
	Msg    string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("dvbapi: offset %d: %s: %s", e.Offset, e.Field, e.Msg)
}

// ClientMessage is one client→server message. Slices alias the Framer's
// buffer and are valid until the next call to Next or Fill.
type ClientMessage struct {
	Framed  bool
	MsgID   uint32
	Op      uint32 // OpClientInfo, OpFilterData, OpCAPMT or OpCAStop
	Version uint16 // CLIENT_INFO
	Name    []byte // CLIENT_INFO
	Demux   uint8  // FILTER_DATA: the server's slot
	Filter  uint8  // FILTER_DATA: the server's filter number
	Section []byte // FILTER_DATA
	Body    []byte // CA PMT / CA stop: bytes after the ASN.1 length
	BodyOff int    // offset of Body within the message
	Offset  int64  // stream offset of the message's first byte
}

// SplitClientMessage decodes the client→server message at the start of b.
// allowFrame permits the `A5 msgid` prefix (protocol 3, or before the
// handshake). It returns the message length, or 0 with a nil error when b
// holds only part of a message. Error offsets are relative to b.
func SplitClientMessage(b []byte, allowFrame bool, m *ClientMessage) (int, error) {
	*m = ClientMessage{}
	off := 0
	if len(b) > 0 && b[0] == framePrefix {
		if !allowFrame {
			return 0, &ProtocolError{0, "frame prefix", "A5 msgid frame before a protocol 3 handshake"}
		}
		if len(b) < frameHeaderLength {
			return 0, nil
		}
		m.Framed, m.MsgID = true, binary.BigEndian.Uint32(b[1:5])
		off = frameHeaderLength
	}
	if len(b) < off+4 {
		return 0, nil
	}
	op := binary.BigEndian.Uint32(b[off:])
	if op&opTagMask == OpCAPMT || op&opTagMask == OpCAStop {
		return splitCAPMT(b, off, op&opTagMask, m)
	}
	m.Op = op
	switch op {
	case OpClientInfo:
		if len(b) < off+7 {
			return 0, nil
		}
		m.Version = binary.BigEndian.Uint16(b[off+4:])
		n := off + 7 + int(b[off+6])
		if len(b) < n {
			return 0, nil
		}
		m.Name = b[off+7 : n]
		return n, nil
	case OpFilterData:
		if len(b) < off+9 {
			return 0, nil
		}
		m.Demux, m.Filter = b[off+4], b[off+5]
		sl := int(binary.BigEndian.Uint16(b[off+7:]) & 0x0FFF)
		if 3+sl > MaxSectionLen {
			return 0, &ProtocolError{int64(off + 7), "FILTER_DATA section_length", fmt.Sprintf("%d exceeds %d", sl, MaxSectionLen-3)}
		}
		n := off + 9 + sl
		if len(b) < n {
			return 0, nil
		}
		m.Section = b[off+6 : n]
		return n, nil
	}
	return 0, &ProtocolError{int64(off), "opcode", fmt.Sprintf("unknown client opcode 0x%08X (clients only send CLIENT_INFO, FILTER_DATA, CA PMT and CA stop)", op)}
}

// splitCAPMT splits `9F 80 3x <asn1 length> body`.
func splitCAPMT(b []byte, off int, op uint32, m *ClientMessage) (int, error) {
	m.Op = op
	l := int(b[off+3])
	hdr := off + 4
	if l&0x80 != 0 {
		nl := l & 0x7F
		if nl == 0 || nl > 2 {
			return 0, &ProtocolError{int64(off + 3), "CA PMT length", fmt.Sprintf("%d length bytes (at most 2 accepted)", nl)}
		}
		if len(b) < hdr+nl {
			return 0, nil
		}
		l = 0
		for _, c := range b[hdr : hdr+nl] {
			l = l<<8 | int(c)
		}
		hdr += nl
	}
	if l > MaxCAPMTLen {
		return 0, &ProtocolError{int64(off + 3), "CA PMT length", fmt.Sprintf("%d exceeds %d", l, MaxCAPMTLen)}
	}
	if len(b) < hdr+l {
		return 0, nil
	}
	m.Body, m.BodyOff = b[hdr:hdr+l], hdr
	return hdr + l, nil
}

// Framer reassembles client→server messages split or merged across reads.
// Its buffer holds at least one largest message; it never grows.
type Framer struct {
	buf        []byte
	start, end int
	base       int64 // stream offset of buf[0]
}

// framerSize holds the largest message (frame + tag + 3 length bytes +
// MaxCAPMTLen) twice over so that reads stay large.
const framerSize = 2 * (frameHeaderLength + 7 + MaxCAPMTLen)

// NewFramer returns a Framer with its fixed buffer.
func NewFramer() *Framer { return &Framer{buf: make([]byte, framerSize)} }

// Fill reads once from r into the free part of the buffer.
func (f *Framer) Fill(r io.Reader) error {
	if f.start > 0 {
		copy(f.buf, f.buf[f.start:f.end])
		f.base += int64(f.start)
		f.end -= f.start
		f.start = 0
	}
	n, err := r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 {
		return nil
	}
	return err
}

// Write appends p to the buffer as if it had been read (local tests and
// in-process callers); it fails if p does not fit.
func (f *Framer) Write(p []byte) (int, error) {
	if f.start > 0 {
		copy(f.buf, f.buf[f.start:f.end])
		f.base += int64(f.start)
		f.end -= f.start
		f.start = 0
	}
	if len(p) > len(f.buf)-f.end {
		return 0, fmt.Errorf("dvbapi: framer full")
	}
	f.end += copy(f.buf[f.end:], p)
	return len(p), nil
}

// Next decodes the next complete message. It returns false when more bytes
// are needed. Errors carry the stream offset.
func (f *Framer) Next(allowFrame bool, m *ClientMessage) (bool, error) {
	n, err := SplitClientMessage(f.buf[f.start:f.end], allowFrame, m)
	if err != nil {
		if pe, ok := err.(*ProtocolError); ok {
			pe.Offset += f.base + int64(f.start)
		}
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	m.Offset = f.base + int64(f.start)
	f.start += n
	return true, nil
}

// Buffered returns the number of bytes not yet decoded.
func (f *Framer) Buffered() int { return f.end - f.start }
