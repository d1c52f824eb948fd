package update

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"aead.dev/minisign"
)

// Kind is what a payload is and how it is installed.
type Kind string

// The payload kinds.
const (
	// KindRAUC is a full firmware image as a RAUC bundle (.raucb).
	KindRAUC Kind = "rauc"
	// KindBinary is the satd executable alone.
	KindBinary Kind = "binary"
)

// maxManifestSize bounds the manifest and signature downloads.
const maxManifestSize = 64 << 10

// Manifest describes one update. It is JSON, signed as a file with minisign
// (`minisign -S -m satd-update.json`), so the signature covers every byte.
type Manifest struct {
	// Version is the version the payload installs.
	Version string `json:"version"`
	// Board is the board/architecture the payload is built for; it must
	// equal the box's configured board.
	Board string `json:"board"`
	// MinVersion is the oldest running version that may install this
	// update ("" for any).
	MinVersion string `json:"min_version,omitempty"`
	// Kind says how to install the payload.
	Kind Kind `json:"kind"`
	// Size is the payload's exact size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the payload's digest, lower-case hex.
	SHA256 string `json:"sha256"`
	// URL locates the payload, absolute or relative to the manifest's URL.
	URL string `json:"url"`

	version Version
	digest  [32]byte
}

// ParseManifest decodes and checks the form of a manifest (not its
// signature; see Verifier). name is used in error messages.
func ParseManifest(name string, doc []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: %w: data after the JSON object", name, ErrMalformedManifest)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedManifest, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	v, err := ParseVersion(m.Version)
	if err != nil {
		return fmt.Errorf("version: %v", err)
	}
	m.version = v
	if m.MinVersion != "" {
		if _, err := ParseVersion(m.MinVersion); err != nil {
			return fmt.Errorf("min_version: %v", err)
		}
	}
	if m.Board == "" || strings.ContainsAny(m.Board, " \t\n/") {
		return fmt.Errorf("board %q: must be a non-empty name", m.Board)
	}
	if m.Kind != KindRAUC && m.Kind != KindBinary {
		return fmt.Errorf("kind %q: want %q or %q", m.Kind, KindRAUC, KindBinary)
	}
	if m.Size <= 0 {
		return fmt.Errorf("size %d: must be positive", m.Size)
	}
	if d, err := hex.DecodeString(m.SHA256); err != nil || len(d) != 32 {
		return fmt.Errorf("sha256 %q: want 64 hex digits", m.SHA256)
	} else {
		copy(m.digest[:], d)
	}
	if m.URL == "" {
		return fmt.Errorf("url: must be set")
	}
	if _, err := url.Parse(m.URL); err != nil {
		return fmt.Errorf("url %q: %v", m.URL, err)
	}
	return nil
}

// PayloadURL resolves the payload URL against the manifest's own URL.
func (m *Manifest) PayloadURL(manifestURL string) (string, error) {
	base, err := url.Parse(manifestURL)
	if err != nil {
		return "", fmt.Errorf("manifest url %q: %w", manifestURL, err)
	}
	ref, err := url.Parse(m.URL)
	if err != nil {
		return "", fmt.Errorf("payload url %q: %w", m.URL, err)
	}
	return base.ResolveReference(ref).String(), nil
}

// Verifier checks manifests against the configured public keys and the
// box's identity.
type Verifier struct {
	keys           []minisign.PublicKey
	board          string
	running        Version
	allowDowngrade bool
}

// Policy is what a Verifier enforces besides the signature.
type Policy struct {
	// PublicKeys are minisign public keys, each either the base64 key line
	// or the whole minisign.pub file.
	PublicKeys []string
	// Board is this box's board name.
	Board string
	// Running is the running version.
	Running string
	// AllowDowngrade accepts manifests older than Running.
	AllowDowngrade bool
}

// NewVerifier parses the policy's keys and version.
func NewVerifier(p Policy) (*Verifier, error) {
	v := &Verifier{board: p.Board, allowDowngrade: p.AllowDowngrade}
	for i, s := range p.PublicKeys {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("public key %d: %w", i, err)
		}
		v.keys = append(v.keys, k)
	}
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("no public keys configured")
	}
	r, err := ParseVersion(p.Running)
	if err != nil {
		return nil, fmt.Errorf("running version: %w", err)
	}
	v.running = r
	return v, nil
}

// ParsePublicKey parses a minisign public key given as its base64 line or
// as the two-line minisign.pub file.
func ParsePublicKey(s string) (minisign.PublicKey, error) {
	var k minisign.PublicKey
	s = strings.TrimSpace(s)
	if _, line, ok := strings.Cut(s, "\n"); ok && strings.HasPrefix(s, "untrusted comment:") {
		s = strings.TrimSpace(line)
	}
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return k, fmt.Errorf("not a minisign public key: %v", err)
	}
	return k, nil
}

// Verify checks that sig is a valid minisign signature of doc by one of the
// configured keys, then parses doc and applies the policy. name is used in
// error messages.
func (v *Verifier) Verify(name string, doc, sig []byte) (*Manifest, error) {
	if err := v.verifySignature(doc, sig); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := ParseManifest(name, doc)
	if err != nil {
		return nil, err
	}
	if err := v.applyPolicy(m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

func (v *Verifier) verifySignature(doc, sig []byte) error {
	var s minisign.Signature
	if err := s.UnmarshalText(bytes.TrimSpace(sig)); err != nil {
		return fmt.Errorf("%w: signature: %v", ErrMalformedManifest, err)
	}
	for _, k := range v.keys {
		if k.ID() != s.KeyID {
			continue
		}
		if !minisign.Verify(k, doc, sig) {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("%w: key id %016X", ErrUnknownKey, s.KeyID)
}

func (v *Verifier) applyPolicy(m *Manifest) error {
	if m.Board != v.board {
		return fmt.Errorf("%w: manifest board %q, this box is %q", ErrWrongBoard, m.Board, v.board)
	}
	if m.MinVersion != "" {
		min, _ := ParseVersion(m.MinVersion)
		if v.running.Compare(min) < 0 {
			return fmt.Errorf("%w: running %s, update needs at least %s", ErrTooOld, v.running, min)
		}
	}
	switch c := m.version.Compare(v.running); {
	case c == 0:
		return fmt.Errorf("%w: %s", ErrUpToDate, v.running)
	case c < 0 && !v.allowDowngrade:
		return fmt.Errorf("%w: manifest version %s is older than running %s (set allow_downgrade to permit)", ErrDowngrade, m.version, v.running)
	}
	return nil
}
