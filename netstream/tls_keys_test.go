package netstream

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadPairKeyTypes loads the key types hosts' certificates come with
// (RSA from older CAs and self-signed setups, ECDSA from current ACME
// clients, Ed25519), in the PEM forms openssl and certbot write, as one
// file (Icecast's layout) and as a separate ssl-key; a key that does not
// match the certificate is refused.
func TestLoadPairKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k crypto.Signer) *pem.Block {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	for _, tc := range []struct {
		name    string
		signer  crypto.Signer
		key     *pem.Block
		oneFile bool
	}{
		{"rsa-pkcs1", rsaKey, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}, true},
		{"rsa-pkcs8-separate", rsaKey, pkcs8(rsaKey), false},
		{"ecdsa-sec1", ecKey, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}, true},
		{"ecdsa-pkcs8-separate", ecKey, pkcs8(ecKey), false},
		{"ed25519-pkcs8", edKey, pkcs8(edKey), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certFor(t, tc.signer)})
			keyPEM := pem.EncodeToMemory(tc.key)
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if tc.oneFile {
				certPEM = append(certPEM, keyPEM...)
				keyFile = certFile
			} else if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := loadPair(certFile, keyFile)
			if err != nil || c.PrivateKey == nil || len(c.Certificate) != 1 {
				t.Fatalf("loadPair: %v, %+v", err, c)
			}
			// The same certificate with another key of the same type is refused.
			other := filepath.Join(dir, "other.pem")
			os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, ecKeyOrOther(t, tc.signer))}), 0o600)
			if _, err := loadPair(certFile, other); err == nil {
				t.Error("a key that does not match the certificate was accepted")
			}
		})
	}
}

func certFor(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "radio.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"radio.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ecKeyOrOther returns a fresh key that does not match k.
func ecKeyOrOther(t *testing.T, k crypto.Signer) crypto.Signer {
	t.Helper()
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		return ed
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return ec
}

func mustPKCS8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
