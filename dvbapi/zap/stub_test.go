package zap

import (
	"context"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"satd.dev/satd/dvbapi"
)

// stubServer is a scripted softcam: it answers the handshake, sets a
// filter for the first CA PMT only (answerZaps of them), and answers
// every ECM with a fixed pair and an ECM_INFO tagged msgid 0, as OSCam
// does in protocol 3, after answerDelay. It talks over net.Pipe, so a test can run the
// scenario inside a synctest bubble on the bubble's fake clock.
func stubServer(version, answerZaps int, answerDelay time.Duration) Connector {
	return func(ctx context.Context) (net.Conn, error) {
		client, c := net.Pipe()
		go serveStub(c, version, answerZaps, answerDelay)
		return client, nil
	}
}

// serveStub plays the stub softcam on c until the client closes it.
func serveStub(c net.Conn, version, answerZaps int, answerDelay time.Duration) {
	defer c.Close()
	closed := make(chan struct{}) // ends the delayed answers
	defer close(closed)
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
				var ans []byte
				ans = dvbapi.AppendSetDescr(ans, version, m.MsgID, 0, 0, 0, pair[:8])
				ans = dvbapi.AppendSetDescr(ans, version, m.MsgID, 0, 0, 1, pair[8:])
				info := dvbapi.ECMInfo{SID: 1, CAID: 0x0B00, PID: 0x200, Reader: "stub"}
				ans = dvbapi.AppendECMInfo(ans, version, 0, &info)
				if answerDelay == 0 {
					out = append(out, ans...)
					continue
				}
				// A slow card: answered later, while the stub reads on.
				go func() {
					select {
					case <-time.After(answerDelay):
						c.Write(ans)
					case <-closed:
					}
				}()
			}
		}
		if len(out) > 0 {
			c.Write(out)
			out = out[:0]
		}
	}
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
	for _, tc := range []struct {
		answerZaps int
		ok         bool
	}{{2, true}, {1, false}} {
		sc, err := Parse("stub", []byte(stubScenario))
		if err != nil {
			t.Fatal(err)
		}
		// The scenario's deadlines (SERVER_INFO within 3 s, cw_deadline)
		// run on the bubble's fake clock: a loaded machine cannot make a
		// CW late, and the 4 s scenario takes no real time.
		var rep *Report
		synctest.Test(t, func(t *testing.T) {
			rep, err = Run(t.Context(), sc, stubServer(3, tc.answerZaps, 0))
		})
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

// TestPatienceTurnsDeadlinesIntoHangGuards: a softcam that answers every ECM
// after 4 s misses the 300 ms cw_deadline (plus 3 s for the first zap);
// with Patience the same run passes, and the 4 s is reported as the
// latency figure rather than judged. Both run on a synctest fake clock.
func TestPatienceTurnsDeadlinesIntoHangGuards(t *testing.T) {
	const scenario = `protocol = 3
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
hold = "6s"
`
	for _, patience := range []time.Duration{0, time.Minute} {
		sc, err := Parse("slow stub", []byte(scenario))
		if err != nil {
			t.Fatal(err)
		}
		sc.Patience = patience
		var rep *Report
		synctest.Test(t, func(t *testing.T) {
			rep, err = Run(t.Context(), sc, stubServer(3, 1, 4*time.Second))
		})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		rep.Print(&b)
		s := rep.Services[0]
		if want := patience > 0; rep.OK() != want || (s.Late == 0) != want {
			t.Errorf("patience %v: ok=%v with %d late, want ok=%v:\n%s", patience, rep.OK(), s.Late, want, b.String())
		}
		if patience > 0 && s.FirstCW < 4*time.Second {
			t.Errorf("patience %v: first CW after %v, want the stub's 4 s reported:\n%s", patience, s.FirstCW, b.String())
		}
	}
}
