package zap

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/dvbapi"
)

// stubServer is a scripted softcam: it answers the handshake, sets a
// filter for the first CA PMT only (answerZaps of them), and answers
// every ECM with a fixed pair and an ECM_INFO tagged msgid 0, as OSCam
// does in protocol 3.
func stubServer(t *testing.T, version, answerZaps int) Connector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f := dvbapi.NewFramer()
		var m dvbapi.ClientMessage
		var cm dvbapi.CAPMT
		zaps, pair := 0, [16]byte{1, 2, 3, 6, 4, 5, 6, 15, 1, 2, 3, 6, 4, 5, 6, 15}
		var out []byte
		stop := func(out []byte, msgid uint32, cm *dvbapi.CAPMT) []byte {
			if len(cm.ECM) == 0 {
				return out
			}
			out = dvbapi.AppendDmxStop(out, version, msgid, 0, 0, 0, cm.ECM[0].PID)
			for _, s := range cm.Streams {
				out = dvbapi.AppendSetPID(out, version, msgid, 0, s.PID, -1)
			}
			return out
		}
		for f.Fill(c) == nil {
			for {
				ok, err := f.Next(true, &m)
				if err != nil || !ok {
					break
				}
				switch m.Op {
				case dvbapi.OpClientInfo:
					out = dvbapi.AppendServerInfo(out, version, 3, "stub")
				case dvbapi.OpCAPMT:
					if dvbapi.ParseCAPMT(m.Body, dvbapi.ParseOptions{}, &cm) != nil || len(cm.ECM) == 0 {
						continue
					}
					if cm.CmdID == dvbapi.CmdNotSelected {
						out = stop(out, m.MsgID, &cm)
						continue
					}
					if zaps++; zaps > answerZaps {
						continue // this zap never gets a filter
					}
					fl := dvbapi.Filter{PID: cm.ECM[0].PID, Timeout: 3000}
					fl.Filter[0], fl.Mask[0] = 0x80, 0xF0
					out = dvbapi.AppendSetFilter(out, version, m.MsgID, &fl)
					for _, s := range cm.Streams {
						out = dvbapi.AppendSetPID(out, version, m.MsgID, 0, s.PID, 0)
					}
				case dvbapi.OpCAStop:
					out = stop(out, m.MsgID, &cm)
				case dvbapi.OpFilterData:
					out = dvbapi.AppendSetDescr(out, version, m.MsgID, 0, 0, 0, pair[:8])
					out = dvbapi.AppendSetDescr(out, version, m.MsgID, 0, 0, 1, pair[8:])
					info := dvbapi.ECMInfo{SID: 1, CAID: 0x0B00, PID: 0x200, Reader: "stub"}
					out = dvbapi.AppendECMInfo(out, version, 0, &info)
				}
			}
			if len(out) > 0 {
				c.Write(out)
				out = out[:0]
			}
		}
	}()
	return Dial("tcp", l.Addr().String())
}

const stubScenario = `protocol = 3
crypto_period = "10s"
ecm_interval = "50ms"
cw_deadline = "300ms"
[[service]]
name = "a"
sid = 1
pmt_pid = 0x100
pids = [0x101]
  [[service.ecm]]
  caid = 0x0B00
  pid = 0x200
[[step]]
do = "zap"
service = "a"
hold = "500ms"
[[step]]
do = "not_selected"
service = "a"
hold = "100ms"
[[step]]
do = "zap"
service = "a"
hold = "3500ms"
`

// TestReZapWithoutCWFails: a service whose first zap got its CW but whose
// re-zap gets no filter and no CW fails; ECM_INFO with msgid 0 in
// protocol 3 is accepted (OSCam sends it).
func TestReZapWithoutCWFails(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a 4 s scenario")
	}
	for _, tc := range []struct {
		answerZaps int
		ok         bool
	}{{2, true}, {1, false}} {
		sc, err := Parse("stub", []byte(stubScenario))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		rep, err := Run(ctx, sc, stubServer(t, 3, tc.answerZaps))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		rep.Print(&b)
		if rep.OK() != tc.ok || len(rep.Violations) > 0 {
			t.Errorf("stub answering %d zaps: ok=%v, want %v:\n%s", tc.answerZaps, rep.OK(), tc.ok, b.String())
		}
		if !tc.ok && rep.Services[0].Late == 0 {
			t.Errorf("unanswered re-zap not counted late:\n%s", b.String())
		}
	}
}
