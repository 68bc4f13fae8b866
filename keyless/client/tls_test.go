package client

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// TestIntegrationTLSHandshake does what the TLS stage will do: serve TLS
// with a certificate whose private key is a keyless Signer, so every
// handshake signs (or, for RSA key exchange, decrypts) on the real key
// server. Each key type and TLS version a client may pick is a case.
func TestIntegrationTLSHandshake(t *testing.T) {
	in := startKeyServer(t, nil, "")
	cl := newTestClient(t, Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS, Logger: quietLogger(t)})
	caKey := mustECKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	certFor := func(t *testing.T, key crypto.Signer) tls.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "www.example.test"},
			DNSNames: []string{"www.example.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := cl.PrivateKey(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pk}
	}
	tests := []struct {
		name    string
		key     string
		version uint16
		suites  []uint16
	}{
		{name: "ecdsa-p256/tls1.3", key: "ecdsa-p256", version: tls.VersionTLS13},
		{name: "ecdsa-p384/tls1.3", key: "ecdsa-p384", version: tls.VersionTLS13},
		{name: "ed25519/tls1.3", key: "ed25519", version: tls.VersionTLS13},
		{name: "rsa2048/tls1.3-pss", key: "rsa2048", version: tls.VersionTLS13},
		{name: "rsa2048/tls1.2-ecdhe", key: "rsa2048", version: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{name: "rsa2048/tls1.2-rsa-key-exchange", key: "rsa2048", version: tls.VersionTLS12,
			suites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
		{name: "ecdsa-p256/tls1.2-ecdhe", key: "ecdsa-p256", version: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srvCfg := &tls.Config{Certificates: []tls.Certificate{certFor(t, testKeys(t)[tc.key])}, CipherSuites: tc.suites,
				MinVersion: tc.version, MaxVersion: tc.version}
			cliCfg := &tls.Config{RootCAs: roots, ServerName: "www.example.test", CipherSuites: tc.suites,
				MinVersion: tc.version, MaxVersion: tc.version}
			c1, c2 := net.Pipe()
			defer c1.Close()
			defer c2.Close()
			errc := make(chan error, 1)
			go func() {
				s := tls.Server(c1, srvCfg)
				errc <- s.HandshakeContext(ctx)
			}()
			c := tls.Client(c2, cliCfg)
			if err := c.HandshakeContext(ctx); err != nil {
				t.Fatalf("client handshake: %v (server: %v)", err, <-errc)
			}
			if err := <-errc; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			st := c.ConnectionState()
			if st.Version != tc.version {
				t.Errorf("version %x, want %x", st.Version, tc.version)
			}
			if tc.suites != nil && st.CipherSuite != tc.suites[0] {
				t.Errorf("suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tc.suites[0]))
			}
		})
	}
}
