package pcsc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// row builds one reader state row as pcscd lays it out.
func row(name string, events, state uint32, atr []byte, proto uint32) []byte {
	b := make([]byte, readerStateLen)
	copy(b, name)
	o := maxReaderName
	ne.PutUint32(b[o:], events)
	ne.PutUint32(b[o+4:], state)
	copy(b[o+12:], atr)
	ne.PutUint32(b[o+12+maxATR+3:], uint32(len(atr)))
	ne.PutUint32(b[o+12+maxATR+7:], proto)
	return b
}

func table(rows ...[]byte) []byte {
	b := make([]byte, maxReaders*readerStateLen)
	for i, r := range rows {
		copy(b[i*readerStateLen:], r)
	}
	return b
}

func TestDecodeReaderStates(t *testing.T) {
	if readerStateLen != 184 {
		t.Fatalf("READER_STATE is 184 bytes in pcsc-lite, got %d", readerStateLen)
	}
	st, err := decodeReaderStates(table(row("Virtual PCD 00 00", 3, statePresent|0x10, []byte{0x3B, 0x02, 0x14, 0x50}, protoT0), row("B", 1, stateAbsent, nil, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Name != "Virtual PCD 00 00" || !st[0].Present() || !bytes.Equal(st[0].ATR, []byte{0x3B, 0x02, 0x14, 0x50}) || st[0].Events != 3 || st[1].Present() {
		t.Errorf("states %+v", st)
	}
	bad := table(row("X", 0, statePresent, nil, 0))
	ne.PutUint32(bad[maxReaderName+12+maxATR+3:], 34)
	if _, err := decodeReaderStates(bad); !errors.Is(err, ErrProtocol) {
		t.Errorf("ATR length 34: %v", err)
	}
	if _, err := decodeReaderStates(bad[:100]); !errors.Is(err, ErrProtocol) {
		t.Errorf("short table: %v", err)
	}
}

func FuzzDecodeReaderStates(f *testing.F) {
	f.Add(table(row("R", 1, statePresent, []byte{0x3B, 0}, protoT1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < maxReaders*readerStateLen {
			b = append(b, make([]byte, maxReaders*readerStateLen-len(b))...)
		}
		st, err := decodeReaderStates(b[:maxReaders*readerStateLen])
		for _, s := range st {
			if err == nil && len(s.ATR) > maxATR {
				t.Fatalf("ATR of %d bytes", len(s.ATR))
			}
		}
	})
}

func TestPick(t *testing.T) {
	st := []ReaderState{{Name: "Virtual PCD 00 00"}, {Name: "Virtual PCD 00 01"}, {Name: "Gemalto USB 00 00"}}
	for sel, want := range map[string]string{"1": "Virtual PCD 00 01", "Gemalto": "Gemalto USB 00 00", "Virtual PCD 00 00": "Virtual PCD 00 00"} {
		if got, err := pick(st, sel); err != nil || got.Name != want {
			t.Errorf("%q: %q %v, want %q", sel, got.Name, err, want)
		}
	}
	for _, sel := range []string{"3", "Virtual", "Omnikey"} {
		if _, err := pick(st, sel); !errors.Is(err, ErrNoReader) || !strings.Contains(err.Error(), "Gemalto USB 00 00") {
			t.Errorf("%q: %v, want ErrNoReader listing the readers", sel, err)
		}
	}
}

// fakeDaemon answers version and context, then runs serve on the
// connection.
func fakeDaemon(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pcscd.comm")
	l, err := net.Listen("unix", path)
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
		for range 2 { // version, establish context
			var h [headerLen + 12]byte
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return
			}
			c.Write(h[headerLen:])
		}
		serve(c)
	}()
	return path
}

// TestTransmitAnswerBounded: a daemon announcing more answer bytes than the
// buffer holds is refused before anything is read into it.
func TestTransmitAnswerBounded(t *testing.T) {
	path := fakeDaemon(t, func(c net.Conn) {
		var req [headerLen + transmitLen + 5]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		ans := make([]byte, transmitLen)
		ne.PutUint32(ans[24:], 1<<20) // a megabyte "answer"
		c.Write(ans)
		time.Sleep(100 * time.Millisecond)
	})
	c, err := Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := &Card{c: c, handle: 1, protocol: protoT1, cardTimeout: time.Second}
	resp := make([]byte, 258)
	if _, err := k.TransmitRaw([]byte{0, 0xB0, 0, 0, 0}, resp); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("transmit: %v, want ErrProtocol naming the size", err)
	}
}

// TestVersionMismatchNamed: a daemon speaking another protocol version is
// reported with both versions.
func TestVersionMismatchNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pcscd.comm")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var h [headerLen + 12]byte
		io.ReadFull(c, h[:])
		ans := make([]byte, 12)
		ne.PutUint32(ans, 4)
		ne.PutUint32(ans[4:], 5)
		ne.PutUint32(ans[8:], uint32(codeServiceStopped))
		c.Write(ans)
	}()
	_, err = Dial(path, time.Second)
	if err == nil || !strings.Contains(err.Error(), "protocol 4.5, satd 4.4") {
		t.Fatalf("dial: %v", err)
	}
}

// TestTransmitAllocs: a steady-state APDU exchange allocates nothing.
func TestTransmitAllocs(t *testing.T) {
	path := fakeDaemon(t, func(c net.Conn) {
		// AllocsPerRun counts every goroutine: the daemon allocates up front.
		req, cmd, ans := make([]byte, headerLen+transmitLen), make([]byte, 5), make([]byte, transmitLen+4)
		ne.PutUint32(ans[24:], 4)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if _, err := io.ReadFull(c, cmd); err != nil {
				return
			}
			ans[transmitLen], ans[transmitLen+1], ans[transmitLen+2], ans[transmitLen+3] = cmd[1], 0x42, 0x90, 0x00
			c.Write(ans)
		}
	})
	c, err := Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := &transport{card: &Card{c: c, handle: 1, protocol: protoT0, cardTimeout: time.Second}}
	cmd, resp := []byte{0x80, 0xCA, 0, 0, 2}, make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := tr.Transmit(cmd, resp); err != nil || n != 4 {
			t.Fatalf("transmit: %d %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per APDU, want 0", allocs)
	}
}
