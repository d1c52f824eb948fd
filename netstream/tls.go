package netstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoCertificate is returned when an ssl listen socket has no usable
// certificate.
var ErrNoCertificate = errors.New("ssl listen socket needs ssl-certificate")

// ListenSocket is one [[stream.listen-socket]] table: a socket besides
// listen, with the names of Icecast's <listen-socket>.
type ListenSocket struct {
	Port        int    `toml:"port" comment:"TCP port (0 = any free port, for tests)"`
	BindAddress string `toml:"bind-address" comment:"address to bind (empty = all)"`
	SSL         bool   `toml:"ssl" comment:"serve HTTPS on this socket with ssl-certificate"`
}

func (ls ListenSocket) addr() string {
	return net.JoinHostPort(ls.BindAddress, strconv.Itoa(ls.Port))
}

// validateSockets reports problems of the listen sockets and TLS files.
func (c Config) validateSockets(report func(key, msg string)) {
	ssl := false
	for i, ls := range c.ListenSockets {
		key := fmt.Sprintf("listen-socket[%d].", i)
		if ls.Port < 0 || ls.Port > 65535 {
			report(key+"port", fmt.Sprintf("%d is not a TCP port", ls.Port))
		}
		if ls.BindAddress != "" && net.ParseIP(ls.BindAddress) == nil {
			report(key+"bind-address", fmt.Sprintf("%q is not an IP address", ls.BindAddress))
		}
		ssl = ssl || ls.SSL
	}
	if ssl && c.SSLCertificate == "" {
		report("ssl-certificate", ErrNoCertificate.Error())
	}
}

// loadCertificate reads ssl-certificate (and ssl-key, or the key from the
// same PEM file, as Icecast's single <ssl-certificate> file holds both).
func loadCertificate(c *Config) (*tls.Certificate, error) {
	if c.SSLCertificate == "" {
		return nil, nil
	}
	key := c.SSLKey
	if key == "" {
		key = c.SSLCertificate
	}
	cert, err := loadPair(c.SSLCertificate, key)
	if err != nil {
		return nil, fmt.Errorf("netstream: ssl-certificate %s: %w", c.SSLCertificate, err)
	}
	return cert, nil
}

// loadPair reads a PEM certificate chain and its private key (RSA, ECDSA
// or Ed25519, PKCS #1, SEC 1 or PKCS #8, as tls.X509KeyPair takes them),
// each file capped at 1 MiB.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cb, err := readCapped(certFile, 1<<20)
	if err != nil {
		return nil, err
	}
	kb := cb
	if keyFile != certFile {
		if kb, err = readCapped(keyFile, 1<<20); err != nil {
			return nil, err
		}
	}
	cert, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// serverTLS is the listener-side TLS configuration; the certificate is
// looked up per handshake, so a reload (SIGHUP) takes effect for new
// connections without rebinding.
func (s *Server) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.cert.Load(); c != nil {
				return c, nil
			}
			return nil, ErrNoCertificate
		},
	}
}

// boundSocket is one bound listen socket.
type boundSocket struct {
	cfg ListenSocket
	ln  net.Listener
}

// bindSockets binds the listen sockets of cfg, reusing those of cur whose
// settings did not change; the rest of cur is closed by the caller.
func (s *Server) bindSockets(cfg []ListenSocket, cur []boundSocket) ([]boundSocket, []boundSocket, error) {
	var out []boundSocket
	keep := make([]bool, len(cur))
	for _, ls := range cfg {
		i := slices.IndexFunc(cur, func(b boundSocket) bool { return b.cfg == ls })
		if i >= 0 && !keep[i] {
			keep[i] = true
			out = append(out, cur[i])
			continue
		}
		ln, err := listen(ls.addr())
		if err != nil {
			for _, b := range out {
				if !slices.ContainsFunc(cur, func(c boundSocket) bool { return c.ln == b.ln }) {
					_ = b.ln.Close()
				}
			}
			return nil, nil, err
		}
		out = append(out, boundSocket{cfg: ls, ln: ln})
		s.wg.Add(1)
		go s.acceptLoop(ln, ls.SSL)
	}
	var drop []boundSocket
	for i, b := range cur {
		if !keep[i] {
			drop = append(drop, b)
		}
	}
	return out, drop, nil
}

// tlsPipe gives a writer shard a plain non-blocking socket for a TLS
// listener: the shard writes into one end of a socket pair exactly as into
// a TCP socket (ICY, bursts, slow-listener skips unchanged), and a goroutine
// encrypts what comes out of the other end onto the TLS connection. A TLS
// listener therefore costs a goroutine and a socket pair more than a plain
// one; its backpressure reaches the shard through the pair's buffer.
func (s *Server) tlsPipe(tc *tls.Conn) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("tls listener socket pair: %w", err)
	}
	// Keep the pair's buffer near a TCP send buffer's unsent limit, so a
	// slow TLS client shows as a full socket as early as a plain one.
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10)
	f := os.NewFile(uintptr(fds[1]), "tls-pipe")
	pc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[0])
		return -1, fmt.Errorf("tls listener socket pair: %w", err)
	}
	wt := s.conf().WriteTimeout.Std()
	go func() {
		defer tc.Close()
		defer pc.Close()
		buf := make([]byte, 16<<10)
		for {
			n, err := pc.Read(buf)
			if n > 0 {
				_ = tc.SetWriteDeadline(time.Now().Add(wt))
				if _, werr := tc.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return fds[0], nil
}

// upstreamConn wraps a dialled upstream connection in TLS for https URLs.
func upstreamConn(ctx context.Context, conn net.Conn, host string, base *tls.Config) (net.Conn, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	cfg.ServerName = host
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}
