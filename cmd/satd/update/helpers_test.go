package update

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"aead.dev/minisign"
)

// hangGuard bounds the tests' waits for a process, a file or a status: it
// only says a test hung, never how fast satd is (each step takes
// milliseconds to seconds; a loaded machine may take much longer).
const hangGuard = 2 * time.Minute

// testKey is a minisign key pair generated for one test; no key material is
// kept in the repository.
type testKey struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub, priv}
}

// pubText is the key as it goes into the configuration.
func (k testKey) pubText(t testing.TB) string { return k.pub.String() }

// sign signs doc the way `minisign -S` does by default (prehashed).
func (k testKey) sign(doc []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(doc))
	var sink bytes.Buffer
	sink.ReadFrom(r)
	return r.SignWithComments(k.priv, "timestamp:0\tfile:satd-update.json", "signature from a test key")
}

// manifestFor returns a manifest document for payload.
func manifestFor(t testing.TB, payload []byte, edit func(*Manifest)) []byte {
	t.Helper()
	sum := sha256.Sum256(payload)
	m := Manifest{Version: "1.1.0", Board: "satrx-armv7", MinVersion: "1.0.0", Kind: KindBinary,
		Size: int64(len(payload)), SHA256: hex.EncodeToString(sum[:]), URL: "satd-1.1.0"}
	if edit != nil {
		edit(&m)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testPolicy(keys ...string) Policy {
	return Policy{PublicKeys: keys, Board: "satrx-armv7", Running: "1.0.0"}
}
