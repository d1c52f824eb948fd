package netstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The vectors below are written from HAProxy's proxy-protocol.txt (the
// copy Debian ships in /usr/share/doc/haproxy): section 2.1 for the lines,
// 2.2 for the binary layout (16-byte header: signature, ver_cmd, fam, len;
// then the address block of 12, 36 or 216 bytes; then TLVs of type, 16-bit
// length and value).

// v2 builds a binary header: ver_cmd, fam, the address block and TLVs.
func v2(verCmd, fam byte, block ...[]byte) []byte {
	var body []byte
	for _, b := range block {
		body = append(body, b...)
	}
	h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), verCmd, fam, 0, 0)
	binary.BigEndian.PutUint16(h[14:], uint16(len(body)))
	return append(h, body...)
}

// inet4 is an AF_INET address block: src, dst, src port, dst port.
func inet4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

// inet6 is an AF_INET6 address block.
func inet6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

// tlv is one type-length-value vector.
func tlv(typ byte, value []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(value))), value...)
}

const (
	ffff6     = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	httpAfter = "GET /demo HTTP/1.0\r\n\r\n"
)

type proxyVector struct {
	name  string
	in    []byte
	src   string // "" = local (the connection's own address)
	n     int    // header length; 0 = the whole input
	err   string // substring of the error; "short" = errProxyShort
	after string // appended to in (must not be consumed)
}

func proxyVectors() []proxyVector {
	return []proxyVector{
		// Version 1 (2.1).
		{name: "v1 spec example", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), src: "192.168.0.1:56324", after: "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"},
		{name: "v1 longest TCP4 (56 bytes)", in: []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), src: "255.255.255.255:65535"},
		{name: "v1 longest TCP6 (104 bytes)", in: []byte("PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"), src: "[" + ffff6 + "]:65535"},
		{name: "v1 TCP6 compressed", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4711 80\r\n"), src: "[2001:db8::1]:4711", after: httpAfter},
		{name: "v1 port 0", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 0 0\r\n"), src: "10.0.0.1:0"},
		{name: "v1 UNKNOWN short form (15 bytes)", in: []byte("PROXY UNKNOWN\r\n"), after: httpAfter},
		{name: "v1 UNKNOWN worst case (107 bytes)", in: []byte("PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n")},
		{name: "v1 UNKNOWN with anything", in: []byte("PROXY UNKNOWN whatever the sender had\r\n")},
		{name: "v1 leading zero in an octet", in: []byte("PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n"), err: "source address"},
		{name: "v1 leading zero in a port", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n"), err: "source port"},
		{name: "v1 port above 65535", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n"), err: "destination port"},
		{name: "v1 signed port", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 +5 443\r\n"), err: "source port"},
		{name: "v1 two spaces", in: []byte("PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n"), err: "single spaces"},
		{name: "v1 trailing space", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n"), err: "single spaces"},
		{name: "v1 missing port", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n"), err: "single spaces"},
		{name: "v1 TCP4 with IPv6", in: []byte("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n"), err: "not an IPv4 address"},
		{name: "v1 TCP6 with IPv4", in: []byte("PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n"), err: "not an IPv6 address"},
		{name: "v1 TCP6 with a zone", in: []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"), err: "not an IPv6 address"},
		{name: "v1 unknown protocol", in: []byte("PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n"), err: "not TCP4, TCP6 or UNKNOWN"},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n"), err: "bare LF"},
		{name: "v1 bare CR", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\rGET"), err: "CR without LF"},
		{name: "v1 no CRLF within 107 bytes", in: []byte("PROXY UNKNOWN " + strings.Repeat("x", 100)), err: "no CRLF within 107"},
		{name: "v1 108-byte line", in: []byte("PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 655350\r\n"), err: "no CRLF within 107"},
		{name: "v1 lower case", in: []byte("proxy TCP4 10.0.0.1 10.0.0.2 1 2\r\n"), err: "neither"},
		{name: "v1 prefix", in: []byte("PRO"), err: "short"},
		{name: "v1 incomplete line", in: []byte("PROXY TCP4 192.168.0.1 192.1"), err: "short"},
		{name: "v1 line ending in CR", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r"), err: "short"},

		// Version 2 (2.2).
		{name: "v2 TCP over IPv4", in: v2(0x21, 0x11, inet4("192.168.0.1", "192.168.0.11", 56324, 443)), src: "192.168.0.1:56324", after: httpAfter},
		{name: "v2 TCP over IPv6", in: v2(0x21, 0x21, inet6("2001:db8::1", "2001:db8::2", 4711, 80)), src: "[2001:db8::1]:4711", after: httpAfter},
		{name: "v2 IPv4-mapped IPv6", in: v2(0x21, 0x21, inet6("::ffff:192.0.2.7", "::ffff:192.0.2.1", 4711, 80)), src: "192.0.2.7:4711"},
		{name: "v2 TLVs skipped", in: v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2), tlv(0x04, []byte{0, 0, 0}), tlv(0x02, []byte("radio.example")), tlv(0x05, bytes.Repeat([]byte{7}, 128))), src: "192.0.2.7:1", after: httpAfter},
		{name: "v2 LOCAL without addresses", in: v2(0x20, 0x00), after: httpAfter},
		{name: "v2 LOCAL skips an address block", in: v2(0x20, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2)), after: httpAfter},
		{name: "v2 PROXY with AF_UNSPEC", in: v2(0x21, 0x00)},
		{name: "v2 UDP over IPv4 falls back", in: v2(0x21, 0x12, inet4("192.0.2.7", "192.0.2.1", 1, 2))},
		{name: "v2 UNIX stream falls back", in: v2(0x21, 0x31, make([]byte, 216))},
		{name: "v2 largest allowed (536 bytes)", in: v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2), tlv(0x04, make([]byte, 536-16-12-3))), src: "192.0.2.7:1"},
		{name: "v2 larger than 536 bytes", in: v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2), tlv(0x04, make([]byte, 536-16-12-2))), err: "larger than 536"},
		{name: "v2 version 1 nibble", in: v2(0x11, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2)), err: "with version 1"},
		{name: "v2 command 2", in: v2(0x22, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2)), err: "command 2"},
		{name: "v2 family 4", in: v2(0x21, 0x41, inet4("192.0.2.7", "192.0.2.1", 1, 2)), err: "0x41 is not defined"},
		{name: "v2 transport 3", in: v2(0x21, 0x13, inet4("192.0.2.7", "192.0.2.1", 1, 2)), err: "0x13 is not defined"},
		{name: "v2 IPv4 block too short", in: v2(0x21, 0x11, make([]byte, 8)), err: "8 bytes is shorter than family 1 needs (12)"},
		{name: "v2 IPv6 block too short", in: v2(0x21, 0x21, inet4("192.0.2.7", "192.0.2.1", 1, 2)), err: "12 bytes is shorter than family 2 needs (36)"},
		{name: "v2 UNIX block too short", in: v2(0x21, 0x31, make([]byte, 36)), err: "family 3 needs (216)"},
		{name: "v2 wrong signature", in: append([]byte("\r\n\r\n\x00\r\nQUIT\r"), 0x21, 0x11, 0, 12), err: "neither"},
		{name: "v2 signature prefix", in: []byte("\r\n\r\n\x00\r\n"), err: "short"},
		{name: "v2 header without its block", in: v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2))[:20], err: "short"},

		{name: "plain HTTP", in: []byte(httpAfter), err: "neither"},
		{name: "TLS ClientHello", in: []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, err: "neither"},
		{name: "nothing", in: nil, err: "short"},
	}
}

// TestParseProxyHeader checks the spec's vectors: the client address, the
// header length (nothing after it taken), and errors that say what is wrong.
func TestParseProxyHeader(t *testing.T) {
	for _, tt := range proxyVectors() {
		t.Run(tt.name, func(t *testing.T) {
			in := append(append([]byte(nil), tt.in...), tt.after...)
			h, n, err := parseProxyHeader(in)
			switch {
			case tt.err == "short":
				if !errors.Is(err, errProxyShort) {
					t.Fatalf("got %v, want errProxyShort", err)
				}
				return
			case tt.err != "":
				if err == nil || !errors.Is(err, ErrProxyHeader) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an ErrProxyHeader containing %q", err, tt.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if n != len(tt.in) {
				t.Fatalf("header length %d, want %d", n, len(tt.in))
			}
			if tt.src == "" {
				if !h.local {
					t.Fatalf("got client %s, want the connection's own address", h.src)
				}
			} else if h.local || h.src.String() != tt.src {
				t.Fatalf("got %+v, want client %s", h, tt.src)
			}
		})
	}
}

// FuzzParseProxyHeader checks, for any bytes: no panic; a header is at
// most 107 (v1) or 536 (v2) bytes, parses the same without what follows
// it, and every proper prefix of it is only incomplete; an incomplete
// input is shorter than the largest header.
func FuzzParseProxyHeader(f *testing.F) {
	for _, tt := range proxyVectors() {
		f.Add(append(append([]byte(nil), tt.in...), tt.after...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseProxyHeader(b)
		if errors.Is(err, errProxyShort) {
			if len(b) >= proxyV2Max {
				t.Fatalf("%d bytes still incomplete", len(b))
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrProxyHeader) {
				t.Fatalf("error %v does not wrap ErrProxyHeader", err)
			}
			return
		}
		if n <= 0 || n > len(b) || n > proxyV2Max || b[0] == 'P' && n > proxyV1Max {
			t.Fatalf("header length %d of %d bytes", n, len(b))
		}
		h2, n2, err := parseProxyHeader(b[:n])
		if err != nil || n2 != n || h2 != h {
			t.Fatalf("the header alone parses as %+v, %d, %v; with what follows %+v, %d", h2, n2, err, h, n)
		}
		for k := range n {
			if _, _, err := parseProxyHeader(b[:k]); !errors.Is(err, errProxyShort) {
				t.Fatalf("prefix of %d bytes of a %d-byte header: %v", k, n, err)
			}
		}
		if !h.local && h.src.Addr().Is4In6() {
			t.Fatalf("client %s left IPv4-mapped", h.src)
		}
	})
}

// socketPair returns the two ends of a loopback TCP connection.
func socketPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	_ = server.SetReadDeadline(time.Now().Add(hangGuard))
	return client, server
}

// TestReadProxyHeaderLeavesTheRest reads headers sent at once and in
// pieces (split at every byte for one v1 and one v2 header) from a real
// socket, and checks that what follows the header is left unread.
func TestReadProxyHeaderLeavesTheRest(t *testing.T) {
	for _, tt := range proxyVectors() {
		if tt.err != "" || tt.after == "" {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			splits := []int{len(tt.in)}
			if tt.name == "v1 spec example" || tt.name == "v2 TCP over IPv4" {
				splits = nil
				for k := 1; k < len(tt.in); k++ {
					splits = append(splits, k)
				}
			}
			for _, k := range splits {
				client, server := socketPair(t)
				msg := append(append([]byte(nil), tt.in...), tt.after...)
				go func() {
					_, _ = client.Write(msg[:k])
					time.Sleep(time.Millisecond) // a separate segment, most of the time
					_, _ = client.Write(msg[k:])
				}()
				buf := make([]byte, quickHead)
				h, err := readProxyHeader(server, buf)
				if err != nil {
					t.Fatalf("split at %d: %v", k, err)
				}
				if tt.src != "" && h.src.String() != tt.src || tt.src == "" && !h.local {
					t.Fatalf("split at %d: got %+v, want %q", k, h, tt.src)
				}
				rest := make([]byte, len(tt.after))
				if _, err := io.ReadFull(server, rest); err != nil || string(rest) != tt.after {
					t.Fatalf("split at %d: after the header the socket held %q (%v), want %q", k, rest, err, tt.after)
				}
			}
		})
	}
}

// TestReadProxyHeaderBounded: a peer that stops inside a header is cut off
// by the read deadline; one that sends no header, a bad one or an endless
// line is refused after reading at most the largest header.
func TestReadProxyHeaderBounded(t *testing.T) {
	cases := []struct {
		name string
		send []byte
		want string
	}{
		{"stops inside a v1 line", []byte("PROXY TCP4 192.0.2.7 "), "timeout"},
		{"stops inside a v2 block", v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2))[:20], "timeout"},
		{"closes inside a header", []byte("PROXY TCP4 192.0.2.7 "), "closed after 21 bytes"},
		{"plain HTTP", []byte(httpAfter), "neither"},
		{"endless line", bytes.Repeat([]byte("PROXY "), 1000), "no CRLF within 107"},
		{"oversized v2", v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2), tlv(0x04, make([]byte, 4000))), "larger than 536"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			client, server := socketPair(t)
			if _, err := client.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			switch tt.want {
			case "timeout":
				_ = server.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // absence: the rest of the header never comes
			case "closed after 21 bytes":
				client.(*net.TCPConn).CloseWrite()
			}
			_, err := readProxyHeader(server, make([]byte, quickHead))
			if err == nil || !errors.Is(err, ErrProxyHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrProxyHeader containing %q", err, tt.want)
			}
		})
	}
}

// TestReadProxyHeaderAllocs: reading a header allocates only the socket's
// RawConn handle (the buffer is the handshake's head buffer).
func TestReadProxyHeaderAllocs(t *testing.T) {
	client, server := socketPair(t)
	hdr := v2(0x21, 0x11, inet4("192.0.2.7", "192.0.2.1", 1, 2))
	line := []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
	buf := make([]byte, quickHead)
	for _, h := range [][]byte{hdr, line} {
		read := func() {
			if _, err := client.Write(h); err != nil {
				t.Fatal(err)
			}
			if _, err := readProxyHeader(server, buf); err != nil {
				t.Fatal(err)
			}
		}
		read()
		if a := testing.AllocsPerRun(200, read); a > 1 {
			t.Fatalf("%q: %v allocations per header, want at most 1", h[:5], a)
		}
	}
}
