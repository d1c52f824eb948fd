// Package fdlimit raises the process's descriptor limit at start and divides
// it among the listening ports, so that a flood of connections on one port
// (idle stream listeners, a slowloris on the web form) cannot take the
// descriptors another port needs to accept: each port holds at most its
// share open, and what is left over stays reserved for files, upstream
// connections and card readers.
//
// A port at its share stops accepting until one of its connections closes;
// the waiting connections stay in the kernel's backlog, where they cost the
// process no descriptor. A port may also cap the connections of each peer
// address, closing the excess at once, so that one peer cannot hold the
// port's whole share.
package fdlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// Shares of the descriptor limit, in percent, one per kind of port. They add
// up to 75: the last quarter is reserved for state files, upstream
// connections, card readers and the log.
const (
	ShareStream = 50 // radio listeners and sources
	ShareWeb    = 15 // the web form (browsers keep ~6 connections each)
	ShareDVBAPI = 10 // dvbapi clients (a handful per receiver)
)

// minShare keeps a port usable however low the limit is.
const minShare = 16

var limit atomic.Uint64

func init() { limit.Store(1024) }

// Raise lifts the soft RLIMIT_NOFILE to the hard limit and returns the soft
// limit now in force. (Go's runtime already lifts it on Linux; Raise makes
// it explicit, and reads the figure the shares are computed from.) On failure the limit stays as it was and is still
// returned, with the error.
func Raise() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return limit.Load(), err
	}
	var err error
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			rl = want
		}
	}
	limit.Store(uint64(rl.Cur))
	return uint64(rl.Cur), err
}

// Limit returns the soft descriptor limit last read by Raise (1024 before).
func Limit() uint64 { return limit.Load() }

// Share returns how many connections a port of the given share (percent)
// may hold open under the current limit.
func Share(percent int) int {
	n := int(min(Limit(), 1<<24) * uint64(percent) / 100)
	return max(n, minShare)
}

// Listener is a net.Listener that holds at most a fixed number of accepted
// connections open at once, and optionally at most a few per peer address.
type Listener struct {
	net.Listener
	sem     chan struct{}
	done    chan struct{}
	closeMu sync.Once
	waits   atomic.Uint64
	shed    atomic.Uint64
	open    atomic.Int64

	perPeer int
	mu      sync.Mutex
	peers   map[netip.Addr]int
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("fdlimit: listener closed")

// Wrap limits ln to n open connections (n < 1 means minShare).
func Wrap(ln net.Listener, n int) *Listener {
	if n < 1 {
		n = minShare
	}
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), peers: map[netip.Addr]int{}}
}

// PerPeer limits each peer address (an IPv6 /64 counts as one) to n open
// connections; a peer's connection beyond them is closed at once, so that
// one peer cannot hold every slot. 0 means no per-peer limit. Call it
// before the first Accept.
func (l *Listener) PerPeer(n int) *Listener {
	l.perPeer = n
	return l
}

// Accept waits for a free slot, then for a connection from a peer under
// its own limit.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		l.waits.Add(1)
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, ErrClosed
		}
	}
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		peer, ok := l.admit(c)
		if !ok {
			l.shed.Add(1)
			c.Close()
			continue
		}
		l.open.Add(1)
		return &conn{Conn: c, release: func() { l.release(peer) }}, nil
	}
}

// admit counts c against its peer's limit.
func (l *Listener) admit(c net.Conn) (netip.Addr, bool) {
	if l.perPeer <= 0 {
		return netip.Addr{}, true
	}
	peer := peerOf(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer] >= l.perPeer {
		return peer, false
	}
	l.peers[peer]++
	return peer, true
}

// peerOf is the key a remote address is counted under.
func peerOf(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func (l *Listener) release(peer netip.Addr) {
	l.open.Add(-1)
	if l.perPeer > 0 {
		l.mu.Lock()
		if l.peers[peer]--; l.peers[peer] <= 0 {
			delete(l.peers, peer)
		}
		l.mu.Unlock()
	}
	<-l.sem
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *Listener) Close() error {
	l.closeMu.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns the number of accepted connections not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Cap returns the most connections the listener holds open at once.
func (l *Listener) Cap() int { return cap(l.sem) }

// Full returns how many times Accept found the listener at its cap.
func (l *Listener) Full() uint64 { return l.waits.Load() }

// Shed returns how many connections were closed at once because their peer
// held its limit.
func (l *Listener) Shed() uint64 { return l.shed.Load() }

// conn gives its slot back on the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Unwrap returns the accepted connection (for splice and SyscallConn users).
func (c *conn) Unwrap() net.Conn { return c.Conn }
