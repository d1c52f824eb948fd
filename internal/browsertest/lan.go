package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LAN is a network namespace in which the box has a non-loopback address,
// so that a browser in it meets the web form as a PC on the LAN does: plain
// http to a private address, which Chromium treats as an untrustworthy
// origin (no Sec-Fetch-* headers) and which is not loopback to satd.
type LAN struct {
	// Name is the namespace, unique to this test process.
	Name string
	// Addr is the box's address in it (on a veth pair; no route out).
	Addr string
}

// NewLAN makes the namespace and removes it when the test ends. It skips
// when the test is not root or the kernel or iproute2 cannot make one.
func NewLAN(t *testing.T) *LAN {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the LAN browser test needs root to make a network namespace (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the LAN browser test needs iproute2's ip to make a network namespace")
	}
	l := &LAN{Name: fmt.Sprintf("satd-lan-%d", os.Getpid()), Addr: "10.213.0.1"}
	if out, err := exec.Command("ip", "netns", "add", l.Name).CombinedOutput(); err != nil {
		t.Skipf("no network namespace support here (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", l.Name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", l.Name, err, out)
		}
	})
	// A veth pair stands for the LAN cable: the box at .1, the peer at .2.
	setup := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "lan0", "type", "veth", "peer", "name", "lan1"},
		{"addr", "add", l.Addr + "/24", "dev", "lan0"},
		{"addr", "add", "10.213.0.2/24", "dev", "lan1"},
		{"link", "set", "lan0", "up"},
		{"link", "set", "lan1", "up"},
	}
	for _, args := range setup {
		cmd := exec.Command("ip", append([]string{"-n", l.Name}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("no usable network namespace here (ip %s: %v: %s)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return l
}

// Command returns cmd run inside the namespace.
func (l *LAN) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Name, name}, args...)...)
}

// NewIn starts headless chromium inside the namespace, like New. chromedp
// talks to it over a pipe, which crosses namespaces.
func NewIn(t *testing.T, l *LAN, width, height int) context.Context {
	t.Helper()
	exe := Chromium(t)
	wrapper := filepath.Join(t.TempDir(), "chromium-in-"+l.Name)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", l.Name, exe)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return start(t, wrapper, width, height)
}
