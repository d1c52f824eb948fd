package update

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// raucBackend is a bootloader=custom backend that keeps the boot state in
// a file next to it (spec §2.1).
const raucBackend = `#!/bin/sh
S="$(dirname "$0")/bootstate"
[ -f "$S" ] || printf 'PRIMARY=A\nSTATE_A=good\nSTATE_B=good\n' > "$S"
. "$S"
echo "$*" >> "$(dirname "$0")/backend.log"
case "$1" in
get-primary) echo "$PRIMARY" ;;
set-primary) sed -i "s/^PRIMARY=.*/PRIMARY=$2/" "$S" ;;
get-state) eval echo "\$STATE_$2" ;;
set-state) sed -i "s/^STATE_$2=.*/STATE_$2=$3/" "$S" ;;
get-current) echo A ;;
*) exit 1 ;;
esac
`

const raucSystemConf = `[system]
compatible=satrx-test
bootloader=custom
data-directory=%[1]s/data
mountprefix=%[1]s/mnt
bundle-formats=plain

[keyring]
path=%[1]s/cert.pem

[handlers]
bootloader-custom-backend=%[1]s/backend.sh

[slot.rootfs.0]
device=%[1]s/slots/rootfs-0
type=raw
bootname=A

[slot.rootfs.1]
device=%[1]s/slots/rootfs-1
type=raw
bootname=B
`

// skipUnlessRealRAUC skips with the reason when real RAUC cannot run here.
func skipUnlessRealRAUC(t *testing.T) {
	t.Helper()
	skipUnlessHostTools(t, "rauc", "openssl", "mksquashfs", "dbus-daemon", "sh")
	if os.Geteuid() != 0 {
		t.Skip("real rauc needs root to loop-mount the bundle; TestRAUCCommandSequence covers the command sequence")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("real rauc needs a loop device (/dev/loop-control missing); TestRAUCCommandSequence covers the command sequence")
	}
}

// TestRealRAUC installs a plain bundle with Debian's rauc into file-backed
// slots through RAUCCommand: a tampered bundle is refused, the real one
// lands in slot B, mark-good runs the bootloader backend, and status parses.
func TestRealRAUC(t *testing.T) {
	skipUnlessRealRAUC(t)
	dir := t.TempDir()
	for _, d := range []string{"content", "slots", "data", "mnt"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	at := func(p string) string { return filepath.Join(dir, p) }
	run(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("key.pem"), "-out", at("cert.pem"), "-subj", "/CN=satd-test", "-days", "2")
	image := bytes.Repeat([]byte("rootfs image "), 5000)
	os.WriteFile(at("content/rootfs.img"), image, 0o644)
	os.WriteFile(at("content/manifest.raucm"), []byte("[update]\ncompatible=satrx-test\nversion=1.1.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n"), 0o644)
	run(t, "rauc", "bundle", "--cert", at("cert.pem"), "--key", at("key.pem"), "--keyring", at("cert.pem"), at("content"), at("out.raucb"))
	for _, s := range []string{"slots/rootfs-0", "slots/rootfs-1"} {
		os.WriteFile(at(s), make([]byte, 128<<10), 0o644)
	}
	os.WriteFile(at("backend.sh"), []byte(raucBackend), 0o755)
	os.WriteFile(at("system.conf"), []byte(fmt.Sprintf(raucSystemConf, dir)), 0o644)
	startRAUCService(t, dir)

	r := &RAUCCommand{}
	ctx := context.Background()
	bundle, _ := os.ReadFile(at("out.raucb"))
	tampered := bytes.Clone(bundle)
	tampered[len(tampered)/3] ^= 0xff
	os.WriteFile(at("tampered.raucb"), tampered, 0o644)
	if err := r.Install(ctx, at("tampered.raucb"), nil); err == nil {
		t.Error("rauc installed a tampered bundle")
	}
	var pcts []int
	if err := r.Install(ctx, at("out.raucb"), func(p int, _ string) { pcts = append(pcts, p) }); err != nil {
		t.Fatal(err)
	}
	if slotB, _ := os.ReadFile(at("slots/rootfs-1")); !bytes.HasPrefix(slotB, image) {
		t.Error("slot B does not hold the image")
	}
	if len(pcts) == 0 || pcts[len(pcts)-1] != 100 {
		t.Errorf("progress %v", pcts)
	}
	if err := r.MarkGood(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := r.Status(ctx)
	if err != nil || st.Booted != "A" || st.Compatible != "satrx-test" || len(st.Slots) != 2 {
		t.Errorf("status %+v, %v", st, err)
	}
	log, _ := os.ReadFile(at("backend.log"))
	primary, good := strings.Index(string(log), "set-primary B\n"), strings.Index(string(log), "set-state A good\n")
	if primary < 0 || good < primary {
		t.Errorf("bootloader backend calls:\n%s", log)
	}
}

// startRAUCService runs `rauc service` (Debian builds the CLI as a D-Bus
// client) on a private bus, stopping both at the end of the test.
func startRAUCService(t *testing.T, dir string) {
	t.Helper()
	bus := "unix:path=" + filepath.Join(dir, "bus")
	dbus := exec.Command("dbus-daemon", "--session", "--address="+bus, "--nofork")
	if err := dbus.Start(); err != nil {
		t.Skipf("dbus-daemon: %v", err)
	}
	t.Cleanup(func() { dbus.Process.Signal(syscall.SIGTERM); dbus.Wait() })
	waitFor(t, filepath.Join(dir, "bus"))
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
	var out bytes.Buffer
	svc := exec.Command("rauc", "service", "--conf="+filepath.Join(dir, "system.conf"), "--override-boot-slot=A")
	svc.Stdout, svc.Stderr = &out, &out
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Process.Signal(syscall.SIGTERM); svc.Wait() })
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		if exec.Command("rauc", "status").Run() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("rauc service did not come up:\n%s", out.String())
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}
