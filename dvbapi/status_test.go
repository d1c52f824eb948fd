package dvbapi_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"satd.dev/satd/dvbapi"
	"satd.dev/satd/dvbapi/zap"
)

// servicesScenario is one protocol-2 client on adapter 1, demux 2, whose
// first ECM PID (CAID 0500) the test solver refuses, so the service runs on
// its second (0B00) with one failed ECM behind it. The client name carries
// a control character, which the snapshot must not pass on.
const servicesScenario = `
protocol = 2
client_name = "Tvheadend\u0007 4.3-test"
crypto_period = "300ms"
ecm_interval = "50ms"
cw_deadline = "1s"
verify = "derived"

[[service]]
name = "fallback"
sid = 0x3001
pmt_pid = 0x0120
pids = [0x0121]
tsid = 7
onid = 8
adapter = 1
demux = 2
  [[service.ecm]]
  caid = 0x0500
  pid = 0x0400
  [[service.ecm]]
  caid = 0x0B00
  pid = 0x0401

[[step]]
do = "zap"
service = "fallback"
hold = "1500ms"
`

// pollServices calls Services every few milliseconds (the Status page's
// reads racing the ECM path under -race) until stop closes, and returns
// the snapshot of sid with the most ECMs answered.
func pollServices(s *dvbapi.Server, sid uint16, stop <-chan struct{}) (best dvbapi.Service, polls int) {
	var buf []dvbapi.Service
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		buf = s.Services(buf)
		polls++
		for _, sv := range buf {
			if sv.SID == sid && sv.ECMOK >= best.ECMOK {
				best = sv
			}
		}
		select {
		case <-stop:
			return best, polls
		case <-tick.C:
		}
	}
}

// TestServicesSnapshot runs a real client over TCP and checks what
// Server.Services reports while the service is descrambled, and that it
// forgets the service once the client is gone.
func TestServicesSnapshot(t *testing.T) {
	skipShort(t)
	s, addr := tcpServer(t, nil)
	if got := s.Services(nil); len(got) != 0 {
		t.Fatalf("services before any client: %+v", got)
	}
	sc, err := zap.Parse("services scenario", []byte(servicesScenario))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		best  dvbapi.Service
		polls int
	)
	wg.Add(1)
	go func() { defer wg.Done(); best, polls = pollServices(s, 0x3001, stop) }()
	rep := runZap(t, sc, zap.Dial("tcp", addr))
	close(stop)
	wg.Wait()
	checkReport(t, rep)
	t.Logf("%d snapshots; fullest: %+v", polls, best)

	want := dvbapi.Service{Client: "Tvheadend  4.3-test", Protocol: 2, Adapter: 1, Demux: 2, SID: 0x3001, PMTPID: 0x0120,
		TSID: 7, ONID: 8, State: "descrambling", CAID: 0x0B00, ECMPID: 0x0401, Reader: "testecm", System: "Test", ECMTime: time.Millisecond}
	got := best
	got.Peer, got.Conn, got.LastECM, got.Since, got.ECMOK, got.ECMFailed = "", 0, time.Time{}, time.Time{}, 0, 0
	if got != want {
		t.Errorf("snapshot\n got %+v\nwant %+v (ignoring peer, times and counts)", got, want)
	}
	if best.ECMOK < 3 || best.ECMFailed < 1 {
		t.Errorf("ECM counts ok %d failed %d: want several found after the refused CAID 0500", best.ECMOK, best.ECMFailed)
	}
	if best.Peer == "" || best.Conn < 1 {
		t.Errorf("peer %q conn %d", best.Peer, best.Conn)
	}
	if best.Since.Before(start) || best.LastECM.Before(best.Since) || best.LastECM.After(time.Now()) {
		t.Errorf("since %v, last ECM %v: out of order (test started %v)", best.Since, best.LastECM, start)
	}

	// The client has gone: its programmes go with it.
	deadline := time.Now().Add(time.Minute) // a hang guard: it takes milliseconds
	for len(s.Services(nil)) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Services(nil); len(got) != 0 {
		t.Errorf("services after the client left: %+v", got)
	}
}

// TestServicesBeforeHandshake connects a raw client that sends its CA PMTs
// before CLIENT_INFO (OpenATV's order) while a zap client runs on another
// connection: the snapshot lists both, ordered by connection, names the raw
// client by its address until it introduces itself, and follows a CA PMT
// that moves the programme off its ECM PID.
func TestServicesBeforeHandshake(t *testing.T) {
	skipShort(t)
	s, addr := tcpServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go io.Copy(io.Discard, raw)
	pmt := dvbapi.CAPMT{ListManagement: dvbapi.ListOnly, Program: 0x0042, CmdID: dvbapi.CmdOKDescrambling, PMTPID: 0x0050,
		ECM: []dvbapi.ECMStream{{CAID: 0x0B00, PID: 0x0600}}, Streams: []dvbapi.Stream{{Type: 2, PID: 0x0051}}}
	if _, err := raw.Write(dvbapi.AppendCAPMT(nil, 0, 0, &pmt)); err != nil {
		t.Fatal(err)
	}
	waitService(ctx, t, s, func(sv dvbapi.Service) bool { return sv.SID == 0x0042 })

	sc := loadScenario(t, "tvheadend.toml")
	done := make(chan struct{})
	go func() { defer close(done); zap.Run(ctx, sc, zap.Dial("tcp", addr)) }()
	defer func() { <-done }()
	defer cancel()
	got := waitService(ctx, t, s, func(sv dvbapi.Service) bool { return sv.Client == sc.ClientName })
	first := got[0]
	if first.SID != 0x0042 || first.Client != first.Peer || first.Protocol != 0 || first.State != "searching" ||
		first.CAID != 0x0B00 || first.ECMPID != 0x0600 || first.Reader != "" || first.ECMOK != 0 {
		t.Errorf("client without handshake: %+v", first)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Conn > got[i].Conn {
			t.Errorf("snapshot not ordered by connection: %+v", got)
		}
	}

	if _, err := raw.Write(dvbapi.AppendClientInfo(nil, 2, "VDR-plugin")); err != nil {
		t.Fatal(err)
	}
	waitService(ctx, t, s, func(sv dvbapi.Service) bool { return sv.SID == 0x0042 && sv.Client == "VDR-plugin" && sv.Protocol == 2 })
	pmt.ListManagement, pmt.ECM = dvbapi.ListUpdate, []dvbapi.ECMStream{{CAID: 0x0100, PID: 0x0700}}
	if _, err := raw.Write(dvbapi.AppendCAPMT(nil, 2, 0, &pmt)); err != nil {
		t.Fatal(err)
	}
	waitService(ctx, t, s, func(sv dvbapi.Service) bool {
		return sv.SID == 0x0042 && sv.CAID == 0x0100 && sv.ECMPID == 0x0700
	})
}

// waitService polls Services until one entry satisfies ok and returns
// that snapshot, or fails the test when ctx ends.
func waitService(ctx context.Context, t *testing.T, s *dvbapi.Server, ok func(dvbapi.Service) bool) []dvbapi.Service {
	t.Helper()
	var got []dvbapi.Service
	for ctx.Err() == nil {
		got = s.Services(got)
		for _, sv := range got {
			if ok(sv) {
				return got
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no such service; last snapshot %+v", got)
	return nil
}
