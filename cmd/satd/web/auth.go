package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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

// phc is a parsed argon2id PHC string.
type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

// parsePHC checks that s is an argon2id PHC string this package accepts.
func parsePHC(s string) error {
	_, err := parsePHCString(s)
	return err
}

func parsePHCString(s string) (phc, error) {
	parts := strings.Split(strings.TrimSpace(s), "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return phc{}, fmt.Errorf("%w: not $argon2id$ with 5 fields", ErrBadHash)
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return phc{}, fmt.Errorf("%w: version %q", ErrBadHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 64*1024 || t == 0 || t > 16 || p == 0 {
		return phc{}, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 || len(want) > 64 {
		return phc{}, fmt.Errorf("%w: salt or key not base64 of 16-64 bytes", ErrBadHash)
	}
	return phc{m: m, t: t, p: p, salt: salt, key: want}, nil
}

// checkPassword reports whether password matches the PHC string s.
func checkPassword(s, password string) error {
	h, err := parsePHCString(s)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(got, h.key) != 1 {
		return ErrBadPassword
	}
	return nil
}

// passwordStore keeps the login password's hash in a file, and the one-time
// setup code that lets a remote browser set the first password.
//
// A file that is there but holds no argon2id hash (damaged by a torn write,
// a full disk, a hand edit) counts as no password: the form offers /setup
// again, behind the setup code the daemon prints to the log, instead of
// answering "Wrong password." forever. The damaged file is kept beside the
// new one as .damaged.
type passwordStore struct {
	mu        sync.Mutex
	path      string
	setupCode string
	// onDamaged is told, once per damaged file, what is wrong and the setup
	// code that lets the owner back in.
	onDamaged func(path string, err error, setupCode string)
	reported  bool
}

func newPasswordStore(path string) *passwordStore { return &passwordStore{path: path} }

// maxPasswordFile bounds what is read of the password file: a hash is ~100 bytes.
const maxPasswordFile = 4 << 10

func (s *passwordStore) hash() (string, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoPassword
	}
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	if len(b) > maxPasswordFile {
		return "", s.damaged(fmt.Errorf("%w: longer than %d bytes", ErrBadHash, maxPasswordFile))
	}
	if err := parsePHC(string(b)); err != nil {
		return "", s.damaged(err)
	}
	return string(b), nil
}

// damaged reports a damaged password file once and returns err.
func (s *passwordStore) damaged(err error) error {
	code := s.newSetupCode()
	s.mu.Lock()
	report := !s.reported && s.onDamaged != nil
	s.reported = true
	s.mu.Unlock()
	if report {
		s.onDamaged(s.path, err, code)
	}
	return err
}

// isSet reports whether a usable password has been set. A damaged file is
// not one: the setup page takes over.
func (s *passwordStore) isSet() bool {
	_, err := s.hash()
	return err == nil || !errors.Is(err, ErrNoPassword) && !errors.Is(err, ErrBadHash)
}

// check verifies password against the stored hash.
func (s *passwordStore) check(password string) error {
	h, err := s.hash()
	if err != nil {
		return err
	}
	return checkPassword(h, password)
}

// set hashes password and atomically replaces the file; a damaged file is
// first kept as .damaged.
func (s *passwordStore) set(password string) error {
	if len(password) < minPassword {
		return ErrWeakPassword
	}
	if _, err := s.hash(); errors.Is(err, ErrBadHash) {
		if err := os.Rename(s.path, s.path+".damaged"); err != nil {
			return fmt.Errorf("keep the damaged password file: %w", err)
		}
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
	s.setupCode, s.reported = "", false
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

// ErrBusy is returned when too many password checks already wait.
var ErrBusy = errors.New("too many password checks at once; try again in a moment")

// Bounds of password hashing: argon2id takes 19 MiB a hash, so a burst of
// logins may not hash in parallel. One runs at a time, a few wait, the rest
// are refused at once (503) without touching memory.
const (
	hashSlots   = 1
	hashWaiters = 8
)

// hashGate runs argon2id one (hashSlots) at a time.
type hashGate struct {
	slots   chan struct{}
	waiting atomic.Int32
}

func newHashGate() *hashGate { return &hashGate{slots: make(chan struct{}, hashSlots)} }

// do runs f in a slot, waiting for one while ctx lasts; it returns ErrBusy
// when hashWaiters already wait.
func (g *hashGate) do(ctx context.Context, f func()) error {
	if g.waiting.Add(1) > hashWaiters {
		g.waiting.Add(-1)
		return ErrBusy
	}
	select {
	case g.slots <- struct{}{}:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	}
	defer func() { <-g.slots }()
	f()
	return nil
}

// maxFailRecords bounds the login failure map (one record per address or
// IPv6 /64). When it is full the record least worth keeping is evicted:
// an address not locked out, the oldest first; a lockout is only evicted
// when every record is one, the one ending soonest first.
const maxFailRecords = 4096

// throttle locks out a client address after too many failed logins
// (OSCam's failban). An attempt counts as a failure before the password is
// hashed, so parallel requests cannot get more tries than the limit; a
// success takes it back.
type throttle struct {
	mu       sync.Mutex
	failures map[string]*failRecord
	limit    int
	lockout  time.Duration
	now      func() time.Time
	max      int // maxFailRecords; tests lower it
}

type failRecord struct {
	count       int
	last        time.Time
	lockedUntil time.Time
}

// attempt counts a try by addr as a failure in advance. It reports whether
// addr may try now, and if not, for how long it must wait.
func (t *throttle) attempt(addr string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	r, ok := t.failures[addr]
	if !ok {
		t.evict(now)
		r = &failRecord{}
		t.failures[addr] = r
	}
	if wait := r.lockedUntil.Sub(now); wait > 0 {
		return false, wait
	}
	r.count++
	r.last = now
	if r.count >= t.limit {
		// This is the last try: further ones wait out the lockout, even
		// while this one is still being checked.
		r.lockedUntil = now.Add(t.lockout)
		r.count = 0
	}
	return true, 0
}

// lockedOut reports whether addr's tries are used up (after attempt's
// failure was confirmed).
func (t *throttle) lockedOut(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.failures[addr]
	return r != nil && r.lockedUntil.After(t.now())
}

// evict makes room for one record.
func (t *throttle) evict(now time.Time) {
	limit := t.max
	if limit == 0 {
		limit = maxFailRecords
	}
	if len(t.failures) < limit {
		return
	}
	var victim string
	var best *failRecord
	for k, r := range t.failures {
		if best == nil || lessWorth(r, best, now) {
			victim, best = k, r
		}
	}
	delete(t.failures, victim)
}

// lessWorth reports whether a is less worth keeping than b.
func lessWorth(a, b *failRecord, now time.Time) bool {
	al, bl := a.lockedUntil.After(now), b.lockedUntil.After(now)
	switch {
	case al != bl:
		return !al
	case al:
		return a.lockedUntil.Before(b.lockedUntil)
	}
	return a.last.Before(b.last)
}

// succeed forgets addr's failures, the attempt just counted included.
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
