package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"satd.dev/satd/internal/atomicfile"
)

// Argon2id parameters: the OWASP minimum (19 MiB, 2 passes), which a 256 MB
// receiver affords for the rare login and which costs an attacker dearly.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	minPassword    = 8
)

// Sentinel errors of the login machinery.
var (
	ErrBadPassword  = errors.New("wrong password")
	ErrWeakPassword = fmt.Errorf("password must be at least %d characters", minPassword)
	ErrNoPassword   = errors.New("no password set yet")
	ErrBadHash      = errors.New("password file is not an argon2id hash")
	ErrNotAvailable = errors.New("not available on this build")
)

// hashPassword returns the PHC string of password under a fresh salt.
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC string phc.
func checkPassword(phc, password string) error {
	parts := strings.Split(strings.TrimSpace(phc), "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return ErrBadHash
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 64*1024 || t == 0 || t > 16 || p == 0 {
		return ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 || len(want) > 64 {
		return ErrBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrBadPassword
	}
	return nil
}

// passwordStore keeps the login password's hash in a file, and the one-time
// setup code that lets a remote browser set the first password.
type passwordStore struct {
	mu        sync.Mutex
	path      string
	setupCode string
}

func newPasswordStore(path string) *passwordStore { return &passwordStore{path: path} }

func (s *passwordStore) hash() (string, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoPassword
	}
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	return string(b), nil
}

// isSet reports whether a password has been set.
func (s *passwordStore) isSet() bool {
	_, err := s.hash()
	return !errors.Is(err, ErrNoPassword)
}

// check verifies password against the stored hash.
func (s *passwordStore) check(password string) error {
	h, err := s.hash()
	if err != nil {
		return err
	}
	return checkPassword(h, password)
}

// set hashes password and atomically replaces the file.
func (s *passwordStore) set(password string) error {
	if len(password) < minPassword {
		return ErrWeakPassword
	}
	h, err := hashPassword(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.WriteFile(s.path, []byte(h+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file %s: %w", s.path, err)
	}
	s.setupCode = ""
	return nil
}

// newSetupCode makes (or returns the existing) one-time code that authorises
// setting the first password from a non-loopback browser.
func (s *passwordStore) newSetupCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.setupCode == "" {
		b := make([]byte, 10)
		rand.Read(b)
		s.setupCode = base32.StdEncoding.EncodeToString(b)
	}
	return s.setupCode
}

func (s *passwordStore) checkSetupCode(code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setupCode != "" && subtle.ConstantTimeCompare([]byte(strings.ToUpper(strings.TrimSpace(code))), []byte(s.setupCode)) == 1
}

// throttle locks out a client address after too many failed logins
// (OSCam's failban).
type throttle struct {
	mu       sync.Mutex
	failures map[string]*failRecord
	limit    int
	lockout  time.Duration
	now      func() time.Time
}

type failRecord struct {
	count       int
	lockedUntil time.Time
}

// allowed reports whether addr may try to log in, and if not, for how long
// it must wait.
func (t *throttle) allowed(addr string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.failures[addr]
	if !ok {
		return true, 0
	}
	if wait := r.lockedUntil.Sub(t.now()); wait > 0 {
		return false, wait
	}
	return true, 0
}

// fail records a failed login; it reports whether addr is now locked out.
func (t *throttle) fail(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) > 4096 { // bounded memory under a spray of addresses
		clear(t.failures)
	}
	r := t.failures[addr]
	if r == nil {
		r = &failRecord{}
		t.failures[addr] = r
	}
	r.count++
	if r.count >= t.limit {
		r.lockedUntil = t.now().Add(t.lockout)
		r.count = 0
		return true
	}
	return false
}

func (t *throttle) succeed(addr string) {
	t.mu.Lock()
	delete(t.failures, addr)
	t.mu.Unlock()
}

func (t *throttle) setLimits(limit int, lockout time.Duration) {
	t.mu.Lock()
	t.limit, t.lockout = limit, lockout
	t.mu.Unlock()
}
