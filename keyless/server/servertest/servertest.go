// Package servertest starts real keyless key servers for tests: a
// throwaway PKI (CA, server and client certificates made with crypto/x509
// on the fly), a directory of test keys in every supported format, and a
// running server on a loopback port (and optionally a unix socket) that is
// closed when the test ends.
//
// Everything here is for tests only; its functions take a testing.TB and
// fail the test on error. They may be called from any test goroutine.
// Keys are generated once per test binary and shared, because RSA key
// generation is slow under -race.
package servertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/keyless"
	"github.com/rampart-edge/rampart/keyless/server"
)

// ServerName is the DNS name in the server certificate (with localhost,
// 127.0.0.1 and ::1); ClientTLS sets it.
const ServerName = "keyserver.test"

// PKI is a CA with one server and one client certificate, written as PEM
// files in Dir.
type PKI struct {
	Dir string

	CA    *x509.Certificate
	CAKey crypto.Signer
	CAPEM []byte

	// Server side: what Config.CAFile, CertFile and KeyFile name.
	CAFile, CertFile, KeyFile string
	ServerCert                tls.Certificate

	// Client side, also as files for tools that want them.
	ClientCert                    tls.Certificate
	ClientCertFile, ClientKeyFile string
}

// NewPKI makes a fresh CA (ECDSA P-256) with a server certificate for
// ServerName, localhost, 127.0.0.1 and ::1, and a client certificate with
// common name "edge-client", all in a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir()}
	caKey := mustECDSA(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "rampart test keyless CA", Organization: []string{"Rampart tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatalf("servertest: create CA: %v", err)
	}
	if p.CA, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("servertest: parse CA: %v", err)
	}
	p.CAKey = caKey
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p.CAFile = writeFile(t, p.Dir, "ca.pem", p.CAPEM)

	var certPEM, keyPEM []byte
	p.ServerCert, certPEM, keyPEM = p.issue(t, "keyserver", x509.ExtKeyUsageServerAuth)
	p.CertFile = writeFile(t, p.Dir, "server.pem", certPEM)
	p.KeyFile = writeFile(t, p.Dir, "server-key.pem", keyPEM)
	p.ClientCert, certPEM, keyPEM = p.issue(t, "edge-client", x509.ExtKeyUsageClientAuth)
	p.ClientCertFile = writeFile(t, p.Dir, "client.pem", certPEM)
	p.ClientKeyFile = writeFile(t, p.Dir, "client-key.pem", keyPEM)
	return p
}

// IssueClient makes another client certificate signed by this CA.
func (p *PKI) IssueClient(t testing.TB, commonName string) tls.Certificate {
	t.Helper()
	c, _, _ := p.issue(t, commonName, x509.ExtKeyUsageClientAuth)
	return c
}

func (p *PKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key := mustECDSA(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Rampart tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{ServerName, "localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, key.Public(), p.CAKey)
	if err != nil {
		t.Fatalf("servertest: issue %s: %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("servertest: marshal key: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("servertest: key pair: %v", err)
	}
	return cert, certPEM, keyPEM
}

// ClientTLS is a client configuration that trusts the CA, presents the
// client certificate and expects ServerName.
func (p *PKI) ClientTLS() *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.CA)
	return &tls.Config{
		RootCAs:      roots,
		ServerName:   ServerName,
		Certificates: []tls.Certificate{p.ClientCert},
		MinVersion:   tls.VersionTLS12,
	}
}

// Keys are the test keys, one of each supported type, each stored in a
// different format so that every parser runs.
type Keys struct {
	Dir string

	RSA       *rsa.PrivateKey   // 2048 bits, rsa.key: PKCS#1 PEM
	ECDSAP256 *ecdsa.PrivateKey // ecdsa-p256.key: SEC1 PEM
	ECDSAP384 *ecdsa.PrivateKey // ecdsa-p384.der: PKCS#8 DER
	Ed25519   ed25519.PrivateKey
	// ed25519.pem: PKCS#8 PEM
}

// All lists the keys as signers.
func (k *Keys) All() []crypto.Signer {
	return []crypto.Signer{k.RSA, k.ECDSAP256, k.ECDSAP384, k.Ed25519}
}

var (
	keysOnce sync.Once
	keysVal  Keys
	keysErr  error
)

// TestKeys returns the shared test keys (generated once per binary)
// without writing them anywhere.
func TestKeys(t testing.TB) *Keys {
	t.Helper()
	keysOnce.Do(func() {
		if keysVal.RSA, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if keysVal.ECDSAP256, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		if keysVal.ECDSAP384, keysErr = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); keysErr != nil {
			return
		}
		_, keysVal.Ed25519, keysErr = ed25519.GenerateKey(rand.Reader)
	})
	if keysErr != nil {
		t.Fatalf("servertest: generate keys: %v", keysErr)
	}
	k := keysVal
	return &k
}

// WriteKeys writes the shared test keys into dir (a new temporary
// directory when dir is empty) with mode 0600, and returns them.
func WriteKeys(t testing.TB, dir string) *Keys {
	t.Helper()
	k := TestKeys(t)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	k.Dir = dir
	ec256, err := x509.MarshalECPrivateKey(k.ECDSAP256)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ec384, err := x509.MarshalPKCS8PrivateKey(k.ECDSAP384)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ed, err := x509.MarshalPKCS8PrivateKey(k.Ed25519)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	writeFile(t, dir, "rsa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.RSA)}))
	writeFile(t, dir, "ecdsa-p256.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ec256}))
	writeFile(t, dir, "ecdsa-p384.der", ec384)
	writeFile(t, dir, "ed25519.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ed}))
	return k
}

// SKI is keyless.SKIOf for a test: the selector of pub's key.
func SKI(t testing.TB, pub crypto.PublicKey) keyless.SKI {
	t.Helper()
	ski, err := keyless.SKIOf(pub)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return ski
}

// Options says how StartWith sets up a server.
type Options struct {
	// KeysDir is the key directory; empty means WriteKeys into a new
	// temporary directory (Instance.Keys then holds the keys).
	KeysDir string
	// PKI to use; nil means NewPKI.
	PKI *PKI
	// Unix also serves a unix socket (Instance.UnixPath), plain unless
	// Configure sets UnixTLS.
	Unix bool
	// Configure may change the configuration before New.
	Configure func(*server.Config)
	// Logger for the server; nil means one writing to t.Output() at Info.
	Logger *slog.Logger
}

// Instance is a running server.
type Instance struct {
	Server    *server.Server
	Addr      string // loopback host:port of the mutual-TLS listener
	UnixPath  string // unix socket path, when Options.Unix
	ClientTLS *tls.Config
	PKI       *PKI
	Keys      *Keys // the keys served, when StartWith wrote them
	Registry  *prometheus.Registry
	Config    server.Config // as passed to New
}

// Start runs a key server with the keys in keysDir (empty: the shared
// test keys in a new directory) on a loopback port, closed when the test
// ends, and returns its address and a client configuration that passes
// its mutual TLS.
func Start(t testing.TB, keysDir string) (addr string, clientTLS *tls.Config) {
	t.Helper()
	in := StartWith(t, Options{KeysDir: keysDir})
	return in.Addr, in.ClientTLS
}

// StartWith runs a key server as opts say, closed when the test ends.
func StartWith(t testing.TB, opts Options) *Instance {
	t.Helper()
	in := &Instance{PKI: opts.PKI, Registry: prometheus.NewRegistry()}
	if in.PKI == nil {
		in.PKI = NewPKI(t)
	}
	keysDir := opts.KeysDir
	if keysDir == "" {
		in.Keys = WriteKeys(t, "")
		keysDir = in.Keys.Dir
	}
	cfg := server.Config{
		Listen:   "127.0.0.1:0",
		CAFile:   in.PKI.CAFile,
		CertFile: in.PKI.CertFile,
		KeyFile:  in.PKI.KeyFile,
		Keys:     []string{keysDir},
	}
	if opts.Unix {
		dir, err := os.MkdirTemp("", "keyserver") // short: sun_path has 108 bytes
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		cfg.UnixSocket = filepath.Join(dir, "ks.sock")
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	in.Config = cfg
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	srv, err := server.New(cfg, logger, in.Registry)
	if err != nil {
		t.Fatalf("servertest: new server: %v", err)
	}
	in.Server = srv
	in.ClientTLS = in.PKI.ClientTLS()

	var serving sync.WaitGroup
	errs := make(chan error, 2)
	if cfg.Listen != server.ListenNone {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			srv.Close()
			t.Fatalf("servertest: listen: %v", err)
		}
		in.Addr = ln.Addr().String()
		serving.Add(1)
		go func() { defer serving.Done(); errs <- srv.Serve(ln) }()
	}
	if cfg.UnixSocket != "" {
		ln, err := net.Listen("unix", cfg.UnixSocket)
		if err != nil {
			srv.Close()
			t.Fatalf("servertest: listen unix: %v", err)
		}
		in.UnixPath = cfg.UnixSocket
		serving.Add(1)
		go func() { defer serving.Done(); errs <- srv.ServeUnix(ln) }()
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("servertest: close: %v", err)
		}
		serving.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("servertest: serve: %v", err)
			}
		}
	})
	return in
}

// Dial opens a mutual-TLS connection to the instance with its client
// configuration, closed when the test ends.
func (in *Instance) Dial(t testing.TB) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", in.Addr, in.ClientTLS)
	if err != nil {
		t.Fatalf("servertest: dial %s: %v", in.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return n
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return p
}
