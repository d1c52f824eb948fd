package dvbapi

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Service is a snapshot of one programme a client asked satd to descramble,
// for the web form's Status page (OSCam's client rows with their last
// request). Strings come from clients and readers: they are untrusted.
type Service struct {
	// Client is the name the client gave in CLIENT_INFO ("Tvheadend 4.3",
	// "Enigma2"), or its peer address before the handshake.
	Client string
	// Peer is the client's address ("127.0.0.1:40312", "unix:/tmp/camd.socket").
	Peer string
	// Protocol is the client's protocol version, 0 before CLIENT_INFO.
	Protocol int
	// Conn numbers the connection in the order the server accepted it.
	Conn int

	Adapter, Demux uint8
	SID, PMTPID    uint16
	TSID, ONID     uint16

	// State is "searching" (filter on an ECM PID, no CW yet),
	// "descrambling", "retrying" (every ECM PID failed; backing off) or
	// "free-to-air" (the CA PMT had no CA descriptor).
	State string
	// CAID, Provider and ECMPID name the ECM PID in use (the last one
	// tried while retrying).
	CAID     uint16
	Provider uint32
	ECMPID   uint16

	// Reader, System and ECMTime describe the last answer that carried a
	// CW: the reader's label, its card system and how long it took.
	Reader  string
	System  string
	ECMTime time.Duration
	// LastECM is when the last answer (found or failed) arrived; zero
	// before the first one.
	LastECM time.Time
	// ECMOK counts ECMs answered with a CW, ECMFailed those not found or
	// timed out, since the programme started.
	ECMOK, ECMFailed uint64
	// Since is when the programme started (its first CA PMT).
	Since time.Time
}

// serviceStats is the Status page's bookkeeping of a programme, updated
// under the connection's lock as answers arrive.
type serviceStats struct {
	since   time.Time
	lastAt  time.Time
	inUse   ECMStream
	after   time.Duration
	reader  string
	system  string
	ok, nok uint64
}

// count records an answer: a string header copy and a clock read, nothing
// allocated.
func (st *serviceStats) count(a *ECMAnswer) {
	st.lastAt = time.Now()
	if a.Result != Found {
		st.nok++
		return
	}
	st.ok++
	st.after, st.reader, st.system = a.After, a.Reader, a.System
}

func (s progState) String() string {
	switch s {
	case stTrying:
		return "searching"
	case stDescrambling:
		return "descrambling"
	case stBackoff:
		return "retrying"
	}
	return "free-to-air"
}

// Services appends to dst[:0] a snapshot of every programme of every
// connected client, ordered by connection and slot. It takes each
// connection's lock in turn, so it is safe while ECMs flow and never holds
// up more than one connection at a time.
func (s *Server) Services(dst []Service) []Service {
	dst = dst[:0]
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		dst = c.services(dst)
	}
	slices.SortFunc(dst, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Conn, b.Conn), cmp.Compare(a.Demux, b.Demux), cmp.Compare(a.SID, b.SID))
	})
	return dst
}

// services appends the connection's active programmes.
func (c *conn) services(dst []Service) []Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	client := c.client
	if client == "" {
		client = c.peer
	}
	for _, p := range c.progs {
		if p == nil || !p.active {
			continue
		}
		st := &p.stats
		dst = append(dst, Service{
			Client: client, Peer: c.peer, Protocol: c.version, Conn: c.id,
			Adapter: p.id.adapter, Demux: p.id.demux, SID: p.id.program, PMTPID: p.id.pmtPID, TSID: p.id.tsid, ONID: p.id.onid,
			State: p.state.String(), CAID: st.inUse.CAID, Provider: st.inUse.PRID, ECMPID: st.inUse.PID,
			Reader: st.reader, System: st.system, ECMTime: st.after, LastECM: st.lastAt,
			ECMOK: st.ok, ECMFailed: st.nok, Since: st.since,
		})
	}
	return dst
}

// clientName makes the CLIENT_INFO name printable: control characters
// become spaces and the result is trimmed.
func clientName(b []byte) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, string(b)))
}
