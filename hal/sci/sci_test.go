package sci

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/hal"
)

// cParams mirrors SCI_PARAMETERS with Go types: Go's uint is C's unsigned
// long on every Linux port and Go aligns fields as the C ABI does, so its
// size and offsets are the C ones of the architecture the test runs on
// (make test-cross runs this on arm and mipsle under qemu).
type cParams struct {
	T                                              uint8
	FS, ETU, WWT, CWT, BWT, EGT, ClockStopPolarity uint
	Check, P, I, U                                 uint8
}

func TestParamsLayoutMatchesC(t *testing.T) {
	var c cParams
	l := HostLayout
	if got, want := int(unsafe.Sizeof(c)), l.ParamsSize(); got != want {
		t.Fatalf("unsafe.Sizeof(SCI_PARAMETERS) = %d on %s, layout says %d", got, runtime.GOARCH, want)
	}
	if got, want := int(unsafe.Offsetof(c.FS)), l.longAt(0); got != want {
		t.Errorf("offset of fs %d, layout %d", got, want)
	}
	if got, want := int(unsafe.Offsetof(c.Check)), l.charsAt(); got != want {
		t.Errorf("offset of check %d, layout %d", got, want)
	}
	p := Params{T: 1, FS: 27, ETU: 186, WWT: 9600, CWT: 8203, BWT: 15371, EGT: 2, ClockStopPolarity: 1, Check: 2, P: 5, I: 50, U: 7}
	c = cParams{p.T, uint(p.FS), uint(p.ETU), uint(p.WWT), uint(p.CWT), uint(p.BWT), uint(p.EGT), uint(p.ClockStopPolarity), p.Check, p.P, p.I, p.U}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&c)), unsafe.Sizeof(c))
	enc := make([]byte, l.ParamsSize())
	l.Encode(p, enc)
	// Padding in raw is whatever Go left there: zero for a fresh value.
	if !bytes.Equal(raw, enc) {
		t.Errorf("Go struct bytes %X\nlayout encoding  %X", raw, enc)
	}
	if got := l.Decode(enc); got != p {
		t.Errorf("decode %+v, want %+v", got, p)
	}
	if a, err := LayoutOf(runtime.GOARCH); err == nil && (a.LongSize != l.LongSize || a.BigEndian != l.BigEndian || a.MIPSIoctl != l.MIPSIoctl) {
		t.Errorf("table layout of %s %+v differs from the host %+v", runtime.GOARCH, a, l)
	}
}

// TestParamsLayouts pins the C layouts of the receiver ABIs: sizes, and
// the encoding of one struct written out by hand from the C rules.
func TestParamsLayouts(t *testing.T) {
	p := Params{T: 1, FS: 0x11223344, ETU: 372, WWT: 2, CWT: 3, BWT: 4, EGT: 5, ClockStopPolarity: 6, Check: 0xA, P: 0xB, I: 0xC, U: 0xD}
	for _, tc := range []struct {
		arch string
		size int
		hex  string
	}{
		{"arm", 36, "01000000" + "44332211" + "74010000" + "02000000" + "03000000" + "04000000" + "05000000" + "06000000" + "0A0B0C0D"},
		{"mipsle", 36, "01000000" + "44332211" + "74010000" + "02000000" + "03000000" + "04000000" + "05000000" + "06000000" + "0A0B0C0D"},
		{"mips", 36, "01000000" + "11223344" + "00000174" + "00000002" + "00000003" + "00000004" + "00000005" + "00000006" + "0A0B0C0D"},
		{"arm64", 72, "0100000000000000" + "4433221100000000" + "7401000000000000" + "0200000000000000" + "0300000000000000" +
			"0400000000000000" + "0500000000000000" + "0600000000000000" + "0A0B0C0D00000000"},
	} {
		l, err := LayoutOf(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		if l.ParamsSize() != tc.size {
			t.Errorf("%s: size %d, want %d", tc.arch, l.ParamsSize(), tc.size)
		}
		b := make([]byte, l.ParamsSize())
		l.Encode(p, b)
		if got := strings.ToUpper(hex.EncodeToString(b)); got != tc.hex {
			t.Errorf("%s:\n got %s\nwant %s", tc.arch, got, tc.hex)
		}
	}
}

// TestIoctlNumbers checks request numbers against linux/ioctl.h computed
// by hand, for both variants and both numbering schemes.
func TestIoctlNumbers(t *testing.T) {
	arm, _ := LayoutOf("arm")
	mips, _ := LayoutOf("mipsle")
	arm64, _ := LayoutOf("arm64")
	for _, tc := range []struct {
		name string
		got  uint32
		want uint32
	}{
		{"s RESET arm", reqReset.number(Modern, 4, arm), 0x40047301},
		{"s SET_PARAMETERS arm", reqSetParams.number(Modern, 36, arm), 0x40247304},
		{"s SET_PARAMETERS arm64", reqSetParams.number(Modern, 72, arm64), 0x40487304},
		{"s GET_PARAMETERS mipsle", reqGetParams.number(Modern, 36, mips), 0x80247305},
		{"s CARD_PRESENT mipsle", reqCardPresent.number(Modern, 4, mips), 0x80047308},
		{"0x64 RESET arm (_IO)", reqReset.number(Legacy, 4, arm), 0x00006401},
		{"0x64 RESET mipsle (_IO)", reqReset.number(Legacy, 4, mips), 0x20006401},
		{"0x64 CARD_PRESENT arm (_IOR)", reqCardPresent.number(Legacy, 4, arm), 0x80046408},
		{"0x64 CARD_PRESENT mipsle (_IOR)", reqCardPresent.number(Legacy, 4, mips), 0x40046408},
		{"0x64 SET_PARAMETERS arm (_IOW)", reqSetParams.number(Legacy, 36, arm), 0x40246404},
		{"0x64 SET_PARAMETERS mipsle (_IOW)", reqSetParams.number(Legacy, 36, mips), 0x80246404},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %08X, want %08X", tc.name, tc.got, tc.want)
		}
	}
}

func loadTranscript(t *testing.T, name string) *Transcript {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTranscript(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// runReader starts the ISO 7816 stack on a transcript-backed slot of arch.
func runReader(t *testing.T, arch, file string) (*Slot, *cardreader.Reader, *Transcript, context.CancelFunc, chan error) {
	t.Helper()
	l, err := LayoutOf(arch)
	if err != nil {
		t.Fatal(err)
	}
	tr := loadTranscript(t, file)
	s, err := New(Config{Name: "sci0", ClockHz: 3_570_000, Layout: l}, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cardreader.New(s, cardreader.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return s, r, tr, cancel, done
}

func waitState(t *testing.T, r *cardreader.Reader, st cardreader.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := r.WaitState(ctx, st); err != nil {
		t.Fatalf("%v; last error: %s", err, r.Stats().LastError)
	}
}

// TestActivateTranscripts plays the activation, a T=0 command and a card
// removal byte for byte for each receiver ABI.
func TestActivateTranscripts(t *testing.T) {
	for _, arch := range []string{"arm", "arm64", "mipsle"} {
		t.Run(arch, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, r, tr, cancel, done := runReader(t, arch, "activate_"+arch+".transcript")
				waitState(t, r, cardreader.StateReady)
				resp := make([]byte, 8)
				n, err := r.Transmit([]byte{0x00, 0xB0, 0x00, 0x00, 0x02}, resp)
				if err != nil || !bytes.Equal(resp[:n], []byte{0x12, 0x34, 0x90, 0x00}) {
					t.Fatalf("transmit: % X, %v", resp[:n], err)
				}
				if st := r.Stats(); st.ATR != "3B240030423030" || st.Protocol != 0 {
					t.Errorf("ATR %s T=%d", st.ATR, st.Protocol)
				}
				if p := s.Params(); p.ETU != 372 || p.FS != 3 || p.Check != 1 {
					t.Errorf("work parameters %+v", p)
				}
				if present, err := s.Poll(); present || err != nil {
					t.Fatalf("poll after removal: %v %v", present, err)
				}
				waitState(t, r, cardreader.StateAbsent)
				cancel()
				<-done
				if err := tr.Done(); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// TestTimeoutTranscripts plays a card that never answers the reset.
func TestTimeoutTranscripts(t *testing.T) {
	for _, arch := range []string{"arm", "arm64", "mipsle"} {
		t.Run(arch, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, r, tr, cancel, done := runReader(t, arch, "timeout_"+arch+".transcript")
				waitState(t, r, cardreader.StateFault)
				if e := r.Stats().LastError; !strings.Contains(e, "no answer to reset") {
					t.Errorf("last error %q", e)
				}
				cancel()
				<-done
				if err := tr.Done(); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// TestIoctlErrorNamesRequest: a failing ioctl is reported with its name
// and errno.
func TestIoctlErrorNamesRequest(t *testing.T) {
	tr, err := ParseTranscript(`
ioctl CARD_PRESENT 40047308 00000000 -> 01000000
ioctl SET_PARAMETERS 40247304 000000000300000074010000802500000000000000000000000000000000000000000000 ! EIO
ioctl CARD_PRESENT 40047308 00000000 -> 01000000
`)
	if err != nil {
		t.Fatal(err)
	}
	arm, _ := LayoutOf("arm")
	s, err := New(Config{Name: "sci0", ClockHz: 3_570_000, Layout: arm}, tr)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Reset(t.Context(), hal.ColdReset)
	if err == nil || !strings.Contains(err.Error(), "SET_PARAMETERS") || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("reset error %v: want the ioctl and errno named", err)
	}
	if errors.Is(err, hal.ErrNoCard) {
		t.Errorf("card still present, but the error says removed: %v", err)
	}
	if err := tr.Done(); err != nil {
		t.Error(err)
	}
}

// TestRealDevice runs on a receiver: it activates the card in /dev/sci0
// (SATD_SCI_DEVICE overrides) and logs the transcript.
func TestRealDevice(t *testing.T) {
	path := os.Getenv("SATD_SCI_DEVICE")
	if path == "" {
		path = "/dev/sci0"
	}
	if err := CheckDevice(path); err != nil {
		t.Skipf("skipped: no smartcard device here (%v); runs on a receiver with a kernel sci driver", err)
	}
	dev, err := OpenDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s, err := New(Config{Name: path, ClockHz: 3_570_000, Poll: 100 * time.Millisecond}, NewRecorder(dev, &log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer func() { t.Logf("transcript:\n%s", log.String()) }()
	if ok, _ := s.Present(); !ok {
		t.Skipf("skipped: %s has no card inserted", path)
	}
	r, err := cardreader.New(s, cardreader.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	err = r.WaitState(ctx, cardreader.StateReady)
	st := r.Stats()
	t.Logf("ATR %s T=%d baud %d, last error %q", st.ATR, st.Protocol, st.Baud, st.LastError)
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
}

func TestClockParams(t *testing.T) {
	for _, tc := range []struct {
		c     Config
		fs    uint32
		clock int
	}{
		{Config{ClockHz: 3_570_000}, 3, 3_570_000},
		{Config{ClockHz: 6_000_000}, 6, 6_000_000},
		{Config{ClockHz: 3_570_000, Clock: ClockPLL}, 7, 3_375_000}, // 27 MHz / 8
		{Config{ClockHz: 4_500_000, Clock: ClockPLL}, 5, 4_500_000}, // 27 MHz / 6
	} {
		fs, clock := clockParams(tc.c)
		if fs != tc.fs || clock != tc.clock {
			t.Errorf("%+v: fs %d clock %d, want %d %d", tc.c, fs, clock, tc.fs, tc.clock)
		}
	}
}
