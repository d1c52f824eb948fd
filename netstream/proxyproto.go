package netstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2).
//
// A load balancer in TCP or HTTP mode that is listed in proxy-protocol-from
// ("send-proxy" or "send-proxy-v2" on HAProxy's server line) prepends one
// header to each connection naming the client it relays. The relay then
// knows every connection by the client's address before it reads the
// request: deny-ip, allow-ip, handshakes-per-client, the password lockout,
// the auth backend's ip field, /admin/listclients and the log all see the
// listener, not the balancer. The spec forbids guessing whether a header is
// present, so a listed source must send one (or its connection is closed)
// and nobody else may (theirs is read as a bad request).
//
// The header is read without reading past it: the HTTP request (or TLS
// handshake) that follows is left in the socket for the code that reads it
// without a PROXY header. The socket is peeked (MSG_PEEK, as the spec's
// sample receiver does) into the handshake's head buffer, and exactly the
// header's bytes are then consumed.

// Header sizes. A version 1 line is at most 107 bytes with its CRLF
// ("PROXY UNKNOWN" with two full IPv6 addresses and ports). A version 2
// header is 16 bytes plus its length field; proxyV2Max caps the whole
// header at the spec's smallest TCP segment (576 - 40 = 536 bytes), which
// every sender keeps to so the header arrives at once: room for the
// largest address block (AF_UNIX, 216 bytes) and 304 bytes of TLVs.
const (
	proxyV1Max = 107
	proxyV2Max = 536
)

// proxyV2Sig is the 12-byte signature of a version 2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ErrProxyHeader is wrapped by every error about a PROXY protocol header.
var ErrProxyHeader = errors.New("PROXY header")

// errProxyShort reports that the bytes so far are a valid beginning of a
// header that needs more bytes.
var errProxyShort = errors.New("PROXY header incomplete")

func proxyErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProxyHeader}, args...)...)
}

// proxyHeader is a parsed header: the client's address, or local when the
// connection's own address stands (v2 LOCAL, v1 UNKNOWN, families and
// transports the relay does not use).
type proxyHeader struct {
	src   netip.AddrPort
	local bool
}

// parseProxyHeader parses the header at the start of b. It returns the
// header and its length, errProxyShort when b is a valid beginning that
// needs more bytes, or an error wrapping ErrProxyHeader that says what is
// wrong.
func parseProxyHeader(b []byte) (proxyHeader, int, error) {
	switch {
	case len(b) >= 5 && string(b[:5]) == "PROXY":
		return parseProxyV1(b)
	case len(b) >= len(proxyV2Sig) && bytes.Equal(b[:len(proxyV2Sig)], proxyV2Sig):
		return parseProxyV2(b)
	case len(b) < 5 && string(b) == "PROXY"[:len(b)],
		len(b) < len(proxyV2Sig) && bytes.Equal(b, proxyV2Sig[:len(b)]):
		return proxyHeader{}, 0, errProxyShort
	}
	return proxyHeader{}, 0, proxyErr("neither a version 1 nor a version 2 signature at the start (first bytes %q)", b[:min(len(b), 16)])
}

// parseProxyV1 parses a human-readable line: "PROXY TCP4|TCP6 src dst
// sport dport\r\n" with exactly one space between fields, or "PROXY
// UNKNOWN" followed by anything up to the CRLF. A valid TCP4 line is
// parsed without allocating (a TCP6 address costs its text).
func parseProxyV1(b []byte) (proxyHeader, int, error) {
	line := b[:min(len(b), proxyV1Max)]
	end := bytes.IndexByte(line, '\n')
	if end < 0 {
		if i := bytes.IndexByte(line, '\r'); i >= 0 && i+1 < len(line) {
			return proxyHeader{}, 0, proxyErr("version 1 line has a CR without LF at byte %d", i)
		}
		if len(b) >= proxyV1Max {
			return proxyHeader{}, 0, proxyErr("version 1 line has no CRLF within %d bytes", proxyV1Max)
		}
		return proxyHeader{}, 0, errProxyShort
	}
	if end == 0 || line[end-1] != '\r' {
		return proxyHeader{}, 0, proxyErr("version 1 line ends in a bare LF at byte %d", end)
	}
	text := line[:end-1]
	if i := bytes.IndexByte(text, '\r'); i >= 0 {
		return proxyHeader{}, 0, proxyErr("version 1 line has a CR without LF at byte %d", i)
	}
	if bytes.HasPrefix(text, []byte("PROXY UNKNOWN")) && (len(text) == 13 || text[13] == ' ') {
		return proxyHeader{local: true}, end + 1, nil
	}
	var f [7][]byte
	if splitSpaces(text, &f) != 6 {
		return proxyHeader{}, 0, proxyErr("version 1 line %q is not PROXY, protocol, 2 addresses and 2 ports separated by single spaces", text)
	}
	var v6 bool
	switch string(f[1]) {
	case "TCP4":
	case "TCP6":
		v6 = true
	default:
		return proxyHeader{}, 0, proxyErr("version 1 protocol %q is not TCP4, TCP6 or UNKNOWN", f[1])
	}
	src, err := proxyV1Addr(f[2], v6)
	if err != nil {
		return proxyHeader{}, 0, proxyErr("version 1 source address: %v", err)
	}
	if _, err := proxyV1Addr(f[3], v6); err != nil {
		return proxyHeader{}, 0, proxyErr("version 1 destination address: %v", err)
	}
	sport, ok := proxyV1Num(f[4], 65535)
	if !ok {
		return proxyHeader{}, 0, proxyErr("version 1 source port %q is not 0-65535 without leading zeros", f[4])
	}
	if _, ok := proxyV1Num(f[5], 65535); !ok {
		return proxyHeader{}, 0, proxyErr("version 1 destination port %q is not 0-65535 without leading zeros", f[5])
	}
	return proxyHeader{src: netip.AddrPortFrom(src, uint16(sport))}, end + 1, nil
}

// splitSpaces splits s at single spaces into f and returns the number of
// fields (len(f) when there are more). Two spaces, or a space at either
// end, give an empty field, which no field parser accepts.
func splitSpaces(s []byte, f *[7][]byte) int {
	for k := range f {
		i := bytes.IndexByte(s, ' ')
		if i < 0 {
			f[k] = s
			return k + 1
		}
		f[k], s = s[:i], s[i+1:]
	}
	return len(f)
}

// proxyV1Addr parses an address of the family the protocol names: four
// decimal octets without leading zeros for TCP4, IPv6 without a zone for
// TCP6.
func proxyV1Addr(b []byte, v6 bool) (netip.Addr, error) {
	if !v6 {
		var a [4]byte
		for k := range a {
			i := bytes.IndexByte(b, '.')
			if k == 3 {
				i = len(b)
			}
			v, ok := proxyV1Num(b[:max(i, 0)], 255)
			if i < 0 || !ok {
				return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address (4 octets 0-255, no leading zeros)", b)
			}
			a[k] = byte(v)
			b = b[min(i+1, len(b)):]
		}
		return netip.AddrFrom4(a), nil
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", b)
	}
	return a.Unmap(), nil
}

// proxyV1Num parses a decimal number 0-limit without sign or leading zeros.
func proxyV1Num(b []byte, limit int) (int, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v <= limit
}

// parseProxyV2 parses a binary header whose signature is in place.
func parseProxyV2(b []byte) (proxyHeader, int, error) {
	if len(b) < 16 {
		return proxyHeader{}, 0, errProxyShort
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return proxyHeader{}, 0, proxyErr("version 2 signature with version %d", verCmd>>4)
	}
	if cmd := verCmd & 0xf; cmd > 1 {
		return proxyHeader{}, 0, proxyErr("version 2 command %d is neither LOCAL (0) nor PROXY (1)", cmd)
	}
	size := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if size > proxyV2Max {
		return proxyHeader{}, 0, proxyErr("version 2 header of %d bytes is larger than %d", size, proxyV2Max)
	}
	family, transport := fam>>4, fam&0xf
	if family > 3 || transport > 2 {
		return proxyHeader{}, 0, proxyErr("version 2 family/transport byte 0x%02x is not defined", fam)
	}
	if need := [4]int{0, 12, 36, 216}[family]; size-16 < need {
		return proxyHeader{}, 0, proxyErr("version 2 address block of %d bytes is shorter than family %d needs (%d)", size-16, family, need)
	}
	if len(b) < size {
		return proxyHeader{}, 0, errProxyShort
	}
	// LOCAL (health checks) keeps the connection's endpoints whatever the
	// family says; UNSPEC, UDP and AF_UNIX fall back to it too (the spec
	// lets a receiver that does not use them do so).
	if verCmd&0xf == 0 || transport != 1 || family == 0 || family == 3 {
		return proxyHeader{local: true}, size, nil
	}
	a := b[16:size]
	if family == 1 {
		return proxyHeader{src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), binary.BigEndian.Uint16(a[8:10]))}, size, nil
	}
	src := netip.AddrFrom16([16]byte(a[:16])).Unmap()
	return proxyHeader{src: netip.AddrPortFrom(src, binary.BigEndian.Uint16(a[32:34]))}, size, nil
}

// readProxyHeader reads one PROXY header from conn and nothing after it,
// using buf (at least proxyV2Max bytes) and conn's read deadline. Bytes are
// peeked and only those known to belong to the header are consumed: all of
// them while the header is incomplete (so the next peek waits for more),
// exactly the header's length once it is complete.
func readProxyHeader(conn net.Conn, buf []byte) (proxyHeader, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return proxyHeader{}, proxyErr("connection %T is not a socket", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return proxyHeader{}, proxyErr("%v", err)
	}
	p := peekers.Get().(*peeker)
	defer peekers.Put(p)
	p.rc = rc
	defer func() { p.rc, p.p = nil, nil }()
	n := 0
	buf = buf[:proxyV2Max]
	for {
		k, err := p.peekInto(buf[n:])
		if err != nil {
			return proxyHeader{}, proxyErr("after %d bytes: %v", n, err)
		}
		if k == 0 {
			return proxyHeader{}, proxyErr("connection closed after %d bytes", n)
		}
		h, size, err := parseProxyHeader(buf[:n+k])
		switch {
		case err == nil:
			_, err = io.ReadFull(conn, buf[n:size])
			return h, err
		case !errors.Is(err, errProxyShort):
			return proxyHeader{}, err
		}
		if _, err := io.ReadFull(conn, buf[n:n+k]); err != nil {
			return proxyHeader{}, proxyErr("after %d bytes: %v", n, err)
		}
		n += k
	}
}

// recvPeek copies up to len(p) bytes waiting on socket fd into p without
// consuming them. It is recvfrom(2) with MSG_PEEK and no address, called
// directly: unix.Recvfrom allocates the address buffer on every call.
func recvPeek(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_PEEK, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// peekers holds peekers whose fn is bound once, so reading a header
// allocates only the socket's RawConn.
var peekers = sync.Pool{New: func() any { p := &peeker{}; p.fn = p.peek; return p }}

// peeker peeks a socket through its RawConn.
type peeker struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func (p *peeker) peek(fd uintptr) bool {
	for {
		n, err := recvPeek(int(fd), p.p)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false // wait for data (or the read deadline)
		}
		p.n, p.err = max(n, 0), err
		return true
	}
}

// peekInto waits until the socket has data and copies what is there (at
// most len(b) bytes) into b without consuming it.
func (p *peeker) peekInto(b []byte) (int, error) {
	p.p, p.n, p.err = b, 0, nil
	if err := p.rc.Read(p.fn); err != nil {
		return 0, err
	}
	return p.n, p.err
}
