package netstream

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// needFFmpeg skips a test when ffmpeg (the reference decoder) is missing.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed (apt-get install ffmpeg); CI installs it")
		}
	}
}

// makeAudio encodes seconds of a test signal (an ffmpeg lavfi source) with
// the encoder args into dir/name and returns the path.
func makeAudio(t testing.TB, dir, name, signal string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", signal}, args...)
	if b, err := exec.Command("ffmpeg", append(cmd, out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", name, err, b)
	}
	return out
}

// decodedSeconds plays url with ffmpeg, asking for ICY metadata, until want
// seconds are decoded or the stream breaks, and returns the seconds of audio
// it decoded (resampled to 8 kHz mono s16le: 16000 bytes a second).
func decodedSeconds(t testing.TB, url string, want float64) float64 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-icy", "1", "-rw_timeout", "5000000", "-i", url,
		"-t", strconv.FormatFloat(want, 'f', -1, 64), "-ac", "1", "-ar", "8000", "-f", "s16le", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Logf("ffmpeg %s: %v\n%s", url, err, stderr.Bytes())
	}
	return float64(len(out)) / 16000
}

// probeTitle returns the StreamTitle ffprobe reads from url with ICY on.
func probeTitle(t testing.TB, url string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-icy", "1", "-rw_timeout", "5000000",
		"-show_entries", "format_tags=StreamTitle", "-of", "default=nw=1:nk=1", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	return string(bytes.TrimSpace(out))
}

// TestOggWithICY plays Ogg/Opus and Ogg/Vorbis mounts with ICY metadata
// requested, both ways: with ICY offered (the replayed header pages count
// against the metadata interval, so blocks land where the client expects
// them) and without (ogg-no-icy, as Icecast does). ffmpeg must decode at
// least 9.5 of 10 seconds; ffprobe reads the title when ICY is offered.
func TestOggWithICY(t *testing.T) {
	if testing.Short() {
		t.Skip("plays 10 s of audio")
	}
	needFFmpeg(t)
	dir := t.TempDir()
	files := map[string]string{
		"opus":   makeAudio(t, dir, "noise.opus", "anoisesrc=d=40:c=pink:a=0.2", "-ac", "2", "-c:a", "libopus", "-b:a", "96k"),
		"vorbis": makeAudio(t, dir, "noise.ogg", "anoisesrc=d=40:c=pink:a=0.2", "-c:a", "libvorbis", "-q:a", "3"),
	}
	cases := []struct {
		name, codec string
		noICY       bool
	}{
		{"opus-icy", "opus", false},
		{"vorbis-icy", "vorbis", false},
		{"opus-no-icy", "opus", true},
		{"vorbis-no-icy", "vorbis", true},
	}
	var mounts []MountConfig
	for _, c := range cases {
		mc := DefaultMount()
		mc.Name = "/" + c.name
		mc.File = files[c.codec]
		mc.Title = "ogg title " + c.name
		mc.MetaInterval = 1000 // many blocks, each one a chance to be misplaced
		mc.OggNoICY = c.noICY
		mounts = append(mounts, mc)
	}
	cfg := testConfig(mounts...)
	cfg.BurstSize = 16 << 10
	s := startServer(t, cfg)
	for _, c := range cases {
		// Once the header pages are older than the burst, a listener gets
		// them replayed ahead of it: the case the interval must count.
		m := s.mount("/" + c.name)
		waitFor(t, 10*time.Second, c.name+" audio beyond the burst", func() bool {
			h := m.oggHdr.Load()
			return h != nil && m.ring.startFor(cfg.BurstSize) > h.end+1
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := "http://" + s.Addr() + "/" + c.name
			cl := dialListener(t, s.Addr(), "/"+c.name, "Icy-MetaData: 1")
			if got := cl.header.Get("Icy-Metaint"); (got == "") != c.noICY {
				t.Fatalf("icy-metaint %q with ogg-no-icy=%v", got, c.noICY)
			}
			cl.conn.Close()
			if got := decodedSeconds(t, url, 10); got < 9.5 {
				t.Fatalf("ffmpeg decoded %.2f s of 10 s", got)
			}
			if !c.noICY {
				if got, want := probeTitle(t, url), "ogg title "+c.name; got != want {
					t.Fatalf("ffprobe title %q, want %q", got, want)
				}
			}
		})
	}
}
