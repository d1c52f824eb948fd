package netstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"satd.dev/satd/internal/browsertest"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 (certificate
// and key in one PEM file, like Icecast's ssl-certificate) and returns the
// file, the parsed certificate and the key alone in a second file.
func selfSigned(t testing.TB, dir, cn string) (pemFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile = filepath.Join(dir, cn+".pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...)
	if err := os.WriteFile(pemFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pemFile, cert
}

// peerCert returns the certificate an HTTPS socket presents.
func peerCert(t testing.TB, addr string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestHTTPSListenerAndUpstream is Done-when 2: a relay with an ssl listen
// socket serves a mount over HTTPS that ffmpeg and Chromium play (the
// self-signed certificate trusted: ffmpeg's ca_file, Chromium's SPKI
// allow-list), a second relay relays it from its https:// URL, and a
// reload (what SIGHUP does) switches to a new certificate.
func TestHTTPSListenerAndUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("plays audio over TLS with real clients")
	}
	needFFmpeg(t)
	dir := t.TempDir()
	certFile, cert := selfSigned(t, dir, "first")
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	cfg := testConfig(fileMount())
	cfg.SSLCertificate = certFile
	cfg.ListenSockets = []ListenSocket{{BindAddress: "127.0.0.1", SSL: true}}
	origin := startServer(t, cfg)
	waitBurst(t, origin.mount("/demo"))
	tlsAddr := origin.SocketAddrs()[0]
	url := "https://" + tlsAddr + "/demo"

	t.Run("ffmpeg", func(t *testing.T) {
		out, err := exec.Command("ffmpeg", "-v", "error", "-tls_verify", "1", "-ca_file", certFile, "-rw_timeout", "5000000",
			"-i", url, "-t", "3", "-ac", "1", "-ar", "8000", "-f", "s16le", "-").Output()
		if got := float64(len(out)) / 16000; got < 2.9 {
			t.Fatalf("ffmpeg decoded %.2f s of 3 s over HTTPS: %v", got, err)
		}
	})

	t.Run("relay from an https upstream", func(t *testing.T) {
		mc := DefaultMount()
		mc.Name = "/relayed"
		mc.Upstreams = []string{url}
		rcfg := testConfig(mc)
		var problems []string
		rcfg.WithDefaults().Validate(func(k, msg string) { problems = append(problems, k+": "+msg) })
		if len(problems) > 0 {
			t.Fatalf("https upstream refused: %q", problems)
		}
		relay := startServer(t, rcfg, func(s *Server) { s.upstreamTLS = &tls.Config{RootCAs: pool} })
		m := relay.mount("/relayed")
		waitFor(t, 10*time.Second, "audio relayed from the https upstream", func() bool { return m.fresh(time.Now(), time.Second) })
		cl := dialListener(t, relay.Addr(), "/relayed", "Icy-MetaData: 1")
		cl.readFrames(t, 30) // audio relayed from the https upstream
		if got := m.meta.Load().title; got != "demo title" {
			t.Fatalf("title over https: %q", got)
		}
	})

	t.Run("chromium", func(t *testing.T) {
		spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		ctx := browsertest.New(t,
			chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
		// Opening the mount URL makes Chromium play it in its own media
		// document, as a user clicking a stream link would.
		browsertest.Step(t, ctx, "open the HTTPS mount", chromedp.Navigate(url))
		sctx, cancel := context.WithTimeout(ctx, browsertest.StepTimeout)
		defer cancel()
		const media = `document.querySelector('video, audio')`
		played, err := chromedp.Run(sctx, chromedp.Poll[float64](`(m => !m ? 0 : m.error ? -1 : (m.play(), m.currentTime > 2 ? m.currentTime : 0))(`+media+`)`))
		if err != nil || played <= 2 {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(m => !m ? 'no media element' : String(m.error && (m.error.code + ' ' + m.error.message)) + ' ns=' + m.networkState + ' rs=' + m.readyState)(`+media+`)`))
			t.Fatalf("chromium played %.2f s over HTTPS: %v (%s)", played, err, state)
		}
	})

	t.Run("reload switches the certificate", func(t *testing.T) {
		second, cert2 := selfSigned(t, dir, "second")
		pool.AddCert(cert2)
		next := cfg
		next.SSLCertificate = second
		if err := origin.Reload(next); err != nil {
			t.Fatal(err)
		}
		if got := origin.SocketAddrs()[0]; got != tlsAddr {
			t.Fatalf("reload rebound the socket: %s -> %s", tlsAddr, got)
		}
		if cn := peerCert(t, tlsAddr, pool).Subject.CommonName; cn != "second" {
			t.Fatalf("certificate after reload: %q", cn)
		}
		bad := next
		bad.SSLCertificate = filepath.Join(dir, "missing.pem")
		if err := origin.Reload(bad); err == nil || !strings.Contains(err.Error(), "missing.pem") {
			t.Fatalf("reload with a missing certificate: %v", err)
		}
		if cn := peerCert(t, tlsAddr, pool).Subject.CommonName; cn != "second" {
			t.Fatalf("a failed reload changed the certificate: %q", cn)
		}
	})
}
