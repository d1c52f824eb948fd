// Command icyload opens many concurrent HTTP/ICY listeners against one
// stream URL on loopback and reports status codes, time to first byte,
// disconnects, reconnect times, password challenges and MP3 silence gaps.
// It refuses any address that is not 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type stats struct {
	mu        sync.Mutex
	codes     map[int]int
	ttfb      []time.Duration
	reconn    []time.Duration
	first     []time.Duration // per listener: first attempt to first 200 head
	challenge int
	fails     int
	paths     []string // per listener: the path of its 200 (after a redirect)

	active, ok, disconnects, reconnects atomic.Int64
	tokenReconnects                     atomic.Int64 // reconnects whose first request carried a re-admission token
	cookieReconnects                    atomic.Int64 // of which in a cookie only (original URL)
	bytes                               atomic.Int64
	maxGap                              atomic.Int64 // longest run of silent MP3 frames, in frames
	silentFrames                        atomic.Int64
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "host:port (127.0.0.1 only)")
	path := flag.String("path", "/live", "mount path")
	n := flag.Int("n", 500, "listeners")
	ramp := flag.Duration("ramp", 5*time.Second, "spread connects over this long (0 = all at once)")
	dur := flag.Duration("dur", 60*time.Second, "hard stop after this long")
	users := flag.Bool("users", false, "send Basic auth user<i>:pw")
	reconnect := flag.Bool("reconnect", false, "reconnect after a disconnect or a 503, like a player")
	gapSample := flag.Int("gapsample", 0, "parse MP3 frames of this many listeners to measure silence gaps")
	every := flag.Duration("every", 5*time.Second, "progress line interval")
	follow := flag.Bool("follow", false, "follow a 302 to the Location path on the same address (re-admission tokens)")
	headOnly := flag.Bool("headonly", false, "close each listener after the response head")
	pathsOut := flag.String("pathsout", "", "write each listener's final path (after redirects) to this file, one a line")
	pathsIn := flag.String("pathsin", "", "read each listener's path from this file (as -pathsout wrote it)")
	ownAddr := flag.Bool("ownaddr", false, "each listener connects from its own loopback address (127.1.x.y), like players on their own hosts")
	originalEvery := flag.Int("original-every", 0, "every k-th listener reconnects to the URL it started with, not the one it was redirected to, like ffmpeg and mpv (0 = none)")
	cookies := flag.Bool("cookies", false, "keep the cookies of responses and send them on later requests, like ffmpeg and mpv")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "icyload: refusing non-loopback address", *addr)
		os.Exit(2)
	}
	if *ownAddr && *n > 250*256 {
		fmt.Fprintln(os.Stderr, "icyload: -ownaddr gives at most 64,000 listeners an address of their own")
		os.Exit(2)
	}
	st := &stats{codes: map[int]int{}, paths: make([]string, *n)}
	opt := options{follow: *follow, headOnly: *headOnly, ownAddr: *ownAddr, originalEvery: *originalEvery, cookies: *cookies}
	if *pathsIn != "" {
		b, err := os.ReadFile(*pathsIn)
		if err != nil {
			fmt.Fprintln(os.Stderr, "icyload:", err)
			os.Exit(2)
		}
		opt.paths = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	usr := make(chan os.Signal, 4) // SIGUSR1: print a mark line
	signal.Notify(usr, syscall.SIGUSR1)
	term := make(chan os.Signal, 1) // SIGTERM/SIGINT: report now and exit
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	start := time.Now()
	stop := start.Add(*dur)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		var delay time.Duration
		if *ramp > 0 {
			delay = time.Duration(int64(*ramp) * int64(i) / int64(*n))
		}
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			p := *path
			if i < len(opt.paths) && opt.paths[i] != "" {
				p = opt.paths[i]
			}
			listen(st, opt, *addr, p, i, *users, *reconnect, i < *gapSample, stop)
		}()
	}
	issued := time.Since(start)
	tick := time.NewTicker(*every)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	fmt.Printf("issued connects in %s\n", issued.Round(time.Millisecond))
	var lastBytes int64
	last := time.Now()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-term:
			break loop
		case <-usr:
			if *pathsOut != "" {
				st.writePaths(*pathsOut + ".mark")
			}
			fmt.Printf("mark t=%.1fs active=%d admitted=%d disconnects=%d reconnects=%d token_reconnects=%d challenges=%d\n",
				time.Since(start).Seconds(), st.active.Load(), st.admittedCount(), st.disconnects.Load(), st.reconnects.Load(), st.tokenReconnects.Load(), st.challengeCount())
		case now := <-tick.C:
			b := st.bytes.Load()
			act := max(st.active.Load(), 1)
			fmt.Printf("t=%.0fs active=%d ok=%d fail=%d disconnects=%d reconnects=%d rate=%.1fkbit/s/listener\n",
				time.Since(start).Seconds(), st.active.Load(), st.ok.Load(), st.failCount(), st.disconnects.Load(), st.reconnects.Load(),
				float64(b-lastBytes)*8/now.Sub(last).Seconds()/1000/float64(act))
			lastBytes, last = b, now
		}
	}
	st.report()
	if *pathsOut != "" {
		st.writePaths(*pathsOut)
	}
}

// writePaths writes each listener's path (the one it reconnects to), one a
// line, in listener order.
func (st *stats) writePaths(name string) {
	st.mu.Lock()
	b := []byte(strings.Join(st.paths, "\n") + "\n")
	st.mu.Unlock()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "icyload:", err)
	}
}

// options are the per-session switches.
type options struct {
	follow, headOnly bool
	ownAddr          bool // listener i dials from 127.1.x.y
	originalEvery    int  // every k-th listener reconnects to its original URL
	cookies          bool // keep and send cookies
	paths            []string
}

func (st *stats) challengeCount() int { st.mu.Lock(); defer st.mu.Unlock(); return st.challenge }
func (st *stats) failCount() int      { st.mu.Lock(); defer st.mu.Unlock(); return st.fails }
func (st *stats) admittedCount() int  { st.mu.Lock(); defer st.mu.Unlock(); return len(st.first) }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, len(d)*p/100)].Round(time.Millisecond)
}

func (st *stats) report() {
	st.mu.Lock()
	defer st.mu.Unlock()
	var codes []string
	for c, k := range st.codes {
		codes = append(codes, fmt.Sprintf("%d:%d", c, k))
	}
	sort.Strings(codes)
	served := 0
	for c, k := range st.codes {
		if c > 0 {
			served += k
		}
	}
	fmt.Printf("result codes=%s served=%d fail=%d challenges=%d\n", strings.Join(codes, ","), served, st.fails, st.challenge)
	fmt.Printf("result listeners_admitted=%d admit_p50=%s admit_p99=%s admit_max=%s\n", len(st.first), pct(st.first, 50), pct(st.first, 99), pct(st.first, 100))
	fmt.Printf("result ttfb_p50=%s ttfb_p90=%s ttfb_p99=%s ttfb_max=%s\n", pct(st.ttfb, 50), pct(st.ttfb, 90), pct(st.ttfb, 99), pct(st.ttfb, 100))
	fmt.Printf("result disconnects=%d reconnects=%d token_reconnects=%d cookie_reconnects=%d reconnect_p50=%s reconnect_p99=%s reconnect_max=%s\n",
		st.disconnects.Load(), st.reconnects.Load(), st.tokenReconnects.Load(), st.cookieReconnects.Load(), pct(st.reconn, 50), pct(st.reconn, 99), pct(st.reconn, 100))
	fmt.Printf("result bytes=%d max_silence_gap=%s silent_frames=%d\n", st.bytes.Load(),
		time.Duration(st.maxGap.Load())*26122*time.Microsecond, st.silentFrames.Load())
}

// listen runs one listener (and its reconnects) until stop.
func listen(st *stats, opt options, addr, path string, id int, users, reconnect, gaps bool, stop time.Time) {
	var lostAt time.Time
	t0 := time.Now()
	admitted := false
	original := path
	keepOriginal := opt.originalEvery > 0 && id%opt.originalEvery == 0
	jar := map[string]string{} // cookie name -> value, for -cookies
	for attempt := 0; time.Now().Before(stop); attempt++ {
		r := session(st, opt, jar, addr, path, id, users, gaps, stop, lostAt, func(final string) {
			st.mu.Lock()
			defer st.mu.Unlock()
			if !admitted {
				admitted = true
				st.first = append(st.first, time.Since(t0))
			}
			if keepOriginal {
				final = original
			}
			if _, ok := jar["readmit"]; ok {
				final += "\tcookie" // it reconnects with a re-admission token in a cookie
			}
			st.paths[id] = final // where it reconnects to
		})
		if r.location != "" && !keepOriginal {
			path = r.location // players reconnect to where they were sent (ffmpeg keeps the redirected URL)
		}
		if keepOriginal {
			path = original // players that re-open the URL they were given
		}
		if !reconnect || !time.Now().Before(stop) {
			return
		}
		if r.lost && lostAt.IsZero() {
			lostAt = time.Now()
		}
		if r.code == 200 && !r.lost {
			return
		}
		// Players retry after Retry-After when given one, else after a short
		// random pause.
		pause := time.Duration(250+rand.IntN(750)) * time.Millisecond
		if r.retryAfter > 0 {
			pause = r.retryAfter + time.Duration(rand.IntN(1000))*time.Millisecond
		}
		time.Sleep(pause)
	}
}

// result is what one session learnt.
type result struct {
	code       int
	lost       bool          // disconnected after a 200
	location   string        // the path it was redirected to and got 200 on
	retryAfter time.Duration // from a 503
}

// session makes one connection (and follows one redirect with -follow).
// admitted is called with the final path when the head says 200.
func session(st *stats, opt options, jar map[string]string, addr, path string, id int, users, gaps bool, stop, lostAt time.Time, admitted func(string)) result {
	t0 := time.Now()
	res := result{}
	_, cookie := jar["readmit"]
	withToken := strings.Contains(path, "readmit=") || cookie
	cookieOnly := cookie && !strings.Contains(path, "readmit=")
	for hop := 0; ; hop++ {
		code, hdr, c, br := request(st, opt, jar, addr, path, id, users, stop)
		if c == nil {
			return res
		}
		if hdr.challenged {
			st.mu.Lock()
			st.challenge++
			st.mu.Unlock()
		}
		if code == 302 && opt.follow && hop == 0 && hdr.location != "" {
			c.Close()
			path, res.location = hdr.location, hdr.location
			continue
		}
		res.code, res.retryAfter = code, hdr.retryAfter
		st.mu.Lock()
		st.codes[code]++
		st.ttfb = append(st.ttfb, time.Since(t0))
		if code == 200 && !lostAt.IsZero() {
			st.reconn = append(st.reconn, time.Since(lostAt))
			st.reconnects.Add(1)
			if withToken {
				st.tokenReconnects.Add(1)
			}
			if cookieOnly {
				st.cookieReconnects.Add(1)
			}
		}
		st.mu.Unlock()
		if code != 200 {
			c.Close()
			return res
		}
		admitted(path)
		res.lost = stream(st, c, br, opt.headOnly, gaps, stop)
		c.Close()
		return res
	}
}

// head is what a response head said.
type head struct {
	challenged bool
	location   string
	retryAfter time.Duration
}

// request sends one GET and reads the response head; c is nil on failure.
func request(st *stats, opt options, jar map[string]string, addr, path string, id int, users bool, stop time.Time) (int, head, net.Conn, *bufio.Reader) {
	var h head
	d := net.Dialer{Timeout: 10 * time.Second}
	if opt.ownAddr {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 1, byte(id/250), byte(id%250+1))}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		st.mu.Lock()
		st.fails++
		st.mu.Unlock()
		return 0, h, nil, nil
	}
	_ = c.SetDeadline(stop)
	req := "GET " + path + " HTTP/1.0\r\nHost: " + addr + "\r\nUser-Agent: icyload\r\n"
	if users {
		req += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("user"+strconv.Itoa(id)+":pw")) + "\r\n"
	}
	if opt.cookies && len(jar) > 0 {
		var kv []string
		for k, v := range jar {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		req += "Cookie: " + strings.Join(kv, "; ") + "\r\n"
	}
	fail := func() (int, head, net.Conn, *bufio.Reader) {
		c.Close()
		st.mu.Lock()
		st.fails++
		st.mu.Unlock()
		return 0, h, nil, nil
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return fail()
	}
	br := bufio.NewReaderSize(c, 16<<10)
	status, err := br.ReadString('\n')
	if err != nil {
		return fail()
	}
	code := 0
	if f := strings.Fields(status); len(f) >= 2 {
		code, _ = strconv.Atoi(f[1])
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "www-authenticate":
			h.challenged = true
		case "location":
			h.location = v
		case "set-cookie":
			if opt.cookies {
				nv, _, _ := strings.Cut(v, ";")
				if k, val, ok := strings.Cut(strings.TrimSpace(nv), "="); ok {
					jar[k] = val
				}
			}
		case "retry-after":
			if s, err := strconv.Atoi(v); err == nil {
				h.retryAfter = time.Duration(s) * time.Second
			}
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	return code, h, c, br
}

// stream reads an admitted listener's audio until it ends; it reports a
// disconnect before stop.
func stream(st *stats, c net.Conn, br *bufio.Reader, headOnly, gaps bool, stop time.Time) bool {
	if headOnly {
		return false
	}
	st.ok.Add(1)
	st.active.Add(1)
	defer st.active.Add(-1)
	buf := make([]byte, 16<<10)
	var g gapMeter
	for {
		k, err := br.Read(buf)
		st.bytes.Add(int64(k))
		if gaps {
			g.feed(buf[:k], st)
		}
		if err != nil {
			break
		}
	}
	if time.Now().Before(stop.Add(-100 * time.Millisecond)) {
		st.disconnects.Add(1)
		return true
	}
	return false
}

// gapMeter finds runs of silent MP3 frames (all-zero side info and data,
// as satd synthesises them) in a listener's byte stream.
type gapMeter struct {
	buf []byte
	run int64
}

func mp3Len(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return 0
	}
	rates := [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}
	srs := [4]int{44100, 48000, 32000, 0}
	br, sr := rates[b[2]>>4]*1000, srs[(b[2]>>2)&3]
	if br == 0 || sr == 0 || (b[1]>>3)&3 != 3 || (b[1]>>1)&3 != 1 {
		return 0
	}
	return 144*br/sr + int(b[2]>>1)&1
}

func (g *gapMeter) feed(p []byte, st *stats) {
	g.buf = append(g.buf, p...)
	i := 0
	for i+4 <= len(g.buf) {
		n := mp3Len(g.buf[i:])
		if n == 0 {
			i++
			continue
		}
		if i+n > len(g.buf) {
			break
		}
		if len(bytes.Trim(g.buf[i+4:i+n], "\x00")) == 0 {
			g.run++
			st.silentFrames.Add(1)
			for m := st.maxGap.Load(); g.run > m && !st.maxGap.CompareAndSwap(m, g.run); m = st.maxGap.Load() {
			}
		} else {
			g.run = 0
		}
		i += n
	}
	g.buf = append(g.buf[:0], g.buf[i:]...)
}
