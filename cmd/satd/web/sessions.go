package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"satd.dev/satd/internal/atomicfile"
)

// session is one logged-in browser.
type session struct {
	created, lastSeen time.Time
}

// sessionKey is the SHA-256 of a cookie value: the map and the file that
// carries sessions over a restart hold no usable cookie.
type sessionKey [sha256.Size]byte

// sessions holds the logins by the hash of their random cookie value.
type sessions struct {
	mu       sync.Mutex
	byKey    map[sessionKey]*session
	lifetime time.Duration
	idle     time.Duration
	now      func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{byKey: map[sessionKey]*session{}, now: now}
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func keyOf(token string) sessionKey { return sha256.Sum256([]byte(token)) }

func (s *sessions) create() string {
	t := newToken()
	now := s.now()
	s.mu.Lock()
	s.byKey[keyOf(t)] = &session{created: now, lastSeen: now}
	s.mu.Unlock()
	return t
}

// valid reports whether token is a live session, and touches it.
func (s *sessions) valid(token string) bool {
	if token == "" {
		return false
	}
	k, now := keyOf(token), s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byKey[k]
	if !ok {
		return false
	}
	if s.expired(ss, now) {
		delete(s.byKey, k)
		return false
	}
	ss.lastSeen = now
	return true
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) > s.lifetime || now.Sub(ss.lastSeen) > s.idle
}

func (s *sessions) end(token string) {
	s.mu.Lock()
	delete(s.byKey, keyOf(token))
	s.mu.Unlock()
}

// endAll ends every session (after a password change).
func (s *sessions) endAll() {
	s.mu.Lock()
	clear(s.byKey)
	s.mu.Unlock()
}

func (s *sessions) setLimits(lifetime, idle time.Duration) {
	s.mu.Lock()
	s.lifetime, s.idle = lifetime, idle
	s.mu.Unlock()
}

// savedSession is one line of the file that carries the logins over a
// restart (a firmware update, the Restart button), so that the browser that
// asked for it can follow the outcome without logging in again.
type savedSession struct {
	Key      []byte    `json:"key"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// save writes the live sessions to path (mode 0600, atomically).
func (s *sessions) save(path string) error {
	now := s.now()
	s.mu.Lock()
	var out []savedSession
	for k, ss := range s.byKey {
		if !s.expired(ss, now) {
			out = append(out, savedSession{Key: k[:], Created: ss.created, LastSeen: ss.lastSeen})
		}
	}
	s.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	return atomicfile.Write(path, 0o600, func(w io.Writer) error { return json.NewEncoder(w).Encode(out) })
}

// restore takes the sessions saved by the previous process and removes the
// file, so that they survive one restart only. A missing file is no error;
// a damaged one is reported and dropped: nobody is logged in.
func (s *sessions) restore(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore sessions: %w", err)
	}
	os.Remove(path)
	var in []savedSession
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("restore sessions from %s: %w", path, err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range in {
		ss := &session{created: v.Created, lastSeen: v.LastSeen}
		if len(v.Key) != sha256.Size || s.expired(ss, now) {
			continue
		}
		s.byKey[sessionKey(v.Key)] = ss
	}
	return nil
}
