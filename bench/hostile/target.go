package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Password is the web password the harness sets before a case runs.
const Password = "hostile-harness-pw"

// baseConfig is the daemon every case attacks: the web form and dvbapi on
// loopback ports of the case's own, state in the case's own directory, no
// readers, no stream unless the case's Config adds it. (Nothing on the fixed
// ports of a running `make run`.)
const baseConfig = `
[global]
state_dir = "{dir}/state"
shutdown_timeout = "2s"

[log]
level = "info"

[web]
listen = "{web}"
{webconfig}

[dvbapi]
listen = "{dvbapi}"
socket = "{dir}/camd.socket"
`

// Target is a running satd under attack.
type Target struct {
	Dir        string // the case's directory (config, state, scratch)
	ConfigPath string
	Web        string // host:port of the web form
	Stream     string // host:port free for [stream] listen
	DVBAPI     string // host:port free for [dvbapi] listen
	Spare      string // host:port free for a peer the case runs (an upstream)

	satd     string
	nofile   int
	launched bool // satd runs under `satd launch` (Case.Version)
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *logBuffer
	baseline int // VmRSS in KiB once started

	rssMu   sync.Mutex
	rssPeak int // the most VmRSS sampled, KiB (across the daemon's restarts)

	// Bg lasts until the case's daemon is stopped: peers that must be up
	// before the daemon starts (an update server) run on it from Setup.
	Bg     context.Context
	stopBg context.CancelFunc
	// Updates is the update server a Setup started, if any.
	Updates *updateServer
}

func newTarget(satd string, c Case) (*Target, error) {
	dir, err := os.MkdirTemp("", "hostile-"+c.Name+"-")
	if err != nil {
		return nil, err
	}
	t := &Target{Dir: dir, satd: satd, nofile: c.NoFile, log: &logBuffer{}}
	t.Bg, t.stopBg = context.WithCancel(context.Background())
	if c.Version != "" {
		if t.satd, err = ota.build(c.Version); err != nil {
			return nil, err
		}
		t.launched = true
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	t.Web, t.Stream, t.DVBAPI, t.Spare = ports[0], ports[1], ports[2], ports[3]
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	t.ConfigPath = filepath.Join(dir, "satd.toml")
	cfg := strings.Replace(baseConfig, "{webconfig}", c.WebConfig, 1) + c.Config
	if err := os.WriteFile(t.ConfigPath, []byte(t.expand(cfg)), 0o600); err != nil {
		return nil, err
	}
	if c.Setup != nil {
		if err := c.Setup(t); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	return t, nil
}

// expand replaces the placeholders of a case's text.
func (t *Target) expand(s string) string {
	return strings.NewReplacer("{dir}", t.Dir, "{web}", t.Web, "{stream}", t.Stream, "{dvbapi}", t.DVBAPI, "{spare}", t.Spare,
		"{pubkey}", ota.publicKey(), "{board}", otaBoard).Replace(s)
}

// freePorts returns n loopback addresses free a moment ago.
func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// UpdateDir is the daemon's update directory ([global] state_dir/update).
func (t *Target) UpdateDir() string { return filepath.Join(t.Dir, "state", "update") }

func (t *Target) start(ctx context.Context) error {
	args := []string{"-config", t.ConfigPath}
	if t.launched {
		args = append([]string{"launch", "-dir", t.UpdateDir(), "-attempts", "2", "-health-timeout", "60s", "--"}, args...)
	}
	t.cmd = exec.Command(t.satd, args...)
	if t.nofile > 0 {
		// sh's ulimit -n sets the soft and the hard limit.
		t.cmd = exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, t.nofile), t.satd}, args...)...)
	}
	// Its own process group, so that a launcher's child dies with it.
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.cmd.Dir = t.Dir
	t.cmd.Stdout, t.cmd.Stderr = t.log, t.log
	t.cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(t.Dir, "tmp"))
	if err := os.MkdirAll(filepath.Join(t.Dir, "tmp"), 0o700); err != nil {
		return err
	}
	if err := t.cmd.Start(); err != nil {
		t.cmd = nil
		return err
	}
	t.exited = make(chan struct{})
	go func() { t.cmd.Wait(); close(t.exited) }()
	for {
		c, err := net.DialTimeout("tcp", t.Web, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-t.exited:
			return fmt.Errorf("satd exited: %s", t.LastLogLine())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Baseline records the daemon's resident memory before the attack.
func (t *Target) Baseline() error {
	kb, err := t.status("VmRSS")
	t.baseline = kb
	return err
}

// sampleRSS records the daemon's resident memory if it is the most yet.
func (t *Target) sampleRSS() {
	kb, err := t.status("VmRSS")
	if err != nil {
		return
	}
	t.rssMu.Lock()
	t.rssPeak = max(t.rssPeak, kb)
	t.rssMu.Unlock()
}

// DaemonPID is the satd daemon's process: the one started, or the
// launcher's child (0 while it has none).
func (t *Target) DaemonPID() int {
	pid := t.cmd.Process.Pid
	if !t.launched {
		return pid
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			n, _ := strconv.Atoi(fs[0])
			return n
		}
	}
	return 0
}

// Alive reports whether the daemon is still running.
func (t *Target) Alive() bool {
	if t.cmd == nil {
		return false
	}
	select {
	case <-t.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the daemon.
func (t *Target) Signal(sig os.Signal) error { return t.cmd.Process.Signal(sig) }

// kill kills the daemon's process group (a launcher and its child).
func (t *Target) kill() {
	if t.cmd != nil && t.cmd.Process != nil {
		syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.exited
	}
}

func (t *Target) cleanup() {
	if t.cmd != nil && t.Alive() {
		t.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-t.exited:
		case <-time.After(12 * time.Second): // a launcher gives its child 10 s
		}
	}
	if t.cmd != nil && t.cmd.Process != nil {
		syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL) // whatever is left of the group
		<-t.exited
	}
	t.stopBg()
	os.RemoveAll(t.Dir)
}

// status reads a KiB figure of /proc/PID/status.
func (t *Target) status(field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.DaemonPID()))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", field)
}

// PeakGrowthMB is how far the daemon's peak resident memory rose above its
// baseline, in MB: its high-water mark, or the most sampled across restarts.
func (t *Target) PeakGrowthMB() int {
	hwm, _ := t.status("VmHWM")
	t.rssMu.Lock()
	hwm = max(hwm, t.rssPeak)
	t.rssMu.Unlock()
	return (hwm - t.baseline) / 1024
}

// SettledFDs waits (at most 5 s) until the daemon's descriptor count stops
// changing for half a second, and returns it: the flood has been accepted
// as far as the daemon will.
func (t *Target) SettledFDs(ctx context.Context) int {
	last, stable := t.FDs(), 0
	for i := 0; i < 50 && stable < 5 && ctx.Err() == nil; i++ {
		time.Sleep(100 * time.Millisecond)
		n := t.FDs()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

// FDs returns the number of descriptors the daemon holds.
func (t *Target) FDs() int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", t.DaemonPID()))
	return len(es)
}

// Log returns the daemon's log so far (the last MiB of it).
func (t *Target) Log() string { return t.log.String() }

// LogBytes returns how many bytes the daemon has logged.
func (t *Target) LogBytes() int64 { return t.log.Total() }

// LastLogLine returns the daemon's last log line.
func (t *Target) LastLogLine() string {
	s := strings.TrimSpace(t.log.String())
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// URL returns the web form's URL of path.
func (t *Target) URL(path string) string { return "http://" + t.Web + path }

// Client returns an HTTP client with its own cookie jar and a deadline per
// request, which follows no redirect (cases look at the answer itself).
func (t *Target) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// SetPassword sets the web password from loopback (the first-visit setup).
func (t *Target) SetPassword(ctx context.Context) error {
	resp, err := t.PostForm(ctx, t.Client(), "/setup", url.Values{"password": {Password}, "repeat": {Password}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST /setup: %s", resp.Status)
	}
	return nil
}

// Login returns a client holding a session.
func (t *Target) Login(ctx context.Context) (*http.Client, error) {
	c := t.Client()
	resp, err := t.PostForm(ctx, c, "/login", url.Values{"password": {Password}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("POST /login: %s", resp.Status)
	}
	return c, nil
}

// PostForm posts a urlencoded form with the Origin a browser on the form's
// own page sends, reads the answer whole (bounded) and closes it.
func (t *Target) PostForm(ctx context.Context, c *http.Client, path string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", t.URL(path), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+t.Web)
	return Do(c, req)
}

// Get fetches path with c and reads the answer (bounded).
func (t *Target) Get(ctx context.Context, c *http.Client, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", t.URL(path), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp, b, err
}

// Do sends req and drains and closes the answer (at most 8 MiB read).
func Do(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	return resp, nil
}

// WebAnswers reports whether the web form answers a plain request within d,
// from 127.0.0.2: the owner's browser, not the attacker's address.
func (t *Target) WebAnswers(d time.Duration) error {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := &http.Client{Timeout: d, Transport: &http.Transport{DisableKeepAlives: true, DialContext: dialer.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(t.URL("/login"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return errors.New(resp.Status)
	}
	return nil
}

// logBuffer keeps the last MiB of the daemon's output and counts it all.
type logBuffer struct {
	mu    sync.Mutex
	buf   []byte
	total int64
}

const logKeep = 1 << 20

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*logKeep {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-logKeep:]...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func (b *logBuffer) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}
