package dvbapi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes of the dvbapi protocol. Most are the Linux DVB ioctl request
// numbers; the 0xFFFF000x ones are private to the protocol.
const (
	OpFilterData      uint32 = 0xFFFF0000
	OpClientInfo      uint32 = 0xFFFF0001
	OpServerInfo      uint32 = 0xFFFF0002
	OpECMInfo         uint32 = 0xFFFF0003
	OpDmxSetFilter    uint32 = 0x403C6F2B
	OpDmxStop         uint32 = 0x00006F2A
	OpCASetPID        uint32 = 0x40086F87
	OpCASetDescr      uint32 = 0x40106F86
	OpCASetDescrMode  uint32 = 0x400C6F88
	OpCASetDescrData  uint32 = 0x40186F89
	OpCAPMT           uint32 = 0x9F803200 // low byte is the first length byte
	OpCAStop          uint32 = 0x9F803F00
	opTagMask         uint32 = 0xFFFFFF00
	framePrefix       byte   = 0xA5
	frameHeaderLength        = 5
)

// Protocol versions.
const (
	// ServerVersion is the protocol version satd announces in SERVER_INFO
	// (OSCam announces 3); the framing in use is the client's version.
	ServerVersion = 3
	// MaxVersion is the highest client version satd speaks; higher
	// announcements are served as version 3.
	MaxVersion = 3
)

// Size bounds of client→server messages.
const (
	// MaxCAPMTLen bounds the body of a CA PMT (after the tag and length).
	MaxCAPMTLen = 4096
	// MaxSectionLen bounds a section carried in FILTER_DATA (header included).
	MaxSectionLen = 4096
	// MaxECMLen is the longest ECM section processed (OSCam with DRE/Viaccess).
	MaxECMLen = 1024
)

// Fixed message sizes server→client, opcode included, frame prefix excluded.
const (
	DmxSetFilterLen = 65
	DmxStopLen      = 9
	CASetPIDLen     = 13
	CASetDescrLen   = 21
	caSetDescrMode  = 17
)

// Filter flags (Linux DVB dmx_sct_filter_params.flags).
const (
	FlagCheckCRC       = 1
	FlagOneShot        = 2
	FlagImmediateStart = 4
)

// ErrShort reports a truncated message in a decoder.
var ErrShort = errors.New("dvbapi: message truncated")

// Filter is a section filter as carried by DMX_SET_FILTER: Filter[0]/Mask[0]
// match section byte 0 (table_id), Filter[i]/Mask[i] for i ≥ 1 match
// section byte i+2.
type Filter struct {
	Adapter, Demux, Num uint8
	PID                 uint16
	Filter, Mask, Mode  [16]byte
	Timeout             uint32 // ms
	Flags               uint32
}

// Matches reports whether section passes the filter (positive match on every
// masked bit; Mode is ignored like OSCam does).
func (f *Filter) Matches(section []byte) bool {
	if len(section) == 0 {
		return false
	}
	if section[0]&f.Mask[0] != f.Filter[0]&f.Mask[0] {
		return false
	}
	for i := 1; i < 16; i++ {
		if f.Mask[i] == 0 {
			continue
		}
		if i+2 >= len(section) || section[i+2]&f.Mask[i] != f.Filter[i]&f.Mask[i] {
			return false
		}
	}
	return true
}

func appendPrefix(b []byte, version int, msgid uint32) []byte {
	if version >= 3 {
		b = append(b, framePrefix)
		b = binary.BigEndian.AppendUint32(b, msgid)
	}
	return b
}

// AppendClientInfo appends a CLIENT_INFO (always unframed).
func AppendClientInfo(b []byte, version uint16, name string) []byte {
	b = binary.BigEndian.AppendUint32(b, OpClientInfo)
	b = binary.BigEndian.AppendUint16(b, version)
	return appendString(b, name)
}

// AppendServerInfo appends a SERVER_INFO framed for a client of clientVersion
// (msgid 0 for version 3).
func AppendServerInfo(b []byte, clientVersion int, serverVersion uint16, name string) []byte {
	b = appendPrefix(b, clientVersion, 0)
	b = binary.BigEndian.AppendUint32(b, OpServerInfo)
	b = binary.BigEndian.AppendUint16(b, serverVersion)
	return appendString(b, name)
}

func appendString(b []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// AppendSetFilter appends a DMX_SET_FILTER. Version 0 selects the
// protocol-0 layout (adapter byte first, host byte order), as do the other
// encoders of filter and descrambler commands.
func AppendSetFilter(b []byte, version int, msgid uint32, f *Filter) []byte {
	if version == 0 {
		return appendSetFilter0(b, f)
	}
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpDmxSetFilter)
	b = append(b, f.Adapter, f.Demux, f.Num)
	b = binary.BigEndian.AppendUint16(b, f.PID)
	b = append(b, f.Filter[:]...)
	b = append(b, f.Mask[:]...)
	b = append(b, f.Mode[:]...)
	b = binary.BigEndian.AppendUint32(b, f.Timeout)
	return binary.BigEndian.AppendUint32(b, f.Flags)
}

// AppendDmxStop appends a DMX_STOP.
func AppendDmxStop(b []byte, version int, msgid uint32, adapter, demux, filter uint8, pid uint16) []byte {
	if version == 0 {
		return appendDmxStop0(b, adapter, demux, filter, pid)
	}
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpDmxStop)
	b = append(b, adapter, demux, filter)
	return binary.BigEndian.AppendUint16(b, pid)
}

// AppendSetPID appends a CA_SET_PID; index -1 removes pid from descrambling.
func AppendSetPID(b []byte, version int, msgid uint32, adapter uint8, pid uint16, index int32) []byte {
	if version == 0 {
		return appendSetPID0(b, adapter, pid, index)
	}
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpCASetPID)
	b = append(b, adapter)
	b = binary.BigEndian.AppendUint32(b, uint32(pid))
	return binary.BigEndian.AppendUint32(b, uint32(index))
}

// AppendSetDescr appends a CA_SET_DESCR (parity 0 even, 1 odd).
func AppendSetDescr(b []byte, version int, msgid uint32, adapter uint8, index, parity uint32, cw []byte) []byte {
	if version == 0 {
		return appendSetDescr0(b, adapter, index, parity, cw)
	}
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpCASetDescr)
	b = append(b, adapter)
	b = binary.BigEndian.AppendUint32(b, index)
	b = binary.BigEndian.AppendUint32(b, parity)
	return append(b, cw[:8]...)
}

// ECMInfo is the content of an ECM_INFO message (protocol ≥ 2).
type ECMInfo struct {
	Adapter  uint8
	SID      uint16
	CAID     uint16
	PID      uint16
	PRID     uint32
	TimeMs   uint32
	System   string // card system name, e.g. "Conax"
	Reader   string // reader label
	Source   string // "local" for satd's own slots
	Protocol string // reader protocol, e.g. "internal"
	Hops     uint8
}

// AppendECMInfo appends an ECM_INFO.
func AppendECMInfo(b []byte, version int, msgid uint32, e *ECMInfo) []byte {
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpECMInfo)
	b = append(b, e.Adapter)
	b = binary.BigEndian.AppendUint16(b, e.SID)
	b = binary.BigEndian.AppendUint16(b, e.CAID)
	b = binary.BigEndian.AppendUint16(b, e.PID)
	b = binary.BigEndian.AppendUint32(b, e.PRID)
	b = binary.BigEndian.AppendUint32(b, e.TimeMs)
	b = appendString(b, e.System)
	b = appendString(b, e.Reader)
	b = appendString(b, e.Source)
	b = appendString(b, e.Protocol)
	return append(b, e.Hops)
}

// AppendFilterData appends a FILTER_DATA (client→server) carrying section.
func AppendFilterData(b []byte, version int, msgid uint32, demux, filter uint8, section []byte) []byte {
	b = appendPrefix(b, version, msgid)
	b = binary.BigEndian.AppendUint32(b, OpFilterData)
	b = append(b, demux, filter)
	return append(b, section...)
}

// AppendCAStop appends the stop message `9F 80 3F 04 83 02 00 <demux>`
// (demux 0xFF = every programme of the connection).
func AppendCAStop(b []byte, version int, msgid uint32, demux uint8) []byte {
	b = appendPrefix(b, version, msgid)
	return append(b, 0x9F, 0x80, 0x3F, 0x04, 0x83, 0x02, 0x00, demux)
}

// AppendASN1Length appends an ASN.1 length as enigma2 and tvheadend write it
// (short form below 0x80, else 0x81 n or 0x82 hh ll).
func AppendASN1Length(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	default:
		return append(b, 0x82, byte(n>>8), byte(n))
	}
}

// ServerMessage is a decoded server→client message. Only the fields of
// its opcode are set; strings and CW alias the decoded buffer.
type ServerMessage struct {
	MsgID      uint32
	Framed     bool
	Op         uint32
	Adapter    uint8
	Version    uint16 // SERVER_INFO
	Name       string // SERVER_INFO
	Filter     Filter // DMX_SET_FILTER; Adapter/Demux/Num/PID for DMX_STOP
	PID        uint32 // CA_SET_PID
	Index      int32  // CA_SET_PID, CA_SET_DESCR(_MODE/_DATA)
	Parity     uint32 // CA_SET_DESCR
	CW         [8]byte
	Algo, Mode uint32 // CA_SET_DESCR_MODE
	Data       []byte // CA_SET_DESCR_DATA
	Info       ECMInfo
}

// DecodeServerMessage decodes one server→client message from the start of b
// for a connection of the given version (0: the protocol-0 layout). It
// returns the number of bytes consumed, or 0 and nil when b holds only part of a message.
func DecodeServerMessage(b []byte, version int, m *ServerMessage) (int, error) {
	*m = ServerMessage{}
	if version == 0 {
		return decodeServerMessage0(b, m)
	}
	off := 0
	if version >= 3 {
		if len(b) < frameHeaderLength+4 {
			return 0, nil
		}
		if b[0] != framePrefix {
			return 0, &ProtocolError{Offset: 0, Field: "frame prefix", Msg: fmt.Sprintf("got 0x%02X, want 0xA5", b[0])}
		}
		m.Framed, m.MsgID = true, binary.BigEndian.Uint32(b[1:5])
		off = frameHeaderLength
	}
	if len(b) < off+4 {
		return 0, nil
	}
	m.Op = binary.BigEndian.Uint32(b[off:])
	p := b[off+4:]
	need := func(n int) bool { return len(p) >= n }
	switch m.Op {
	case OpServerInfo:
		if !need(3) || !need(3+int(p[2])) {
			return 0, nil
		}
		m.Version = binary.BigEndian.Uint16(p)
		m.Name = string(p[3 : 3+int(p[2])])
		return off + 4 + 3 + int(p[2]), nil
	case OpDmxSetFilter:
		if !need(DmxSetFilterLen - 4) {
			return 0, nil
		}
		f := &m.Filter
		f.Adapter, f.Demux, f.Num = p[0], p[1], p[2]
		f.PID = binary.BigEndian.Uint16(p[3:])
		copy(f.Filter[:], p[5:21])
		copy(f.Mask[:], p[21:37])
		copy(f.Mode[:], p[37:53])
		f.Timeout = binary.BigEndian.Uint32(p[53:])
		f.Flags = binary.BigEndian.Uint32(p[57:])
		m.Adapter = p[0]
		return off + DmxSetFilterLen, nil
	case OpDmxStop:
		if !need(DmxStopLen - 4) {
			return 0, nil
		}
		m.Filter.Adapter, m.Filter.Demux, m.Filter.Num = p[0], p[1], p[2]
		m.Filter.PID = binary.BigEndian.Uint16(p[3:])
		m.Adapter = p[0]
		return off + DmxStopLen, nil
	case OpCASetPID:
		if !need(CASetPIDLen - 4) {
			return 0, nil
		}
		m.Adapter = p[0]
		m.PID = binary.BigEndian.Uint32(p[1:])
		m.Index = int32(binary.BigEndian.Uint32(p[5:]))
		return off + CASetPIDLen, nil
	case OpCASetDescr:
		if !need(CASetDescrLen - 4) {
			return 0, nil
		}
		m.Adapter = p[0]
		m.Index = int32(binary.BigEndian.Uint32(p[1:]))
		m.Parity = binary.BigEndian.Uint32(p[5:])
		copy(m.CW[:], p[9:17])
		return off + CASetDescrLen, nil
	case OpCASetDescrMode:
		if !need(caSetDescrMode - 4) {
			return 0, nil
		}
		m.Adapter = p[0]
		m.Index = int32(binary.BigEndian.Uint32(p[1:]))
		m.Algo = binary.BigEndian.Uint32(p[5:])
		m.Mode = binary.BigEndian.Uint32(p[9:])
		return off + caSetDescrMode, nil
	case OpCASetDescrData:
		if !need(17) {
			return 0, nil
		}
		n := int(binary.BigEndian.Uint32(p[13:]))
		if n > MaxSectionLen {
			return 0, &ProtocolError{Offset: int64(off + 4 + 13), Field: "CA_SET_DESCR_DATA length", Msg: fmt.Sprintf("%d bytes exceeds %d", n, MaxSectionLen)}
		}
		if !need(17 + n) {
			return 0, nil
		}
		m.Adapter = p[0]
		m.Index = int32(binary.BigEndian.Uint32(p[1:]))
		m.Parity = binary.BigEndian.Uint32(p[5:])
		m.Data = p[17 : 17+n]
		return off + 4 + 17 + n, nil
	case OpECMInfo:
		return decodeECMInfo(p, off, m)
	}
	return 0, &ProtocolError{Offset: int64(off), Field: "opcode", Msg: fmt.Sprintf("unknown server opcode 0x%08X", m.Op)}
}

func decodeECMInfo(p []byte, off int, m *ServerMessage) (int, error) {
	const fixed = 1 + 2 + 2 + 2 + 4 + 4
	if len(p) < fixed {
		return 0, nil
	}
	e := &m.Info
	e.Adapter = p[0]
	m.Adapter = p[0]
	e.SID = binary.BigEndian.Uint16(p[1:])
	e.CAID = binary.BigEndian.Uint16(p[3:])
	e.PID = binary.BigEndian.Uint16(p[5:])
	e.PRID = binary.BigEndian.Uint32(p[7:])
	e.TimeMs = binary.BigEndian.Uint32(p[11:])
	i := fixed
	for _, s := range []*string{&e.System, &e.Reader, &e.Source, &e.Protocol} {
		if len(p) < i+1 || len(p) < i+1+int(p[i]) {
			return 0, nil
		}
		*s = string(p[i+1 : i+1+int(p[i])])
		i += 1 + int(p[i])
	}
	if len(p) < i+1 {
		return 0, nil
	}
	e.Hops = p[i]
	return off + 4 + i + 1, nil
}
