package pcsc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
)

// Config says which pcscd and which of its readers a Slot uses.
type Config struct {
	// Socket is pcscd's socket; empty means DefaultSocket.
	Socket string
	// Reader selects the reader: its index in pcscd's list ("0", "1", …),
	// its full name, or a prefix that matches exactly one reader.
	Reader string
	// Poll is how often the reader state is read for insertions and
	// removals (default 200 ms).
	Poll time.Duration
	// Timeout bounds one exchange with pcscd (default 5 s); CardTimeout
	// bounds a card's answer to one APDU (default 10 s).
	Timeout, CardTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.CardTimeout <= 0 {
		c.CardTimeout = 10 * time.Second
	}
	return c
}

// ErrNoReader reports that pcscd has no reader matching the configured one.
var ErrNoReader = errors.New("pcsc: no such reader")

// Slot is a PC/SC reader as a cardreader.APDUSlot. A goroutine follows the
// reader's state in pcscd and reports insertions and removals.
type Slot struct {
	name   string
	cfg    Config
	events chan hal.Event
	stop   chan struct{}
	// closeOnce makes concurrent Close calls close stop once.
	closeOnce sync.Once
	done      chan struct{}

	mu      sync.Mutex
	present bool
	reader  string // the matched reader name, "" until found
	lastErr error  // why the reader is not available, nil when it is
	client  *Client
	card    *Card
}

var _ cardreader.APDUSlot = (*Slot)(nil)

// Open starts following the reader cfg selects. The daemon need not be up
// yet: until it is, the slot reports no card and retries every poll.
func Open(name string, cfg Config) *Slot {
	s := &Slot{name: name, cfg: cfg.withDefaults(), events: make(chan hal.Event, 4),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.watch()
	return s
}

// Name returns the slot's configured name.
func (s *Slot) Name() string { return s.name }

// Events delivers card insertions and removals seen in pcscd's reader
// state; it is closed by Close.
func (s *Slot) Events() <-chan hal.Event { return s.events }

// Present reports whether pcscd last showed a card in the reader. An
// unreachable daemon or a missing reader counts as no card; Err says why.
func (s *Slot) Present() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.present, nil
}

// Err returns why the reader is unavailable, or nil.
func (s *Slot) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Reader returns the name of the matched pcscd reader, or "".
func (s *Slot) Reader() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reader
}

// watch polls the reader state until Close.
func (s *Slot) watch() {
	defer close(s.done)
	defer close(s.events)
	var (
		w      *Client
		events uint32
		known  bool
	)
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		st, err := s.poll(&w)
		present := err == nil && st.Present()
		s.mu.Lock()
		was := s.present
		s.present, s.lastErr = present, err
		if err == nil {
			s.reader = st.Name
		}
		s.mu.Unlock()
		switch {
		case was && (!present || st.Events != events):
			// A changed event counter with a card still present is a
			// removal and an insertion between two polls.
			if !s.emit(hal.CardRemoved) || (present && !s.emit(hal.CardInserted)) {
				return
			}
		case !was && present && known:
			if !s.emit(hal.CardInserted) {
				return
			}
		}
		events, known = st.Events, true
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// poll reads the state of the selected reader, dialling pcscd on the watch
// connection *w when needed.
func (s *Slot) poll(w **Client) (ReaderState, error) {
	if *w == nil {
		c, err := Dial(s.cfg.Socket, s.cfg.Timeout)
		if err != nil {
			return ReaderState{}, err
		}
		*w = c
	}
	states, err := (*w).ReaderStates()
	if err != nil {
		(*w).Close()
		*w = nil
		return ReaderState{}, err
	}
	return pick(states, s.cfg.Reader)
}

// pick selects the reader by index, full name or unique prefix.
func pick(states []ReaderState, sel string) (ReaderState, error) {
	if i, err := strconv.Atoi(sel); err == nil {
		if i < 0 || i >= len(states) {
			return ReaderState{}, fmt.Errorf("%w: index %d, pcscd has %d reader(s)%s", ErrNoReader, i, len(states), names(states))
		}
		return states[i], nil
	}
	var match []ReaderState
	for _, st := range states {
		if st.Name == sel {
			return st, nil
		}
		if strings.HasPrefix(st.Name, sel) {
			match = append(match, st)
		}
	}
	if len(match) == 1 {
		return match[0], nil
	}
	return ReaderState{}, fmt.Errorf("%w: %q matches %d reader(s)%s", ErrNoReader, sel, len(match), names(states))
}

func names(states []ReaderState) string {
	if len(states) == 0 {
		return ""
	}
	n := make([]string, len(states))
	for i, st := range states {
		n[i] = strconv.Quote(st.Name)
	}
	return ": " + strings.Join(n, ", ")
}

// emit delivers an event unless the slot is closing.
func (s *Slot) emit(k hal.EventKind) bool {
	select {
	case s.events <- hal.Event{Kind: k, At: time.Now()}:
		return true
	case <-s.stop:
		return false
	}
}

// Connect connects to the card (ColdReset) or resets the connected card
// (WarmReset) and returns its transport.
func (s *Slot) Connect(ctx context.Context, kind hal.ResetKind) (cardreader.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == hal.WarmReset && s.card != nil {
		if err := s.card.Reconnect(); err != nil {
			return nil, s.cardErr(err)
		}
		return s.transport()
	}
	s.dropCard()
	if s.client == nil {
		c, err := Dial(s.cfg.Socket, s.cfg.Timeout)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	if s.reader == "" {
		return nil, fmt.Errorf("%w: %v", hal.ErrNoCard, s.lastErr)
	}
	card, err := s.client.Connect(s.reader, s.cfg.CardTimeout)
	if err != nil {
		return nil, s.cardErr(err)
	}
	s.card = card
	return s.transport()
}

// transport reads the ATR pcscd holds for the connected card.
func (s *Slot) transport() (cardreader.Transport, error) {
	states, err := s.client.ReaderStates()
	if err != nil {
		return nil, s.cardErr(err)
	}
	st, err := pick(states, s.reader)
	if err != nil {
		return nil, err
	}
	if !st.Present() || len(st.ATR) == 0 {
		return nil, fmt.Errorf("reader %q: %w", s.reader, hal.ErrNoCard)
	}
	atr, err := iso7816.ParseATR(st.ATR, iso7816.Strict)
	if err != nil {
		if atr, err = iso7816.ParseATR(st.ATR, iso7816.Lenient); err != nil {
			return nil, fmt.Errorf("reader %q: ATR % X: %w", s.reader, st.ATR, err)
		}
	}
	return &transport{card: s.card, atr: atr}, nil
}

// cardErr marks errors that mean the card is gone and drops a connection
// pcscd closed.
func (s *Slot) cardErr(err error) error {
	var rv Code
	if errors.As(err, &rv) {
		if rv.cardGone() {
			return fmt.Errorf("%w: %w", hal.ErrNoCard, err)
		}
		return err
	}
	// Not a PC/SC return value: the connection to pcscd failed.
	s.dropCard()
	if s.client != nil {
		s.client.conn.Close()
		s.client = nil
	}
	return err
}

func (s *Slot) dropCard() {
	if s.card != nil {
		s.card.Disconnect()
		s.card = nil
	}
}

// Deactivate disconnects from the card and powers it down.
func (s *Slot) Deactivate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropCard()
	return nil
}

// Close stops following the reader and closes the connections.
func (s *Slot) Close() error {
	closing := false
	s.closeOnce.Do(func() { closing = true; close(s.stop) })
	if !closing {
		return nil // closed before, or by a concurrent Close
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropCard()
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	return nil
}
