package dvbapi

import (
	"encoding/binary"
	"fmt"
)

// List management values of ca_pmt_list_management.
const (
	ListMore   = 0x00
	ListFirst  = 0x01
	ListLast   = 0x02
	ListOnly   = 0x03
	ListAdd    = 0x04
	ListUpdate = 0x05
)

// ca_pmt_cmd_id values.
const (
	CmdOKDescrambling = 0x01
	CmdOKMMI          = 0x02
	CmdQuery          = 0x03
	CmdNotSelected    = 0x04
)

// Limits of one CA PMT.
const (
	MaxStreams = 32 // elementary streams kept per programme
	MaxECMPIDs = 16 // distinct (CAID, ECM PID, provider) kept per programme
)

// ECMStream is one ECM PID of a programme.
type ECMStream struct {
	CAID uint16
	PID  uint16
	PRID uint32
}

// Stream is an elementary stream of a programme.
type Stream struct {
	Type uint8
	PID  uint16
}

// CAPMT is a parsed ca_pmt with the hosts' private descriptors resolved.
type CAPMT struct {
	ListManagement uint8
	Program        uint16
	Version        uint8
	CmdID          uint8
	Adapter        uint8
	Demux          uint8
	CAMask         uint32
	PMTPID         uint16
	Namespace      uint32
	TSID, ONID     uint16
	ServiceTypes   uint32
	Streams        []Stream
	ECM            []ECMStream
	// NoECM lists CA descriptors without a usable ECM PID (0x1FFF or 0):
	// BISS feeds and enigma2's stand-in descriptors for services whose
	// PMT it has not read. PID is 0x1FFF in each.
	NoECM []ECMStream
}

// ParseOptions choose how ambiguous descriptors are read.
type ParseOptions struct {
	// BoxEnigma reads descriptor 0x82 as enigma2 writes it (descramble
	// demux mask, read demux) and trusts ES-level cmd ids; otherwise 0x82
	// is read as PC hosts write it (demux, adapter).
	BoxEnigma bool
}

func capmtErr(off int, field, format string, args ...any) error {
	return &ProtocolError{Offset: int64(off), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ParseCAPMT parses a CA PMT body (the bytes after `9F 80 32 <length>`).
// Error offsets are relative to body. p's slices are reused.
func ParseCAPMT(body []byte, opt ParseOptions, p *CAPMT) error {
	streams, ecm, noECM := p.Streams[:0], p.ECM[:0], p.NoECM[:0]
	*p = CAPMT{Streams: streams, ECM: ecm, NoECM: noECM, CmdID: CmdOKDescrambling, CAMask: 1}
	if len(body) < 6 {
		return capmtErr(0, "ca_pmt header", "%d bytes, need 6", len(body))
	}
	p.ListManagement = body[0]
	if p.ListManagement > ListUpdate {
		return capmtErr(0, "ca_pmt_list_management", "value 0x%02X is not 0-5", body[0])
	}
	p.Program = binary.BigEndian.Uint16(body[1:])
	p.Version = body[3] >> 1 & 0x1F
	pil := int(binary.BigEndian.Uint16(body[4:]) & 0x0FFF)
	if 6+pil > len(body) {
		return capmtErr(4, "program_info_length", "%d runs past the end (%d bytes left)", pil, len(body)-6)
	}
	var id identity
	if pil > 0 {
		p.CmdID = body[6]
		if err := p.parseDescriptors(body[7:6+pil], 7, opt, &id, true); err != nil {
			return err
		}
	}
	for off := 6 + pil; off < len(body); {
		if off+5 > len(body) {
			return capmtErr(off, "elementary stream", "%d bytes left, need 5", len(body)-off)
		}
		st := Stream{Type: body[off], PID: binary.BigEndian.Uint16(body[off+1:]) & 0x1FFF}
		eil := int(binary.BigEndian.Uint16(body[off+3:]) & 0x0FFF)
		off += 5
		if off+eil > len(body) {
			return capmtErr(off-2, "ES_info_length", "%d runs past the end (%d bytes left)", eil, len(body)-off)
		}
		if len(p.Streams) < MaxStreams {
			p.Streams = append(p.Streams, st)
		}
		d, doff := body[off:off+eil], off
		// The ES-level cmd id is only trusted from enigma2; otherwise a
		// first byte ≤ 01 is a cmd id (descriptor tags 02-04 exist).
		if len(d) > 0 && (opt.BoxEnigma || d[0] <= 0x01) {
			d, doff = d[1:], doff+1
		}
		if err := p.parseDescriptors(d, doff, opt, &id, false); err != nil {
			return err
		}
		off += eil
	}
	p.resolve(&id, opt)
	return nil
}

// identity collects the private descriptors before they are resolved.
type identity struct {
	has82, has83, has86, has87 bool
	d82                        [2]byte
	adapter, demux, ca         uint8
}

func (p *CAPMT) parseDescriptors(d []byte, base int, opt ParseOptions, id *identity, programLevel bool) error {
	for i := 0; i < len(d); {
		if i+2 > len(d) {
			return capmtErr(base+i, "descriptor", "tag without length at end of loop")
		}
		tag, l := d[i], int(d[i+1])
		if i+2+l > len(d) {
			return capmtErr(base+i+1, fmt.Sprintf("descriptor 0x%02X length", tag), "%d runs past the end (%d bytes left)", l, len(d)-i-2)
		}
		v := d[i+2 : i+2+l]
		if err := p.descriptor(tag, v, base+i, id, programLevel); err != nil {
			return err
		}
		i += 2 + l
	}
	return nil
}

func (p *CAPMT) descriptor(tag byte, v []byte, off int, id *identity, programLevel bool) error {
	short := func(n int) error {
		if len(v) < n {
			return capmtErr(off+1, fmt.Sprintf("descriptor 0x%02X length", tag), "%d, need %d", len(v), n)
		}
		return nil
	}
	if tag == 0x09 {
		if err := short(4); err != nil {
			return err
		}
		p.caDescriptor(v)
		return nil
	}
	if !programLevel {
		return nil
	}
	switch tag {
	case 0x81:
		if err := short(8); err != nil {
			return err
		}
		p.Namespace = binary.BigEndian.Uint32(v)
		p.TSID = binary.BigEndian.Uint16(v[4:])
		p.ONID = binary.BigEndian.Uint16(v[6:])
	case 0x82:
		if err := short(2); err != nil {
			return err
		}
		id.has82, id.d82 = true, [2]byte{v[0], v[1]}
	case 0x83:
		if err := short(1); err != nil {
			return err
		}
		id.has83, id.adapter = true, v[0]
	case 0x84:
		if err := short(2); err != nil {
			return err
		}
		p.PMTPID = binary.BigEndian.Uint16(v) & 0x1FFF
	case 0x85:
		if err := short(4); err != nil {
			return err
		}
		p.ServiceTypes = binary.BigEndian.Uint32(v)
	case 0x86:
		if err := short(1); err != nil {
			return err
		}
		id.has86, id.demux = true, v[0]
	case 0x87:
		if err := short(1); err != nil {
			return err
		}
		id.has87, id.ca = true, v[0]
	}
	return nil
}

// resolve applies OSCam's identity rules: defaults adapter 0, demux 0, mask
// 1; 0x82 by box type; then 0x83, 0x86 and 0x87 as authoritative.
func (p *CAPMT) resolve(id *identity, opt ParseOptions) {
	if id.has82 {
		if opt.BoxEnigma {
			p.CAMask, p.Demux = uint32(id.d82[0]), id.d82[1]
		} else {
			p.Demux, p.Adapter = id.d82[0], id.d82[1]
		}
	}
	if id.has83 {
		p.Adapter = id.adapter
	}
	if id.has86 {
		p.Demux = id.demux
		p.CAMask = 1 << (id.demux & 31)
	}
	if id.has87 {
		p.CAMask = 1 << (id.ca & 31)
	}
}

// caDescriptor adds the ECM PIDs of a CA descriptor body (CAID, PID,
// private bytes), extracting the provider per system as in spec §1.4.
func (p *CAPMT) caDescriptor(v []byte) {
	caid := binary.BigEndian.Uint16(v)
	pid := binary.BigEndian.Uint16(v[2:]) & 0x1FFF
	priv := v[4:]
	if caid>>8 == 0x01 && len(priv) >= 15 {
		// Seca: one ECM PID per provider, 15-byte entries pid:2 provider:2.
		for i := 0; i+15 <= len(priv); i += 15 {
			p.addECM(caid, binary.BigEndian.Uint16(priv[i:])&0x1FFF, uint32(binary.BigEndian.Uint16(priv[i+2:])))
		}
		return
	}
	var prid uint32
	switch {
	case caid>>8 == 0x05 && len(v) == 15 && v[10] == 0x14:
		prid = (uint32(v[12])<<16 | uint32(v[13])<<8 | uint32(v[14])) & 0xFFFFF0
	case caid>>8 == 0x18 && len(v) == 7:
		prid = uint32(binary.BigEndian.Uint16(v[5:]))
	case (caid>>8 == 0x4A || caid == 0x2710) && len(v) >= 5:
		prid = uint32(v[4])
	}
	p.addECM(caid, pid, prid)
}

func (p *CAPMT) addECM(caid, pid uint16, prid uint32) {
	if caid == 0 {
		return
	}
	list := &p.ECM
	if pid == NoECMPID || pid == 0 {
		pid, list = NoECMPID, &p.NoECM
	}
	e := ECMStream{CAID: caid, PID: pid, PRID: prid}
	for _, x := range *list {
		if x == e {
			return
		}
	}
	if len(*list) < MaxECMPIDs {
		*list = append(*list, e)
	}
}

// NoECMPID is the ECM PID of a CA descriptor that names no ECM stream.
const NoECMPID = 0x1FFF

// IsBISS reports whether caid is BISS (2600 BISS-1, 2602 BISS-E): fixed
// keys, no ECMs, solved from the CA PMT at once.
func IsBISS(caid uint16) bool { return caid == 0x2600 || caid == 0x2602 }

// ParseCAStop parses the body of a `9F 80 3F` stop message and returns the
// client demux to stop (0xFF = all programmes of the connection).
func ParseCAStop(body []byte) (uint8, error) {
	if len(body) < 4 || body[0] != 0x83 || body[1] != 0x02 {
		return 0, capmtErr(0, "CA stop", "body % X is not 83 02 00 <demux>", body)
	}
	return body[3], nil
}

// AppendCAPMT encodes p as a complete `9F 80 32` message (tag, ASN.1 length
// and body), writing the private descriptors enigma2-style: 0x81 when
// TSID/ONID/namespace are set, 0x83 when Adapter > 0, 0x84, 0x86 and the
// CA descriptors at programme level. It is what `satd zap` sends.
func AppendCAPMT(b []byte, version int, msgid uint32, p *CAPMT) []byte {
	var body [MaxCAPMTLen]byte
	d := body[:0]
	d = append(d, p.ListManagement)
	d = binary.BigEndian.AppendUint16(d, p.Program)
	d = append(d, 0xC1|p.Version<<1&0x3E)
	d = append(d, 0, 0) // program_info_length, patched below
	d = append(d, p.CmdID)
	if p.Namespace != 0 || p.TSID != 0 || p.ONID != 0 {
		d = append(d, 0x81, 8)
		d = binary.BigEndian.AppendUint32(d, p.Namespace)
		d = binary.BigEndian.AppendUint16(d, p.TSID)
		d = binary.BigEndian.AppendUint16(d, p.ONID)
	}
	if p.Adapter > 0 {
		d = append(d, 0x83, 1, p.Adapter)
	}
	d = append(d, 0x86, 1, p.Demux)
	d = append(d, 0x84, 2, byte(p.PMTPID>>8), byte(p.PMTPID))
	for _, e := range p.ECM {
		d = append(d, 0x09, 4, byte(e.CAID>>8), byte(e.CAID), 0xE0|byte(e.PID>>8), byte(e.PID))
	}
	pil := len(d) - 6
	d[4], d[5] = 0xF0|byte(pil>>8), byte(pil)
	for _, s := range p.Streams {
		d = append(d, s.Type, 0xE0|byte(s.PID>>8), byte(s.PID), 0xF0, 0)
	}
	b = appendPrefix(b, version, msgid)
	b = append(b, 0x9F, 0x80, 0x32)
	b = AppendASN1Length(b, len(d))
	return append(b, d...)
}
