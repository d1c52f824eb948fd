package initscript

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireOrSkip skips the test for a missing prerequisite, except under
// `make buildroot-check` (SATD_BUILDROOT_CHECK=1), where it must run.
func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SATD_BUILDROOT_CHECK") == "1" {
		t.Fatalf("%s (required by make buildroot-check)", msg)
	}
	t.Skip(msg)
}

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// targetRoot is a minimal BusyBox root filesystem, as on a Buildroot image:
// BusyBox applets (start-stop-daemon, syslogd, logger, sh), /proc, /dev/null
// and a static satd. Commands run in it with chroot.
type targetRoot struct {
	t   *testing.T
	dir string
}

func newTargetRoot(t *testing.T) *targetRoot {
	t.Helper()
	if os.Getenv("SATD_CROSS_TEST") != "" || testing.Short() {
		t.Skip("the init script test chroots into a host root filesystem; not under qemu or -short")
	}
	if os.Geteuid() != 0 {
		requireOrSkip(t, "the init script test needs root for chroot and mounting /proc")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		requireOrSkip(t, "busybox not found (Debian package busybox; .ci/deps buildroot installs it)")
	}
	r := &targetRoot{t: t, dir: t.TempDir()}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "tmp", "var/run", "var/log", "etc/init.d", "usr/share/satd"} {
		r.mkdir(d)
	}
	r.copyFile(busybox, "bin/busybox", 0o755)
	r.copyLibs(busybox)
	r.linkApplets(busybox)
	if err := syscall.Mknod(r.path("dev/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatalf("mknod /dev/null: %v", err)
	}
	if err := syscall.Mount("proc", r.path("proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount /proc in %s: %v", r.dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(r.path("proc"), syscall.MNT_DETACH) })
	r.buildSatd()
	return r
}

func (r *targetRoot) path(p string) string { return filepath.Join(r.dir, p) }

func (r *targetRoot) mkdir(p string) {
	if err := os.MkdirAll(r.path(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

func (r *targetRoot) writeFile(p, data string, perm os.FileMode) {
	r.t.Helper()
	r.mkdir(filepath.Dir(p))
	if err := os.WriteFile(r.path(p), []byte(data), perm); err != nil {
		r.t.Fatal(err)
	}
}

func (r *targetRoot) readFile(p string) string {
	b, _ := os.ReadFile(r.path(p))
	return string(b)
}

func (r *targetRoot) copyFile(src, dst string, perm os.FileMode) {
	r.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		r.t.Fatal(err)
	}
	r.writeFile(dst, string(b), perm)
}

// copyLibs copies the shared libraries of a dynamically linked binary (the
// Debian busybox is one) to the same paths in the root.
func (r *targetRoot) copyLibs(bin string) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return // static: nothing to copy
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				real, err := filepath.EvalSymlinks(f)
				if err != nil {
					r.t.Fatal(err)
				}
				r.copyFile(real, strings.TrimPrefix(f, "/"), 0o755)
			}
		}
	}
}

func (r *targetRoot) linkApplets(busybox string) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		r.t.Fatalf("busybox --list-full: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" {
			continue
		}
		r.mkdir(filepath.Dir(applet))
		if err := os.Symlink("/bin/busybox", r.path(applet)); err != nil && !os.IsExist(err) {
			r.t.Fatal(err)
		}
	}
}

// buildSatd builds the static satd the way the Buildroot package does.
func (r *targetRoot) buildSatd() {
	r.t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-tags", "nethttpomithttp2 satd_nodemo", "-ldflags", "-s -w -X main.version=inittest",
		"-o", r.path("usr/bin/satd"), "./cmd/satd")
	cmd.Dir = repoRoot(r.t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("build satd: %v\n%s", err, out)
	}
}

// run runs a command inside the root and returns its combined output and
// exit status.
func (r *targetRoot) run(args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.Command("chroot", append([]string{r.dir}, args...)...)
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r.t.Logf("%v: %q (%v)", args, out, time.Since(start).Round(time.Millisecond))
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("chroot %v: %v", args, err)
	}
	return string(out), code
}

// startSyslogd runs BusyBox syslogd in the root (satd logs to /dev/log, as
// on the box) and stops it at the end of the test.
func (r *targetRoot) startSyslogd() {
	r.t.Helper()
	cmd := exec.Command("chroot", r.dir, "/sbin/syslogd", "-n", "-O", "/var/log/messages")
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start syslogd: %v", err)
	}
	r.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r.eventually("syslogd creates /dev/log", func() bool {
		_, err := os.Stat(r.path("dev/log"))
		return err == nil
	})
}
