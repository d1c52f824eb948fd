package dvbapi

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeDevices holds the state of /dev/dvb/adapterN/{demuxM,caM}: armed
// filters, PID→index map and descrambler keys; tests deliver sections with
// deliver.
type fakeDevices struct {
	mu      sync.Mutex
	demuxes []*fakeDemux
	pids    map[uint16]int32
	keys    map[[2]uint32][8]byte
	opened  []string
}

type fakeDemux struct {
	d        *fakeDevices
	f        Filter
	sections chan []byte
	closed   chan struct{}
	once     sync.Once
}

func (d *fakeDevices) OpenDemux(adapter, demux uint8) (DemuxHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := &fakeDemux{d: d, sections: make(chan []byte, 8), closed: make(chan struct{})}
	d.demuxes = append(d.demuxes, x)
	d.opened = append(d.opened, "demux")
	return x, nil
}

func (d *fakeDevices) OpenCA(adapter, ca uint8) (CAHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opened = append(d.opened, "ca")
	return (*fakeCA)(d), nil
}

func (x *fakeDemux) SetFilter(f *Filter) error {
	x.d.mu.Lock()
	x.f = *f
	x.d.mu.Unlock()
	return nil
}

func (x *fakeDemux) ReadSection(b []byte) (int, error) {
	select {
	case s := <-x.sections:
		return copy(b, s), nil
	case <-x.closed:
		return 0, errors.New("closed")
	}
}

func (x *fakeDemux) Close() error { x.once.Do(func() { close(x.closed) }); return nil }

// deliver hands section to every open demux whose filter matches.
func (d *fakeDevices) deliver(pid uint16, section []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.demuxes {
		select {
		case <-x.closed:
			continue
		default:
		}
		if x.f.PID == pid && x.f.Matches(section) {
			x.sections <- section
		}
	}
}

type fakeCA fakeDevices

func (c *fakeCA) SetPID(pid uint16, index int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pids[pid] = index
	return nil
}

func (c *fakeCA) SetDescr(index, parity uint32, cw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[[2]uint32{index, parity}] = [8]byte(cw)
	return nil
}

func (c *fakeCA) Close() error { return nil }

// TestLocalDeviceMode: an enigma2 CA PMT on a local connection makes satd
// filter the ECM PID on the demux device and program the CA device; nothing
// but SERVER_INFO goes back on the socket; closing disables the PIDs.
func TestLocalDeviceMode(t *testing.T) {
	devs := &fakeDevices{pids: map[uint16]int32{}, keys: map[[2]uint32][8]byte{}}
	srv := NewServer(Options{Solver: &fixedSolver{cws: [][16]byte{examplePair(cwEven, cwOdd), examplePair(cwEven2, cwOdd)}}, Devices: devs})
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(server, true); close(done) }()
	client.Write(h("FF FF 00 01 00 03 07 456E69676D6132"))
	buf := make([]byte, 64)
	client.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard
	n, _ := client.Read(buf)
	expectBytes(t, "SERVER_INFO", buf[:n], h("A5 00 00 00 00 FF FF 00 02 00 03 04 73617464"))
	client.Write(h("A5 00 00 00 07" + exampleCAPMT))
	waitFor(t, "ECM filter on the demux", func() bool {
		devs.mu.Lock()
		defer devs.mu.Unlock()
		return len(devs.demuxes) == 1 && devs.demuxes[0].f.PID == 0x200
	})
	devs.deliver(0x200, exampleECM(0x80))
	waitFor(t, "CWs on the CA device", func() bool {
		devs.mu.Lock()
		defer devs.mu.Unlock()
		return devs.pids[0x101] == 0 && devs.pids[0x102] == 0 && devs.keys[[2]uint32{0, 0}] == [8]byte(cwEven) && devs.keys[[2]uint32{0, 1}] == [8]byte(cwOdd)
	})
	waitFor(t, "re-armed to odd parity", func() bool {
		devs.mu.Lock()
		defer devs.mu.Unlock()
		return devs.demuxes[0].f.Filter[0] == 0x81 && devs.demuxes[0].f.Mask[0] == 0xFF
	})
	devs.deliver(0x200, exampleECM(0x81))
	waitFor(t, "new even CW", func() bool {
		devs.mu.Lock()
		defer devs.mu.Unlock()
		return devs.keys[[2]uint32{0, 0}] == [8]byte(cwEven2)
	})
	client.Close()
	<-done
	devs.mu.Lock()
	defer devs.mu.Unlock()
	if devs.pids[0x101] != -1 || devs.pids[0x102] != -1 {
		t.Errorf("PIDs not disabled on disconnect: %v", devs.pids)
	}
}

// waitFor polls cond until it holds. The minute is a hang guard, not a
// bound: what the tests wait for takes milliseconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hung: waiting for %s", what)
		}
	}
}
