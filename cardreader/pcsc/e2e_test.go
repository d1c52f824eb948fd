package pcsc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/pcsc"
	"satd.dev/satd/cardreader/system"
)

// Real parts of the PC/SC test (.ci/deps test installs them).
const (
	pcscdBin  = "/usr/sbin/pcscd"
	vpcdLib   = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	viccLib   = "/usr/lib/python3/site-packages/virtualsmartcard/virtualsmartcard/VirtualSmartcard.py"
	pythonBin = "/usr/bin/python3"
)

// rig is a private pcscd with vpcd's two virtual slots, socket and
// configuration in a temporary directory.
type rig struct {
	t      *testing.T
	dir    string
	socket string
	port   int // vpcd slot 0; slot 1 is port+1
	pcscd  *exec.Cmd
}

func needParts(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: starts pcscd and virtual cards")
	}
	for _, p := range []string{pcscdBin, vpcdLib, viccLib, pythonBin} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: the PC/SC test needs pcscd, vsmartcard-vpcd and python3-virtualsmartcard (.ci/deps test): %v", err)
		}
	}
}

// freePortPair returns a port p such that p and p+1 are free on loopback
// now. vpcd listens on both; it cannot be given port 0.
func freePortPair(t *testing.T) int {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free pair of TCP ports for vpcd")
	return 0
}

// startRig starts pcscd socket-activated (LISTEN_FDS, as systemd does) on a
// socket in a temporary directory, so it neither needs nor touches
// /run/pcscd and runs beside a system pcscd.
func startRig(t *testing.T) *rig {
	needParts(t)
	r := &rig{t: t, dir: t.TempDir(), port: freePortPair(t)}
	r.socket = filepath.Join(r.dir, "pcscd.comm")
	conf := filepath.Join(r.dir, "reader.conf.d")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	entry := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n", r.port, vpcdLib, r.port)
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: r.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false) // the socket file stays for pcscd
	f, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := os.Create(filepath.Join(r.dir, "pcscd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	// LISTEN_PID must be pcscd's own pid: the shell sets it to $$ and execs.
	r.pcscd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" --foreground --info --config "$1"`, pcscdBin, conf)
	r.pcscd.Env = append(os.Environ(), "LISTEN_FDS=1")
	r.pcscd.ExtraFiles = []*os.File{f}
	r.pcscd.Stdout, r.pcscd.Stderr = log, log
	if err := r.pcscd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.pcscd.Process.Kill()
		r.pcscd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(r.dir, "pcscd.log"))
			t.Logf("pcscd log:\n%s", b)
		}
	})
	r.waitReaders(2)
	return r
}

// waitReaders waits (bounded) until pcscd lists n readers.
func (r *rig) waitReaders(n int) {
	r.t.Helper()
	var last error
	for range 100 {
		c, err := pcsc.Dial(r.socket, 2*time.Second)
		if err == nil {
			st, err := c.ReaderStates()
			c.Close()
			if err == nil && len(st) >= n {
				return
			}
			last = fmt.Errorf("%d readers, %v", len(st), err)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("pcscd did not list %d readers: %v", n, last)
}

// insert starts a virtual card of kind in vpcd slot i; the returned
// function pulls it (ends the process).
func (r *rig) insert(kind string, i int) func() {
	r.t.Helper()
	cmd := exec.Command(pythonBin, "testdata/vicc_card.py", kind, fmt.Sprint(r.port+i))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	pulled := false
	pull := func() {
		if pulled {
			return
		}
		pulled = true
		cmd.Process.Kill()
		cmd.Wait()
		if r.t.Failed() && out.Len() > 0 {
			r.t.Logf("vicc %s: %s", kind, out.String())
		}
	}
	r.t.Cleanup(pull)
	return pull
}

// expectedCW is what the test cards compute (see vicc_card.py): SHA-256
// of the ECM bytes the card receives, checksum bytes fixed.
func expectedCW(payload []byte) [16]byte {
	var cw [16]byte
	h := sha256.Sum256(payload)
	copy(cw[:], h[:16])
	for i := 3; i < 16; i += 4 {
		cw[i] = cw[i-3] + cw[i-2] + cw[i-1]
	}
	return cw
}

// card is one card system in the test: its vicc personality and ECMs.
type card struct {
	kind string
	// ecm returns ECM number i and the bytes of it the card receives.
	ecm func(i int) (ecm, payload []byte)
}

func conaxECM(i int) ([]byte, []byte) {
	body := bytes.Repeat([]byte{byte(i), 0x5A}, 30)
	ecm := append([]byte{0x80 | byte(i&1), 0x70, byte(len(body))}, body...)
	return ecm, ecm
}

func secaECM(i int) ([]byte, []byte) {
	// ident 0070 (provider index 1), byte 5 = 0 (no Seca 3 nano), key 0C.
	body := append([]byte{0x00, 0x70, 0x00, 0x00, 0x0C}, bytes.Repeat([]byte{0x20, byte(i)}, 24)...)
	ecm := append([]byte{0x80 | byte(i&1), 0x70, byte(len(body))}, body...)
	return ecm, ecm[8:]
}

// TestPCSCVirtualCards runs satd's PC/SC reader against Debian's pcscd with
// vsmartcard's vpcd driver and two virtual cards (python3-virtualsmartcard
// with Conax-like and Seca-like personalities): init, 100 ECMs each,
// removal and re-insertion, and prints the APDU round-trip time.
func TestPCSCVirtualCards(t *testing.T) {
	r := startRig(t)
	cards := []card{{"conax", conaxECM}, {"seca", secaECM}}
	for i, c := range cards {
		t.Run(c.kind, func(t *testing.T) { runCard(t, r, c, i) })
	}
}

func runCard(t *testing.T, r *rig, c card, slotIdx int) {
	pull := r.insert(c.kind, slotIdx)
	slot := pcsc.Open(c.kind, pcsc.Config{Socket: r.socket, Reader: fmt.Sprintf("Virtual PCD 00 %02d", slotIdx), Poll: 50 * time.Millisecond})
	defer slot.Close()
	systems := system.All()
	opts := cardreader.DefaultOptions()
	rd, err := cardreader.NewAPDU(slot, opts, system.CardSystems(systems)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rd.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait := func(s cardreader.State) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, time.Minute) // a hang guard: pcscd answers in milliseconds
		defer wcancel()
		if err := rd.WaitState(wctx, s); err != nil {
			st := rd.Stats()
			t.Fatalf("%v (last error in %s: %s; slot: %v)", err, st.LastErrorState, st.LastError, slot.Err())
		}
	}
	wait(cardreader.StateReady)
	st := rd.Stats()
	if st.System != c.kind {
		t.Fatalf("card identified as %q, want %q (ATR %s)", st.System, c.kind, st.ATR)
	}
	sys := system.ByName(systems, c.kind)
	t.Logf("%s card ready in %q: ATR %s, T=%d, identity %+v", c.kind, slot.Reader(), st.ATR, st.Protocol, sys.Identity())

	const ecms = 100
	before := rd.Stats().Exchanges
	start := time.Now()
	for i := range ecms {
		solve(t, sys, rd, c, i)
	}
	el := time.Since(start) // figure
	apdus := rd.Stats().Exchanges - before
	t.Logf("%s: %d ECMs, %d APDUs through pcscd in %v: APDU round-trip %v, ECM %v",
		c.kind, ecms, apdus, el.Round(time.Millisecond), (el / time.Duration(apdus)).Round(time.Microsecond),
		(el / ecms).Round(time.Microsecond))

	pull()
	wait(cardreader.StateAbsent)
	if ans, err := sys.ECM(rd, mustECM(c, 0)); err == nil || ans.Result == system.Found {
		t.Errorf("ECM without a card: %v %v", ans.Result, err)
	}
	r.insert(c.kind, slotIdx)
	wait(cardreader.StateReady)
	solve(t, sys, rd, c, ecms)
	if n := rd.Stats().Removals; n != 1 {
		t.Errorf("%d removals counted, want 1", n)
	}
}

func mustECM(c card, i int) []byte { e, _ := c.ecm(i); return e }

func solve(t *testing.T, sys system.System, rd *cardreader.Reader, c card, i int) {
	t.Helper()
	ecm, payload := c.ecm(i)
	ans, err := sys.ECM(rd, ecm)
	if err != nil || ans.Result != system.Found {
		t.Fatalf("ECM %d: %v (%s), %v", i, ans.Result, ans.Reason, err)
	}
	if want := expectedCW(payload); ans.CW != want {
		t.Fatalf("ECM %d: CW % X, want % X", i, ans.CW, want)
	}
}

// TestDialRefusesMissingDaemon checks the error names the socket.
func TestDialRefusesMissingDaemon(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.comm")
	_, err := pcsc.Dial(p, time.Second)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("dial: %v", err)
	}
}
