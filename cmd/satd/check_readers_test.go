package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// TestCheckSCIDevice: satd -check accepts an internal reader on /dev/sci0
// (no GPIO lines needed) and a pcsc reader, and refuses an internal reader
// whose device is no device with a message naming key and reason.
func TestCheckSCIDevice(t *testing.T) {
	dir := t.TempDir()
	notDev := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDev, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, reader string
		code         int
		want         string
	}{
		{"sci0", "protocol = \"internal\"\ndevice = \"/dev/sci0\"", 0, "configuration is valid"},
		{"sci1 on a board", "protocol = \"internal\"\nboard = \"vuplus\"\ndevice = \"/dev/sci1\"", 0, "configuration is valid"},
		{"pcsc", "protocol = \"pcsc\"\ndevice = \"0\"", 0, "configuration is valid"},
		{"file", "protocol = \"internal\"\nboard = \"vuplus\"\ndevice = \"" + notDev + "\"", 2,
			"reader[0].device: \"" + notDev + "\" is not a kernel smartcard device"},
		{"mouse on a file", "protocol = \"mouse\"\ndevice = \"" + notDev + "\"", 2,
			"reader[0].device: \"" + notDev + "\" is a regular file, not a character device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".toml")
			cfg := "[[reader]]\nlabel = \"r\"\n" + tc.reader + "\n"
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			code := dispatch([]string{"-config", path, "-check"}, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, out.String(), tc.code, tc.want)
			}
		})
	}
}

// TestPCSCReaderWithoutDaemon: a pcsc reader whose pcscd is not running
// stays absent and its status says why.
func TestPCSCReaderWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pcscd.comm")
	t.Setenv("PCSCLITE_CSOCK_NAME", sock)
	cfg := config.Default()
	r := readerCfg("usb", "pcsc")
	r.Device = "0"
	cfg.Readers = []config.Reader{r}
	ctx, cancel := context.WithCancel(t.Context())
	d := startReadersAndBalancer(t, ctx, cfg)
	defer func() {
		cancel()
		if code := d.stop(d.log.component("main")); code != 0 {
			t.Errorf("stop exit code %d", code)
		}
	}()
	var st ReaderStatus
	for hung := time.Now().Add(hangGuard); time.Now().Before(hung); {
		st = d.readers()[0]
		if strings.Contains(st.LastError, sock) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.State != "absent" || !strings.Contains(st.LastError, sock) {
		t.Fatalf("state %q, last error %q: want absent naming %s", st.State, st.LastError, sock)
	}
}
