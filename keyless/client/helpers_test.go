package client

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
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/keyless"
	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// testPKI is a CA with a key server certificate and a client certificate.
type testPKI struct {
	server *tls.Config // certificate, client CA, client cert required
	client *tls.Config // certificate, root CA, server name
}

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	caKey := mustECKey(tb)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test keyless CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) tls.Certificate {
		k := mustECKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			tb.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	return &testPKI{
		server: &tls.Config{Certificates: []tls.Certificate{leaf(2, "keyserver.test", x509.ExtKeyUsageServerAuth)},
			ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
		client: &tls.Config{Certificates: []tls.Certificate{leaf(3, "edge.test", x509.ExtKeyUsageClientAuth)},
			RootCAs: pool, ServerName: "keyserver.test"},
	}
}

func mustECKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testKeys are the key server's test keys (generated once per test
// binary), by name, so that the responder and the real server hold the
// same ones.
func testKeys(tb testing.TB) map[string]crypto.Signer {
	k := servertest.TestKeys(tb)
	return map[string]crypto.Signer{
		"rsa2048":    k.RSA,
		"ecdsa-p256": k.ECDSAP256,
		"ecdsa-p384": k.ECDSAP384,
		"ed25519":    k.Ed25519,
	}
}

func quietLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// responder is a minimal key server built from the codec alone, for the
// unit tests of the client's own parts (matching, ordering, timeouts,
// allocations). The integration tests use the real server.
type responder struct {
	tb    testing.TB
	ln    net.Listener
	keys  map[keyless.SKI]crypto.Signer
	delay atomic.Int64 // per request, ns
	// reverse > 1 answers each run of that many requests in reverse order.
	reverse int
	// echo answers every request with OpResponse and a fixed payload,
	// allocating nothing, for the allocation measurements.
	echo bool

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	seen  atomic.Int64 // requests read
}

func startResponder(tb testing.TB, pki *testPKI, addr string, setup func(*responder)) *responder {
	tb.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := tls.Listen("tcp", addr, pki.server)
	if err != nil {
		tb.Fatal(err)
	}
	r := &responder{tb: tb, ln: ln, keys: map[keyless.SKI]crypto.Signer{}, conns: map[net.Conn]bool{}}
	for _, k := range testKeys(tb) {
		ski, err := keyless.SKIOf(k.Public())
		if err != nil {
			tb.Fatal(err)
		}
		r.keys[ski] = k
	}
	if setup != nil {
		setup(r)
	}
	r.wg.Add(1)
	go r.serve()
	tb.Cleanup(r.stop)
	return r
}

func (r *responder) addr() string { return r.ln.Addr().String() }

func (r *responder) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = true
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(c)
			c.Close()
			r.mu.Lock()
			delete(r.conns, c)
			r.mu.Unlock()
		}()
	}
}

// stop closes the listener and every connection and waits.
func (r *responder) stop() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *responder) handle(c net.Conn) {
	var (
		hdr  = make([]byte, keyless.MaxMessageLen)
		wmu  sync.Mutex
		out  = make([]byte, 0, 64<<10)
		held [][]byte
		m    keyless.Message
		wg   sync.WaitGroup
		echo = make([]byte, 64)
	)
	defer wg.Wait()
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		c.Write(b)
	}
	for {
		if _, err := io.ReadFull(c, hdr[:keyless.HeaderLen]); err != nil {
			return
		}
		n, _ := keyless.Frame(hdr[:keyless.HeaderLen])
		if _, err := io.ReadFull(c, hdr[keyless.HeaderLen:n]); err != nil {
			return
		}
		if err := m.Decode(hdr[:n]); err != nil {
			return
		}
		r.seen.Add(1)
		if r.echo {
			resp := keyless.Message{ID: m.ID, Op: keyless.OpResponse, Payload: echo}
			if m.Op == keyless.OpPing {
				resp.Op, resp.Payload = keyless.OpPong, m.Payload
			}
			out, _ = keyless.AppendMessage(out[:0], &resp)
			c.Write(out)
			continue
		}
		req := m
		req.Payload = append([]byte(nil), m.Payload...)
		if d := time.Duration(r.delay.Load()); d > 0 && req.Op != keyless.OpPing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(d)
				write(r.answer(&req))
			}()
			continue
		}
		resp := r.answer(&req)
		if r.reverse > 1 && req.Op != keyless.OpPing {
			held = append(held, resp)
			if len(held) == r.reverse {
				for i := len(held) - 1; i >= 0; i-- {
					write(held[i])
				}
				held = held[:0]
			}
			continue
		}
		write(resp)
	}
}

func (r *responder) answer(m *keyless.Message) []byte {
	res, err := r.do(m)
	if err != nil {
		var code keyless.ErrCode
		if !errors.As(err, &code) {
			code = keyless.ErrCrypto
		}
		return keyless.AppendError(nil, m.ID, code)
	}
	op := keyless.OpResponse
	if m.Op == keyless.OpPing {
		op = keyless.OpPong
	}
	b, err := keyless.AppendMessage(nil, &keyless.Message{ID: m.ID, Op: op, Payload: res})
	if err != nil {
		r.tb.Error(err)
	}
	return b
}

func (r *responder) do(m *keyless.Message) ([]byte, error) {
	if m.Op == keyless.OpPing {
		return m.Payload, nil
	}
	if m.SKI.IsZero() {
		return nil, keyless.ErrInternal
	}
	key, ok := r.keys[m.SKI]
	if !ok {
		return nil, keyless.ErrKeyNotFound
	}
	hashes := map[keyless.Op]crypto.Hash{}
	for h, ops := range hashOps {
		for _, op := range ops {
			if op != 0 {
				hashes[op] = crypto.Hash(h)
			}
		}
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		switch {
		case m.Op == keyless.OpRSADecrypt:
			c := new(big.Int).SetBytes(m.Payload)
			if c.Cmp(k.N) >= 0 {
				return nil, keyless.ErrCrypto
			}
			return new(big.Int).Exp(c, k.D, k.N).FillBytes(make([]byte, k.Size())), nil
		case m.Op >= keyless.OpRSAPSSSignSHA256 && m.Op <= keyless.OpRSAPSSSignSHA512:
			return rsa.SignPSS(rand.Reader, k, hashes[m.Op], m.Payload, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case m.Op >= keyless.OpRSASignMD5SHA1 && m.Op <= keyless.OpRSASignSHA512:
			return rsa.SignPKCS1v15(nil, k, hashes[m.Op], m.Payload)
		}
	case *ecdsa.PrivateKey:
		if m.Op >= keyless.OpECDSASignMD5SHA1 && m.Op <= keyless.OpECDSASignSHA512 {
			return ecdsa.SignASN1(rand.Reader, k, m.Payload)
		}
	case ed25519.PrivateKey:
		if m.Op == keyless.OpEd25519Sign {
			return ed25519.Sign(k, m.Payload), nil
		}
	}
	if err := m.Op.CheckRequest(); err != nil {
		return nil, err
	}
	return nil, keyless.ErrCrypto
}

// testConfig is a client configuration for tests: short timeouts and
// quick breakers, so that every test ends in seconds.
func testConfig(tb testing.TB, pki *testPKI, addrs ...string) Config {
	cfg := Config{
		TLS:                pki.client,
		RequestTimeout:     3 * time.Second,
		DialTimeout:        2 * time.Second,
		PingTimeout:        time.Second,
		BreakerCooldown:    100 * time.Millisecond,
		BreakerCooldownMax: 400 * time.Millisecond,
		Logger:             quietLogger(tb),
	}
	for _, a := range addrs {
		cfg.Servers = append(cfg.Servers, Server{Addr: a})
	}
	return cfg
}

func newTestClient(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	cl, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

func newInt(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
