package netstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const demoFile = "../testdata/stream/demo.mp3"

// demoFrames returns the MP3 frames of the demo sample.
func demoFrames(t testing.TB) [][]byte { return mp3Frames(t, demoFile) }

// mp3Frames returns the MP3 frames of a file of at least 100 frames.
func mp3Frames(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c frameCollector
	f := newFramer(codecMP3)
	f.write(raw, &c)
	f.write(raw[:4], &c) // confirm the last frame
	if len(c.frames) < 100 {
		t.Fatalf("%s: %d frames", path, len(c.frames))
	}
	return c.frames
}

type frameCollector struct {
	frames [][]byte
	infos  []frameInfo
}

func (c *frameCollector) putFrame(f []byte, fi frameInfo) {
	c.frames = append(c.frames, append([]byte(nil), f...))
	c.infos = append(c.infos, fi)
}

// testConfig returns a config for a loopback server on a free port.
func testConfig(mounts ...MountConfig) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Listen = "127.0.0.1:0"
	c.SourcePassword = "hackme"
	c.AdminPassword = "adminpw"
	c.DrainDelay = 0
	c.DrainWindow = Duration(500 * time.Millisecond)
	c.RetryAfter = Duration(time.Second)
	c.Mounts = mounts
	return c
}

// startServer starts a server for cfg; setup runs between New and Start.
func startServer(t testing.TB, cfg Config, setup ...func(*Server)) *Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// hangGuard is how long waitFor waits before it calls the test hung. It is
// not a bound on speed: what the tests wait for takes milliseconds, and a
// loaded machine may take seconds.
const hangGuard = time.Minute

// waitFor polls cond every 20 ms until it holds. d is how long it usually
// takes at most: a wait beyond d is logged as a figure, and only a wait
// beyond the larger of d and hangGuard fails the test, as hung.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	end := start.Add(max(d, hangGuard))
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("hung: %s not seen after %s", what, max(d, hangGuard))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took > d { // figure
		t.Logf("waited %s for %s (usually within %s)", took.Round(time.Millisecond), what, d)
	}
}

// fakeUpstream is an Icecast-like HTTP server that streams MP3 frames in
// real time with ICY metadata; it can be stopped and restarted on its port.
type fakeUpstream struct {
	t      testing.TB
	frames [][]byte
	title  string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	served atomic.Int64
	active atomic.Int64 // streams being served now
	epoch  time.Time    // program start shared by upstreams of one program; zero = per connection
}

// frameDur is the duration of one 44.1 kHz MPEG-1 layer III frame.
const frameDur = 1152 * time.Second / 44100

func newFakeUpstream(t testing.TB, frames [][]byte, title string) *fakeUpstream {
	return newProgramUpstream(t, frames, title, time.Time{})
}

// newProgramUpstream is a fake upstream playing the program that started at
// epoch: upstreams with the same epoch serve the same frame at the same time.
func newProgramUpstream(t testing.TB, frames [][]byte, title string, epoch time.Time) *fakeUpstream {
	u := &fakeUpstream{t: t, frames: frames, title: title, conns: map[net.Conn]bool{}, epoch: epoch}
	u.start("127.0.0.1:0")
	t.Cleanup(u.stop)
	return u
}

func (u *fakeUpstream) url(path string) string { return "http://" + u.addr + path }

func (u *fakeUpstream) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		u.t.Fatal(err)
	}
	u.mu.Lock()
	u.ln, u.addr = ln, ln.Addr().String()
	u.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.mu.Unlock()
			go u.serve(c)
		}
	}()
}

// stop closes the listener and every stream (the "ingest dies").
func (u *fakeUpstream) stop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
	for c := range u.conns {
		c.Close()
		delete(u.conns, c)
	}
}

func (u *fakeUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	tp := textproto.NewReader(br)
	if _, err := tp.ReadLine(); err != nil {
		return
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return
	}
	u.served.Add(1)
	u.active.Add(1)
	defer u.active.Add(-1)
	metaint := 0
	if h.Get("Icy-MetaData") == "1" {
		metaint = 8192
	}
	head := "HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name: fake upstream\r\nicy-br: 128\r\n"
	if metaint > 0 {
		head += "icy-metaint: " + strconv.Itoa(metaint) + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		return
	}
	until, sent := metaint, false
	// Frame i of the program is due at epoch + i frame durations; like
	// Icecast, a new client first gets 150 frames of history at once.
	epoch := u.epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	first := int(time.Since(epoch)/frameDur) - 150 // pacing
	for i := first; ; i++ {
		f := u.frames[((i%len(u.frames))+len(u.frames))%len(u.frames)]
		for len(f) > 0 {
			n := len(f)
			if metaint > 0 {
				n = min(n, until)
			}
			if _, err := c.Write(f[:n]); err != nil {
				return
			}
			f = f[n:]
			until -= n
			if metaint > 0 && until == 0 {
				blk := zeroMeta
				if !sent {
					blk, sent = buildMetaBlock(u.title), true
				}
				if _, err := c.Write(blk); err != nil {
					return
				}
				until = metaint
			}
		}
		if ahead := time.Duration(i+1)*frameDur - time.Since(epoch); ahead > 50*time.Millisecond { // pacing
			time.Sleep(ahead)
		}
	}
}

// streamClient is a raw listener connection.
type streamClient struct {
	conn   net.Conn
	br     *bufio.Reader
	status string
	header textproto.MIMEHeader
}

func dialListener(t testing.TB, addr, path string, extra ...string) *streamClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		t.Fatal(err)
	}
	req := "GET " + path + " HTTP/1.0\r\nHost: " + addr + "\r\nUser-Agent: test\r\n"
	for _, e := range extra {
		req += e + "\r\n"
	}
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	sc := &streamClient{conn: c, br: bufio.NewReaderSize(c, 64<<10)}
	tp := textproto.NewReader(sc.br)
	if sc.status, err = tp.ReadLine(); err != nil {
		t.Fatal(fmt.Errorf("read status: %w", err))
	}
	if sc.header, err = tp.ReadMIMEHeader(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sc
}

// readFor reads the body for d and returns it. What arrives within d
// depends on the machine's speed: use it only to drain, or for an absence
// (nothing must arrive), never to count what must arrive; readUntil,
// readFrames and readAtLeast wait for that instead.
func (sc *streamClient) readFor(d time.Duration) []byte {
	_ = sc.conn.SetReadDeadline(time.Now().Add(d))
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := sc.br.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

// readUntil reads the body until done holds for all that was read, and
// returns it. It fails the test if the stream ends first, or as hung if
// done does not hold within hangGuard: it waits for an amount, not a time.
func (sc *streamClient) readUntil(t testing.TB, what string, done func(body []byte) bool) []byte {
	t.Helper()
	out, err := sc.tryReadUntil(done)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

// tryReadUntil is readUntil for a goroutine: it returns the error instead
// of failing the test.
func (sc *streamClient) tryReadUntil(done func(body []byte) bool) ([]byte, error) {
	_ = sc.conn.SetReadDeadline(time.Now().Add(hangGuard))
	var out []byte
	buf := make([]byte, 32<<10)
	for !done(out) {
		n, err := sc.br.Read(buf)
		out = append(out, buf[:n]...)
		if done(out) {
			break
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return out, fmt.Errorf("hung: not there after %s (%d bytes read)", hangGuard, len(out))
		}
		if err != nil {
			return out, fmt.Errorf("stream ended after %d bytes: %w", len(out), err)
		}
	}
	return out, nil
}

// readAtLeast reads until at least n bytes of body have arrived.
func (sc *streamClient) readAtLeast(t testing.TB, n int) []byte {
	t.Helper()
	return sc.readUntil(t, fmt.Sprintf("%d bytes", n), func(b []byte) bool { return len(b) >= n })
}

// readFrames reads until n MP3 frames that are not silence have arrived
// (silence is not counted as audio) and returns the body.
func (sc *streamClient) readFrames(t testing.TB, n int) []byte {
	t.Helper()
	return sc.readUntil(t, fmt.Sprintf("%d frames of audio", n), func(b []byte) bool {
		f, sil := countFrames(t, b)
		return f-sil >= n
	})
}

// readSilence reads until n silence frames have arrived and returns the body.
func (sc *streamClient) readSilence(t testing.TB, n int) []byte {
	t.Helper()
	return sc.readUntil(t, fmt.Sprintf("%d frames of silence", n), func(b []byte) bool {
		_, sil := countFrames(t, b)
		return sil >= n
	})
}

// readToEnd reads until the relay closes the stream, failing as hung if it
// is still open after hangGuard.
func (sc *streamClient) readToEnd(t testing.TB) []byte {
	t.Helper()
	_ = sc.conn.SetReadDeadline(time.Now().Add(hangGuard))
	b, err := io.ReadAll(sc.br)
	if err != nil {
		t.Fatalf("stream not closed (hung after %s?): %v after %d bytes", hangGuard, err, len(b))
	}
	return b
}

func (sc *streamClient) code() int {
	f := strings.Fields(sc.status)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// countFrames counts decodable MP3 frames in b, starting at offset 0.
func countFrames(t testing.TB, b []byte) (frames int, silent int) {
	t.Helper()
	var c frameCollector
	f := newFramer(codecMP3)
	f.write(b, &c)
	for _, fr := range c.frames {
		zero := true
		for _, x := range fr[4:] {
			if x != 0 {
				zero = false
				break
			}
		}
		if zero {
			silent++
		}
	}
	return len(c.frames), silent
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// waitBurst waits until the mount has played enough for a full burst.
func waitBurst(t testing.TB, m *mount) {
	t.Helper()
	waitFor(t, 10*time.Second, "64 KiB of audio in the ring", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.bytesIn > 72<<10
	})
}

// playedBytes is how much real audio the mount has played so far.
func playedBytes(m *mount) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytesIn
}
