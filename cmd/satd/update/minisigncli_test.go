package update

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMinisignCLICompatibility signs a manifest with the real minisign tool
// (Debian's minisign package), as an operator does, and verifies it with the
// Verifier; a tampered copy is refused. It also checks that the library's
// signatures verify with `minisign -V`.
func TestMinisignCLICompatibility(t *testing.T) {
	skipUnlessHostTools(t, "minisign")
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "satd.pub"), filepath.Join(dir, "satd.key")
	run(t, "minisign", "-G", "-W", "-p", pub, "-s", sec)
	doc := manifestFor(t, []byte("payload"), nil)
	file := filepath.Join(dir, "satd-update.json")
	os.WriteFile(file, doc, 0o644)
	for _, legacy := range []bool{false, true} {
		args := []string{"-S", "-s", sec, "-m", file, "-t", "satd 1.1.0 satrx-armv7"}
		if legacy {
			args = append(args, "-l")
		}
		run(t, "minisign", args...)
		sig, _ := os.ReadFile(file + ".minisig")
		pubFile, _ := os.ReadFile(pub)
		v, err := NewVerifier(testPolicy(string(pubFile)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(file, doc, sig); err != nil {
			t.Errorf("legacy=%v: CLI signature refused: %v", legacy, err)
		}
		tampered := append([]byte(nil), doc...)
		tampered[len(tampered)-3] ^= 0x20
		if _, err := v.Verify(file, tampered, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("legacy=%v: tampered manifest: %v, want ErrBadSignature", legacy, err)
		}
	}
	k := newTestKey(t)
	os.WriteFile(file+".minisig", k.sign(doc), 0o644)
	os.WriteFile(pub, []byte("untrusted comment: test key\n"+k.pubText(t)+"\n"), 0o644)
	run(t, "minisign", "-V", "-p", pub, "-m", file)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
