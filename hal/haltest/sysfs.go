package haltest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FakeSysfsGPIO returns the root of a fake /sys/class/gpio tree in a temp
// directory. A goroutine plays the kernel: writing N to export creates
// gpioN with direction "in", value "1" and active_low "1". withEdge=false
// leaves out the edge file, as for lines that cannot interrupt. The files
// are regular files, so poll never reports an edge on them.
func FakeSysfsGPIO(t testing.TB, withEdge bool) string {
	t.Helper()
	root := t.TempDir()
	exp := filepath.Join(root, "export")
	if err := os.WriteFile(exp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			b, _ := os.ReadFile(exp)
			if len(b) == 0 {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				continue
			}
			// Consume the write before the line appears: the next export
			// may follow as soon as its directory is visible.
			os.WriteFile(exp, nil, 0o600)
			exportLine(root, n, withEdge)
		}
	}()
	return root
}

// exportLine makes gpioN appear whole, as the kernel does: its files are
// written in a temporary directory renamed into place.
func exportLine(root string, n int, withEdge bool) {
	dir := filepath.Join(root, "gpio"+strconv.Itoa(n))
	if _, err := os.Stat(dir); err == nil {
		return
	}
	tmp := dir + ".new"
	os.Mkdir(tmp, 0o755)
	files := map[string]string{"direction": "in\n", "value": "1\n", "active_low": "1\n"}
	if withEdge {
		files["edge"] = "none\n"
	}
	for f, v := range files {
		os.WriteFile(filepath.Join(tmp, f), []byte(v), 0o600)
	}
	os.Rename(tmp, dir)
}
