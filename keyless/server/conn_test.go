package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/keyless/server"
	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// metric reads one sample from reg: the metric called name whose labels
// include all of labels (summed over the rest). Histograms give their count.
func metric(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestMutualTLSRefusal: a client without a certificate, or with one from
// another CA, or speaking no TLS at all, never gets a keyless byte, and
// the failure is counted.
func TestMutualTLSRefusal(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	other := servertest.NewPKI(t)
	ski := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	sign := request(1, 0x15, ski[:], digest(crypto.SHA256, []byte("steal")))

	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		max    uint16
		reason string
	}{
		{"no certificate tls1.3", nil, tls.VersionTLS13, "no_certificate"},
		{"no certificate tls1.2", nil, tls.VersionTLS12, "no_certificate"},
		{"other CA tls1.3", []tls.Certificate{other.ClientCert}, tls.VersionTLS13, "bad_certificate"},
		{"other CA tls1.2", []tls.Certificate{other.ClientCert}, tls.VersionTLS12, "bad_certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, in.Registry, "rampart_keyserver_handshake_failures_total", map[string]string{"reason": tc.reason})
			cfg := in.ClientTLS.Clone()
			cfg.Certificates, cfg.MaxVersion = tc.certs, tc.max
			raw, err := net.DialTimeout("tcp", in.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, cfg)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			// With TLS 1.3 the client's handshake ends before the server
			// has checked its certificate, so the refusal may only show
			// on the first read: send a request anyway.
			if err := c.Handshake(); err == nil {
				c.Write(sign)
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				if n > 0 || err == nil {
					t.Fatalf("refused client read %d bytes: %x", n, buf[:n])
				}
			}
			waitFor(t, "handshake failure counted", 5*time.Second, func() bool {
				return metric(t, in.Registry, "rampart_keyserver_handshake_failures_total", map[string]string{"reason": tc.reason}) == before+1
			})
		})
	}

	t.Run("plain tcp", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", in.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(request(1, opPing, nil, []byte("hi")))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		if len(got) > 0 && got[0] != 0x15 { // only a TLS alert record may come back
			t.Fatalf("plain client got %x", got)
		}
	})
	if n := metric(t, in.Registry, "rampart_keyserver_connections", nil); n != 0 {
		t.Fatalf("%v refused connections counted as open", n)
	}
	if n := metric(t, in.Registry, "rampart_keyserver_requests_total", nil); n != 0 {
		t.Fatalf("%v requests answered to refused clients", n)
	}
}

// TestMalformedClosesOnlyThatConnection sends each kind of malformed
// message on its own connection: that connection is closed with no reply,
// counted by reason, while a bystander connection keeps working.
func TestMalformedClosesOnlyThatConnection(t *testing.T) {
	var logs syncBuffer
	in := servertest.StartWith(t, servertest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	bystander := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	d := digest(crypto.SHA256, []byte("m"))
	ping := request(1, opPing, nil, []byte("ok"))

	for _, tc := range []struct {
		name      string
		send      []byte
		closeSend bool // half-close after sending, so a truncated message ends
		reason    string
	}{
		{name: "truncated header", send: []byte{0x01, 0x00, 0x04, 0x00, 0x00}, closeSend: true, reason: "truncated"},
		{name: "truncated body", send: request(5, opPing, nil, nil)[:600], closeSend: true, reason: "truncated"},
		{name: "body length past the end", send: longer(frame(5, item(tagOpcode, []byte{opPing}))), closeSend: true, reason: "truncated"},
		{name: "item length past the end", send: frame(5, item(tagOpcode, []byte{opPing}), []byte{tagPayload, 0x00, 0x10, 'a', 'b'}), reason: "item_overrun"},
		{name: "repeated tag", send: frame(5, item(tagOpcode, []byte{opPing}), item(tagOpcode, []byte{opPing})), reason: "duplicate_tag"},
		{name: "repeated padding", send: frame(5, item(tagOpcode, []byte{opPing}), item(tagPadding, nil), item(tagPadding, nil)), reason: "duplicate_tag"},
		{name: "repeated ski", send: frame(5, item(tagOpcode, []byte{0x15}), item(tagSKI, ski[:]), item(tagSKI, ski[:]), item(tagPayload, d)), reason: "duplicate_tag"},
		{name: "opcode item of 2 bytes", send: frame(5, item(tagOpcode, []byte{opPing, 0})), reason: "item_length"},
		{name: "client ip of 5 bytes", send: frame(5, item(tagOpcode, []byte{opPing}), item(tagClientIP, []byte{1, 2, 3, 4, 5})), reason: "item_length"},
		{name: "major version 2", send: append([]byte{0x02}, ping[1:]...), reason: "version"},
		{name: "good ping then garbage", send: append(bytes.Clone(ping), frame(6, item(tagOpcode, []byte{1, 2, 3}))...), reason: "item_length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, in.Registry, "rampart_keyserver_malformed_messages_total", map[string]string{"reason": tc.reason})
			c := in.Dial(t)
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.closeSend {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "good ping then garbage" {
				// The ping may or may not be answered before the close.
				r, err := tryReadReply(c)
				if err == nil && r.op != opPong {
					t.Fatalf("got op %#x", r.op)
				}
			}
			expectClosed(t, c)
			waitFor(t, "malformed counted", 5*time.Second, func() bool {
				return metric(t, in.Registry, "rampart_keyserver_malformed_messages_total", map[string]string{"reason": tc.reason}) == before+1
			})
			if got := exchange(t, bystander, request(77, opPing, nil, []byte("alive"))); got.op != opPong || got.id != 77 {
				t.Fatalf("bystander: op %#x id %d", got.op, got.id)
			}
		})
	}
	// Each close was logged with the peer's certificate identity.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "level=WARN") {
			continue
		}
		if !strings.Contains(line, `peer_cert="CN=edge-client,O=Rampart tests"`) || !strings.Contains(line, "peer_cert_sha256=") ||
			!strings.Contains(line, "peer_addr=127.0.0.1:") || !strings.Contains(line, "reason=") {
			t.Errorf("malformed log line lacks the peer's identity: %s", line)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n < 11 {
		t.Errorf("%d warnings logged for 11 malformed connections", n)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReloadCertificates: Reload also picks up a new server certificate
// for new connections; open ones are untouched.
func TestReloadCertificates(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	old := in.Dial(t)
	oldSerial := old.ConnectionState().PeerCertificates[0].SerialNumber
	// Replace the server certificate files with the client pair of a
	// second issue from the same CA: a different serial.
	cert := in.PKI.IssueClient(t, "keyserver-renewed")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, in.PKI.CertFile, certPEM)
	writeKey(t, in.PKI.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err := in.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	cfg := in.ClientTLS.Clone()
	cfg.InsecureSkipVerify = true // the renewed certificate names no host; only its serial matters here
	c, err := tls.Dial("tcp", in.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(oldSerial) == 0 || got.Subject.CommonName != "keyserver-renewed" {
		t.Fatalf("new connection got the old certificate")
	}
	if r := exchange(t, old, request(1, opPing, nil, nil)); r.op != opPong {
		t.Fatalf("old connection: op %#x", r.op)
	}
	// A broken certificate fails the reload and changes nothing.
	writeKey(t, in.PKI.CertFile, []byte("not a certificate"))
	if err := in.Server.Reload(); err == nil {
		t.Fatal("reload with a broken certificate succeeded")
	}
	c2, err := tls.Dial("tcp", in.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

// longer makes a frame's header claim more body than follows.
func longer(f []byte) []byte {
	f[2], f[3] = 0x03, 0xff
	return f
}

// TestOutOfOrder puts many requests in flight on one connection: slow RSA
// signatures first, then pings. Every one is answered exactly once with a
// valid result, and the answers do not come back in request order.
func TestOutOfOrder(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.RSA.Public())
	const nRSA, nPing = 40, 40
	var batch []byte
	digests := map[uint32][]byte{}
	for i := range uint32(nRSA) {
		d := digest(crypto.SHA256, []byte{byte(i)})
		digests[i] = d
		batch = append(batch, request(i, 0x05, ski[:], d)...)
	}
	for i := range uint32(nPing) {
		batch = append(batch, request(nRSA+i, opPing, nil, []byte{byte(i)})...)
	}
	go func() {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.Write(batch)
	}()
	var order []uint32
	seen := map[uint32]bool{}
	for range nRSA + nPing {
		r := readReply(t, c)
		if seen[r.id] {
			t.Fatalf("id %d answered twice", r.id)
		}
		seen[r.id] = true
		order = append(order, r.id)
		switch {
		case r.id < nRSA:
			if r.op != opResponse {
				t.Fatalf("id %d: op %#x", r.id, r.op)
			}
			if err := rsa.VerifyPKCS1v15(&in.Keys.RSA.PublicKey, crypto.SHA256, digests[r.id], r.payload); err != nil {
				t.Fatalf("id %d: %v", r.id, err)
			}
		case r.id < nRSA+nPing:
			if r.op != opPong || !bytes.Equal(r.payload, []byte{byte(r.id - nRSA)}) {
				t.Fatalf("id %d: op %#x payload %x", r.id, r.op, r.payload)
			}
		default:
			t.Fatalf("unknown id %d", r.id)
		}
	}
	if slices.IsSorted(order) {
		t.Fatalf("answers came back in request order: no sign of concurrency")
	}
}

// TestBackpressure: with max_pending_per_conn 4 and one worker, a client
// that sends 64 RSA requests at once never has more than 4 pending on the
// server; the reader waits instead, and every request is answered.
func TestBackpressure(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{Configure: func(c *server.Config) {
		c.MaxPendingPerConn = 4
		c.Workers = 1
	}})
	c := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.RSA.Public())
	const n = 64
	var batch []byte
	for i := range uint32(n) {
		batch = append(batch, request(i, 0x05, ski[:], digest(crypto.SHA256, []byte{byte(i)}))...)
	}
	go func() {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		c.Write(batch)
	}()
	var maxPending atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			p := int64(metric(t, in.Registry, "rampart_keyserver_pending_requests", nil))
			if p > maxPending.Load() {
				maxPending.Store(p)
			}
		}
	})
	for range n {
		if r := readReply(t, c); r.op != opResponse {
			t.Fatalf("op %#x", r.op)
		}
	}
	close(stop)
	wg.Wait()
	if m := maxPending.Load(); m > 4 || m < 1 {
		t.Fatalf("pending peaked at %d, want 1..4", m)
	}
	if w := metric(t, in.Registry, "rampart_keyserver_backpressure_waits_total", nil); w < 1 {
		t.Fatalf("reader never waited for a slot")
	}
}

// TestManyConnections runs mixed requests on several connections at once.
func TestManyConnections(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	keys := in.Keys.All()
	var wg sync.WaitGroup
	for ci := range 4 {
		c := in.Dial(t)
		wg.Go(func() {
			for i := range uint32(25) {
				key := keys[(ci+int(i))%len(keys)]
				ski := servertest.SKI(t, key.Public())
				var oc opCase
				switch key.Public().(type) {
				case *rsa.PublicKey:
					oc = signOps[3]
				case *ecdsa.PublicKey:
					oc = signOps[9]
				default:
					oc = signOps[12]
				}
				msg := []byte{byte(ci), byte(i)}
				payload := msg
				if oc.hash != 0 {
					payload = digest(oc.hash, msg)
				}
				r := exchange(t, c, request(i, oc.op, ski[:], payload))
				if r.op != opResponse || r.id != i {
					t.Errorf("conn %d id %d: op %#x id %d", ci, i, r.op, r.id)
					return
				}
				verify(t, oc, key.Public(), msg, payload, r.payload)
			}
		})
	}
	wg.Wait()
}

// TestReloadKeepsConnections changes the key directory and reloads: the
// open connection keeps working and sees the new store; a broken store is
// refused and the old one keeps serving.
func TestReloadKeepsConnections(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	d := digest(crypto.SHA256, []byte("reload"))
	oldSKI := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	if r := exchange(t, c, request(1, 0x15, oldSKI[:], d)); r.op != opResponse {
		t.Fatalf("before reload: op %#x", r.op)
	}

	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	newSKI := servertest.SKI(t, newKey.Public())
	der, _ := x509.MarshalPKCS8PrivateKey(newKey)
	writeKey(t, filepath.Join(in.Keys.Dir, "new.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if r := exchange(t, c, request(2, 0x15, newSKI[:], d)); !bytes.Equal(r.raw, errorReply(2, 0x02)) {
		t.Fatalf("new key before reload: op %#x", r.op)
	}
	os.Remove(filepath.Join(in.Keys.Dir, "ecdsa-p256.key"))
	if err := in.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	r := exchange(t, c, request(3, 0x15, newSKI[:], d))
	if r.op != opResponse || !ecdsa.VerifyASN1(&newKey.PublicKey, d, r.payload) {
		t.Fatalf("new key after reload: op %#x", r.op)
	}
	if r := exchange(t, c, request(4, 0x15, oldSKI[:], d)); !bytes.Equal(r.raw, errorReply(4, 0x02)) {
		t.Fatalf("removed key after reload: op %#x", r.op)
	}

	// A broken key file fails the reload as a whole.
	writeKey(t, filepath.Join(in.Keys.Dir, "broken.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	if err := in.Server.Reload(); err == nil {
		t.Fatal("reload with a broken key succeeded")
	}
	if v := metric(t, in.Registry, "rampart_keyserver_last_reload_successful", nil); v != 0 {
		t.Fatalf("last_reload_successful = %v after a failure", v)
	}
	if r := exchange(t, c, request(5, 0x15, newSKI[:], d)); r.op != opResponse {
		t.Fatalf("after failed reload: op %#x", r.op)
	}
	os.Remove(filepath.Join(in.Keys.Dir, "broken.key"))
	if err := in.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	if v := metric(t, in.Registry, "rampart_keyserver_last_reload_successful", nil); v != 1 {
		t.Fatalf("last_reload_successful = %v after a success", v)
	}
	if v := metric(t, in.Registry, "rampart_keyserver_connections_closed_total", nil); v != 0 {
		t.Fatalf("%v connections closed by reloads", v)
	}
}

func writeKey(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad reloads repeatedly while requests run.
func TestReloadUnderLoad(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			if err := in.Server.Reload(); err != nil {
				t.Errorf("reload: %v", err)
				return
			}
		}
	}()
	d := digest(crypto.SHA256, []byte("x"))
	for i := range uint32(100) {
		if r := exchange(t, c, request(i, 0x15, ski[:], d)); r.op != opResponse {
			t.Fatalf("id %d: op %#x", i, r.op)
		}
	}
	<-done
}

// TestIdleTimeout: a connection that pings keeps living past the idle
// time; one that goes quiet is closed after it.
func TestIdleTimeout(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{Configure: func(c *server.Config) {
		c.IdleTimeout = time.Second
	}})
	c := in.Dial(t)
	for i := range uint32(4) {
		if r := exchange(t, c, request(i, opPing, nil, nil)); r.op != opPong {
			t.Fatalf("op %#x", r.op)
		}
		time.Sleep(400 * time.Millisecond)
	}
	start := time.Now()
	expectClosed(t, c)
	if el := time.Since(start); el < 500*time.Millisecond || el > 5*time.Second {
		t.Fatalf("closed after %v of quiet, want about 1s", el)
	}
	waitFor(t, "idle close counted", 5*time.Second, func() bool {
		return metric(t, in.Registry, "rampart_keyserver_connections_closed_total", map[string]string{"reason": "idle"}) == 1
	})
}

// TestUnixSocket serves a plain unix socket, and one with mutual TLS.
func TestUnixSocket(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		name := "plain"
		if withTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			in := servertest.StartWith(t, servertest.Options{Unix: true, Configure: func(c *server.Config) {
				c.UnixTLS = withTLS
			}})
			var c net.Conn
			c, err := net.DialTimeout("unix", in.UnixPath, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if withTLS {
				tc := tls.Client(c, in.ClientTLS)
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				c = tc
			}
			ski := servertest.SKI(t, in.Keys.Ed25519.Public())
			r := exchange(t, c, request(3, 0x18, ski[:], []byte("unix")))
			if r.op != opResponse || !verifyEd(in.Keys, []byte("unix"), r.payload) {
				t.Fatalf("op %#x", r.op)
			}
			if n := metric(t, in.Registry, "rampart_keyserver_connections", map[string]string{"listener": "unix"}); n != 1 {
				t.Fatalf("unix connections gauge %v", n)
			}
		})
	}
}

func verifyEd(k *servertest.Keys, msg, sig []byte) bool {
	return len(sig) == 64 && bytes.Equal(sig, mustSignEd(k, msg))
}

func mustSignEd(k *servertest.Keys, msg []byte) []byte {
	sig, _ := k.Ed25519.Sign(nil, msg, crypto.Hash(0))
	return sig
}

// TestCloseFinishesInFlight: Close answers every request already read,
// then closes; Serve returns nil.
func TestCloseFinishesInFlight(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{Configure: func(c *server.Config) { c.Workers = 1 }})
	c := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.RSA.Public())
	const n = 20
	var batch []byte
	for i := range uint32(n) {
		batch = append(batch, request(i, 0x05, ski[:], digest(crypto.SHA256, []byte{byte(i)}))...)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	// Wait until the server has read all of them (answered + pending).
	waitFor(t, "all requests read", 10*time.Second, func() bool {
		return metric(t, in.Registry, "rampart_keyserver_requests_total", nil)+
			metric(t, in.Registry, "rampart_keyserver_pending_requests", nil) == n
	})
	closed := make(chan error, 1)
	go func() { closed <- in.Server.Close() }()
	for range n {
		if r := readReply(t, c); r.op != opResponse {
			t.Fatalf("op %#x", r.op)
		}
	}
	expectClosed(t, c)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := net.DialTimeout("tcp", in.Addr, time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	if err := in.Server.Reload(); err == nil {
		t.Fatal("reload after Close succeeded")
	}
}

// TestMutatedFrames sends valid requests with random bytes changed (fixed
// seed, bounded count): each gets a well-formed reply or a closed
// connection, the server never panics, and a bystander keeps working.
func TestMutatedFrames(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{Logger: slog.New(slog.DiscardHandler)})
	bystander := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	base := [][]byte{
		request(1, 0x15, ski[:], digest(crypto.SHA256, []byte("m"))),
		frame(2, item(tagOpcode, []byte{opPing}), item(tagPayload, []byte("ping")), item(tagSNI, []byte("a.example"))),
		request(3, 0x18, ski[:], []byte("ed")),
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	var c net.Conn
	for i := range 150 {
		if c == nil {
			c = in.Dial(t)
		}
		m := bytes.Clone(base[i%len(base)])
		// Mutate the header and the first items, where the structure is.
		for range 1 + rng.IntN(3) {
			m[rng.IntN(min(len(m), 40))] = byte(rng.IntN(256))
		}
		n, _ := keylessFrameLen(m)
		if n > len(m) {
			m = m[:8] // a longer body would only wait for the idle timeout
			m[2], m[3] = 0, 0
		} else {
			m = m[:n]
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(m); err != nil {
			c = nil
			continue
		}
		r, err := tryReadReply(c)
		if err != nil {
			c.Close()
			c = nil
			continue
		}
		checkReply(t, r)
	}
	if r := exchange(t, bystander, request(9, opPing, nil, nil)); r.op != opPong {
		t.Fatalf("bystander: op %#x", r.op)
	}
}

// keylessFrameLen is header + declared body length.
func keylessFrameLen(m []byte) (int, bool) {
	if len(m) < 8 {
		return 8, false
	}
	return 8 + (int(m[2])<<8 | int(m[3])), true
}
