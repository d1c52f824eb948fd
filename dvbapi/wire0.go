package dvbapi

import (
	"encoding/binary"
	"fmt"
)

// Protocol 0 is the legacy layout of clients that never send CLIENT_INFO
// (tvheadend's older OSCam modes, old VDR plugins): every server→client
// message starts with the adapter byte, then the opcode and the ioctl
// structs in the server's host byte order, except the PID of DMX_STOP,
// which is big-endian (spec §1.2). The demux and filter bytes of
// DMX_SET_FILTER and DMX_STOP are kept so FILTER_DATA can name them.
// SERVER_INFO and ECM_INFO do not exist in protocol 0.

// Lengths of the protocol-0 messages, adapter byte included.
const (
	dmxSetFilterLen0 = 1 + 4 + 2 + dmxSctFilterParamsLen
	dmxStopLen0      = 1 + 4 + 2 + 2
	caSetPIDLen0     = 1 + 4 + 8
	caSetDescrLen0   = 1 + 4 + 16
	// dmxSctFilterParamsLen is struct dmx_sct_filter_params with C
	// padding: pid u16, filter/mask/mode [16]u8, 2 bytes padding,
	// timeout u32, flags u32.
	dmxSctFilterParamsLen = 2 + 48 + 2 + 4 + 4
)

var host = binary.NativeEndian

func appendSetFilter0(b []byte, f *Filter) []byte {
	b = append(b, f.Adapter)
	b = host.AppendUint32(b, OpDmxSetFilter)
	b = append(b, f.Demux, f.Num)
	b = host.AppendUint16(b, f.PID)
	b = append(b, f.Filter[:]...)
	b = append(b, f.Mask[:]...)
	b = append(b, f.Mode[:]...)
	b = append(b, 0, 0)
	b = host.AppendUint32(b, f.Timeout)
	return host.AppendUint32(b, f.Flags)
}

func appendDmxStop0(b []byte, adapter, demux, filter uint8, pid uint16) []byte {
	b = append(b, adapter)
	b = host.AppendUint32(b, OpDmxStop)
	b = append(b, demux, filter)
	return binary.BigEndian.AppendUint16(b, pid)
}

func appendSetPID0(b []byte, adapter uint8, pid uint16, index int32) []byte {
	b = append(b, adapter)
	b = host.AppendUint32(b, OpCASetPID)
	b = host.AppendUint32(b, uint32(pid))
	return host.AppendUint32(b, uint32(index))
}

func appendSetDescr0(b []byte, adapter uint8, index, parity uint32, cw []byte) []byte {
	b = append(b, adapter)
	b = host.AppendUint32(b, OpCASetDescr)
	b = host.AppendUint32(b, index)
	b = host.AppendUint32(b, parity)
	return append(b, cw[:8]...)
}

// decodeServerMessage0 decodes one protocol-0 message (what a legacy
// client reads); it returns 0 and nil for a partial message.
func decodeServerMessage0(b []byte, m *ServerMessage) (int, error) {
	if len(b) < 5 {
		return 0, nil
	}
	m.Adapter = b[0]
	m.Op = host.Uint32(b[1:])
	p := b[5:]
	switch m.Op {
	case OpDmxSetFilter:
		if len(b) < dmxSetFilterLen0 {
			return 0, nil
		}
		f := &m.Filter
		f.Adapter, f.Demux, f.Num = m.Adapter, p[0], p[1]
		f.PID = host.Uint16(p[2:])
		copy(f.Filter[:], p[4:20])
		copy(f.Mask[:], p[20:36])
		copy(f.Mode[:], p[36:52])
		f.Timeout = host.Uint32(p[54:])
		f.Flags = host.Uint32(p[58:])
		return dmxSetFilterLen0, nil
	case OpDmxStop:
		if len(b) < dmxStopLen0 {
			return 0, nil
		}
		m.Filter.Adapter, m.Filter.Demux, m.Filter.Num = m.Adapter, p[0], p[1]
		m.Filter.PID = binary.BigEndian.Uint16(p[2:])
		return dmxStopLen0, nil
	case OpCASetPID:
		if len(b) < caSetPIDLen0 {
			return 0, nil
		}
		m.PID = host.Uint32(p)
		m.Index = int32(host.Uint32(p[4:]))
		return caSetPIDLen0, nil
	case OpCASetDescr:
		if len(b) < caSetDescrLen0 {
			return 0, nil
		}
		m.Index = int32(host.Uint32(p))
		m.Parity = host.Uint32(p[4:])
		copy(m.CW[:], p[8:16])
		return caSetDescrLen0, nil
	}
	return 0, &ProtocolError{Offset: 1, Field: "opcode", Msg: fmt.Sprintf("unknown protocol-0 opcode 0x%08X (host order)", m.Op)}
}
