package dvbapi

import (
	"errors"
	"testing"
)

func TestParseCAPMTDescriptors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		opt     ParseOptions
		check   func(t *testing.T, p *CAPMT)
		errOff  int64
		errText string
	}{
		{name: "worked example", body: exampleCAPMT[len("9F 80 32 2B"):], check: func(t *testing.T, p *CAPMT) {
			if p.Program != 0x1234 || p.PMTPID != 0x100 || p.TSID != 1 || p.ONID != 1 || p.CmdID != CmdOKDescrambling || p.ListManagement != ListOnly {
				t.Errorf("identity %+v", p)
			}
			if len(p.ECM) != 1 || p.ECM[0] != (ECMStream{CAID: 0x0B00, PID: 0x200}) || len(p.Streams) != 2 || p.Streams[1].PID != 0x102 {
				t.Errorf("pids %+v %+v", p.ECM, p.Streams)
			}
		}},
		{name: "tvheadend universal 0x82 = 0, adapter", body: "03 00 01 C1 F0 05 01 82 02 00 02 02 E1 01 F0 00", check: func(t *testing.T, p *CAPMT) {
			if p.Adapter != 2 || p.Demux != 0 {
				t.Errorf("adapter %d demux %d", p.Adapter, p.Demux)
			}
		}},
		{name: "tvheadend index 0x82 + 0x83 authoritative", body: "03 00 01 C1 F0 08 01 82 02 04 00 83 01 02", check: func(t *testing.T, p *CAPMT) {
			if p.Adapter != 2 {
				t.Errorf("adapter %d, want 2 from 0x83", p.Adapter)
			}
		}},
		{name: "enigma2 0x82 mask, demux; 0x86 and 0x87 override", body: "03 00 01 C1 F0 0B 01 82 02 03 01 86 01 02 87 01 01", opt: ParseOptions{BoxEnigma: true}, check: func(t *testing.T, p *CAPMT) {
			if p.Demux != 2 || p.CAMask != 2 {
				t.Errorf("demux %d mask %x", p.Demux, p.CAMask)
			}
		}},
		{name: "ES-level CA descriptor with cmd id, duplicates and PID 1FFF dropped", body: "03 00 01 C1 F0 0D 01 09 04 0B 00 E2 00 09 04 09 63 FF FF 02 E1 01 F0 0D 01 09 04 0B 00 E2 00 09 04 18 10 E3 00", check: func(t *testing.T, p *CAPMT) {
			if len(p.ECM) != 2 || p.ECM[1].CAID != 0x1810 {
				t.Errorf("ecm %+v", p.ECM)
			}
		}},
		{name: "ES descriptor 0x0A not eaten as cmd id", body: "03 00 01 C1 F0 01 01 03 E1 02 F0 06 0A 04 65 6E 67 00", check: func(t *testing.T, p *CAPMT) {
			if len(p.Streams) != 1 {
				t.Errorf("streams %+v", p.Streams)
			}
		}},
		{name: "Seca providers", body: "03 00 01 C1 F0 34 01 09 31 01 00 E0 10" +
			" 00 21 00 6A 00 00 00 00 00 00 00 00 00 00 00" +
			" 00 22 00 70 00 00 00 00 00 00 00 00 00 00 00" +
			" 00 23 00 71 00 00 00 00 00 00 00 00 00 00 00", check: func(t *testing.T, p *CAPMT) {
			if len(p.ECM) != 3 || p.ECM[1] != (ECMStream{CAID: 0x0100, PID: 0x22, PRID: 0x70}) {
				t.Errorf("ecm %+v", p.ECM)
			}
		}},
		{name: "Viaccess provider", body: "03 00 01 C1 F0 12 01 09 0F 05 00 E0 20 00 00 00 00 00 00 14 00 03 24 57", check: func(t *testing.T, p *CAPMT) {
			if len(p.ECM) != 1 || p.ECM[0].PRID != 0x032450 {
				t.Errorf("ecm %+v", p.ECM)
			}
		}},
		{name: "Nagra provider", body: "03 00 01 C1 F0 0A 01 09 07 18 01 E0 30 00 09 01", check: func(t *testing.T, p *CAPMT) {
			if p.ECM[0].PRID != 0x0901 {
				t.Errorf("ecm %+v", p.ECM)
			}
		}},
		{name: "DRE provider", body: "03 00 01 C1 F0 08 01 09 05 4A E0 E0 40 11", check: func(t *testing.T, p *CAPMT) {
			if p.ECM[0].PRID != 0x11 {
				t.Errorf("ecm %+v", p.ECM)
			}
		}},
		{name: "bad list management", body: "07 00 01 C1 F0 00", errOff: 0, errText: "ca_pmt_list_management"},
		{name: "program_info_length past end", body: "03 00 01 C1 F0 20 01", errOff: 4, errText: "program_info_length"},
		{name: "descriptor overruns", body: "03 00 01 C1 F0 04 01 09 08 0B", errOff: 8, errText: "descriptor 0x09 length"},
		{name: "short CA descriptor", body: "03 00 01 C1 F0 04 01 09 02 0B 00", errOff: 8, errText: "descriptor 0x09 length"},
		{name: "ES_info_length past end", body: "03 00 01 C1 F0 01 01 02 E1 01 F0 09 00", errOff: 10, errText: "ES_info_length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p CAPMT
			err := ParseCAPMT(h(tc.body), tc.opt, &p)
			if tc.errText != "" {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Field != tc.errText || pe.Offset != tc.errOff {
					t.Fatalf("err %v, want field %q at offset %d", err, tc.errText, tc.errOff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &p)
		})
	}
}

// TestFramingSplitAndMerged feeds two messages one byte at a time and then
// merged in one write: both decode identically; offsets name the stream.
func TestFramingSplitAndMerged(t *testing.T) {
	stream := append(h("FF FF 00 01 00 02 01 41"), h(exampleCAPMT)...)
	stream = append(stream, append(h("FF FF 00 00 00 00"), exampleECM(0x80)...)...)
	for _, chunk := range []int{1, 7, len(stream)} {
		f := NewFramer()
		var ops []uint32
		var m ClientMessage
		for i := 0; i < len(stream); i += chunk {
			f.Write(stream[i:min(i+chunk, len(stream))])
			for {
				ok, err := f.Next(true, &m)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				ops = append(ops, m.Op)
			}
		}
		if len(ops) != 3 || ops[0] != OpClientInfo || ops[1] != OpCAPMT || ops[2] != OpFilterData {
			t.Errorf("chunk %d: ops %X", chunk, ops)
		}
	}
	f := NewFramer()
	f.Write(stream[:8])
	f.Write(h("12 34 56 78"))
	var m ClientMessage
	f.Next(true, &m)
	_, err := f.Next(true, &m)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Offset != 8 || pe.Field != "opcode" {
		t.Errorf("unknown opcode error %v, want offset 8 field opcode", err)
	}
	// A5 framing is refused from a protocol 2 client.
	if _, err := SplitClientMessage(h("A5 00 00 00 01 FF FF 00 00"), false, &m); err == nil {
		t.Error("A5 frame accepted from a v2 client")
	}
	// Size bounds.
	if _, err := SplitClientMessage(h("9F 80 32 82 20 00"), true, &m); err == nil {
		t.Error("8 KiB CA PMT accepted")
	}
}

// TestServerMessagesRoundTrip checks that DecodeServerMessage reads what
// the encoders write, for every server→client message, framed and not.
func TestServerMessagesRoundTrip(t *testing.T) {
	f := Filter{Adapter: 1, Demux: 2, Num: 3, PID: 0x1234, Timeout: 3000, Flags: 4}
	f.Filter[0], f.Mask[0] = 0x80, 0xF0
	info := ECMInfo{Adapter: 1, SID: 2, CAID: 0x0B00, PID: 0x200, PRID: 5, TimeMs: 180, System: "Conax", Reader: "slot0", Source: "local", Protocol: "internal", Hops: 1}
	for _, v := range []int{2, 3} {
		var b []byte
		b = AppendServerInfo(b, v, 3, "satd")
		b = AppendSetFilter(b, v, 9, &f)
		b = AppendDmxStop(b, v, 9, 1, 2, 3, 0x1234)
		b = AppendSetPID(b, v, 9, 1, 0x101, -1)
		b = AppendSetDescr(b, v, 9, 1, 4, 1, cwOdd)
		b = AppendECMInfo(b, v, 9, &info)
		var m ServerMessage
		var got []ServerMessage
		for len(b) > 0 {
			n, err := DecodeServerMessage(b, v, &m)
			if err != nil || n == 0 {
				t.Fatalf("v%d: decode: n=%d err=%v", v, n, err)
			}
			got = append(got, m)
			b = b[n:]
		}
		if len(got) != 6 || got[0].Name != "satd" || got[1].Filter != f || got[2].Filter.PID != 0x1234 ||
			got[3].Index != -1 || got[3].PID != 0x101 || got[4].Parity != 1 || [8]byte(cwOdd) != got[4].CW || got[5].Info != info {
			t.Errorf("v%d: %+v", v, got)
		}
		if v == 3 && (got[1].MsgID != 9 || got[0].MsgID != 0) {
			t.Errorf("msgids %d %d", got[0].MsgID, got[1].MsgID)
		}
	}
}

func FuzzFraming(f *testing.F) {
	f.Add(h(exampleCAPMT), true)
	f.Add(append(h("FF FF 00 00 00 00"), exampleECM(0x80)...), false)
	f.Add(h("FF FF 00 01 00 03 07 456E69676D6132"), true)
	f.Add(h("A5 00 00 00 07 9F 80 3F 04 83 02 00 FF"), true)
	f.Add(h("9F 80 32 82 00 06 03 00 01 C1 F0 00"), false)
	f.Fuzz(func(t *testing.T, b []byte, allow bool) {
		fr := NewFramer()
		var m ClientMessage
		for len(b) > 0 {
			n, _ := fr.Write(b[:min(len(b), 997)])
			if n == 0 {
				return
			}
			b = b[n:]
			for {
				ok, err := fr.Next(allow, &m)
				if err != nil || !ok {
					break
				}
				if m.Op == OpCAPMT {
					var p CAPMT
					ParseCAPMT(m.Body, ParseOptions{}, &p)
				}
			}
		}
	})
}

func FuzzParseCAPMT(f *testing.F) {
	f.Add(h(exampleCAPMT)[4:], false)
	f.Add(h("03 00 01 C1 F0 0B 01 82 02 03 01 86 01 02 87 01 01"), true)
	f.Add(h("03 00 01 C1 F0 0D 01 09 04 0B 00 E2 00 09 04 09 63 FF FF 02 E1 01 F0 0D 01 09 04 0B 00 E2 00 09 04 18 10 E3 00"), false)
	f.Fuzz(func(t *testing.T, b []byte, enigma bool) {
		var p CAPMT
		if err := ParseCAPMT(b, ParseOptions{BoxEnigma: enigma}, &p); err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > int64(len(b)) {
				t.Fatalf("error without a valid offset: %v", err)
			}
			return
		}
		if len(p.Streams) > MaxStreams || len(p.ECM) > MaxECMPIDs {
			t.Fatalf("limits exceeded: %d streams %d ECM PIDs", len(p.Streams), len(p.ECM))
		}
	})
}

// FuzzHandle feeds arbitrary messages to a connection without transport.
func FuzzHandle(f *testing.F) {
	f.Add(append(h("FF FF 00 01 00 02 01 41"), h(exampleCAPMT)...))
	f.Add(append(h("FF FF 00 01 00 03 01 41 A5 00 00 00 07"), h(exampleCAPMT)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := testConn(t, &fixedSolver{cws: [][16]byte{examplePair(cwEven, cwOdd)}})
		fr := NewFramer()
		fr.Write(b[:min(len(b), framerSize)])
		var m ClientMessage
		for {
			ok, err := fr.Next(c.allowFrame(), &m)
			if err != nil || !ok || c.handle(&m) != nil {
				break
			}
		}
		c.close(nil)
	})
}
