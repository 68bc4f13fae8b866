package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	keyserver "github.com/rampart-edge/rampart/keyless/server"
	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// Integration tests: the client against the real key server
// (keyless/server, started by servertest on loopback with a generated
// PKI). The network between them is real loopback TCP; testNet, the
// client's Dial seam, can slow it down or cut it, which is how a slow
// server and a network failure are made without touching either side.

// startKeyServer starts a real key server with the shared test keys;
// addr "" picks a free port, otherwise it listens there (a restart).
func startKeyServer(t *testing.T, pki *servertest.PKI, addr string) *servertest.Instance {
	t.Helper()
	return servertest.StartWith(t, servertest.Options{PKI: pki, Logger: quietLogger(t),
		Configure: func(c *keyserver.Config) {
			if addr != "" {
				c.Listen = addr
			}
		}})
}

// testNet dials real TCP and can delay what the client reads from an
// address (a slow key server) or cut every connection to it.
type testNet struct {
	mu    sync.Mutex
	conns map[string][]net.Conn
	delay map[string]*atomic.Int64
}

func newTestNet() *testNet {
	return &testNet{conns: map[string][]net.Conn{}, delay: map[string]*atomic.Int64{}}
}

func (n *testNet) delayOf(addr string) *atomic.Int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.delay[addr]
	if d == nil {
		d = new(atomic.Int64)
		n.delay[addr] = d
	}
	return d
}

func (n *testNet) setDelay(addr string, d time.Duration) { n.delayOf(addr).Store(int64(d)) }

func (n *testNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns[addr] = append(n.conns[addr], c)
	n.mu.Unlock()
	return &slowConn{Conn: c, delay: n.delayOf(addr)}, nil
}

// cut closes every connection to addr, as a network failure would.
func (n *testNet) cut(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.conns[addr]
	for _, c := range cs {
		c.Close()
	}
	n.conns[addr] = nil
	return len(cs)
}

type slowConn struct {
	net.Conn
	delay *atomic.Int64
}

// Read hands over what arrived only after the delay, so every answer
// comes at least that late.
func (c *slowConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if d := c.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	return n, err
}

// loadResult counts what a load run saw.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
}

// runLoad signs with workers goroutines until ctx ends, verifying every
// 8th signature.
func runLoad(ctx context.Context, s *Signer, key *ecdsa.PrivateKey, workers int) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digest := make([]byte, 32)
			for i := 0; ctx.Err() == nil; i++ {
				rand.Read(digest)
				sig, err := s.Sign(nil, digest, crypto.SHA256)
				if err == nil && (i+w)%8 == 0 && !ecdsa.VerifyASN1(&key.PublicKey, digest, sig) {
					err = errors.New("signature does not verify")
				}
				if err != nil {
					res.failed.Add(1)
					res.mu.Lock()
					if len(res.errs) < 5 {
						res.errs = append(res.errs, err)
					}
					res.mu.Unlock()
					continue
				}
				res.ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return res
}

func twoServerConfig(t *testing.T, a, b *servertest.Instance, reg prometheus.Registerer) Config {
	return Config{
		Servers:            []Server{{Name: "a", Addr: a.Addr}, {Name: "b", Addr: b.Addr}},
		TLS:                a.ClientTLS,
		RequestTimeout:     3 * time.Second,
		DialTimeout:        2 * time.Second,
		PingTimeout:        time.Second,
		BreakerCooldown:    100 * time.Millisecond,
		BreakerCooldownMax: 400 * time.Millisecond,
		Logger:             quietLogger(t),
		Metrics:            NewMetrics(reg),
	}
}

// TestIntegrationMatrix: every opcode against every key type through the
// real server, verified with the standard library.
func TestIntegrationMatrix(t *testing.T) {
	in := startKeyServer(t, nil, "")
	for _, tc := range []struct {
		name       string
		maxVersion uint16
	}{{"tls1.3", 0}, {"tls1.2", tls.VersionTLS12}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS.Clone(), Logger: quietLogger(t)}
			cfg.TLS.MaxVersion = tc.maxVersion
			cl := newTestClient(t, cfg)
			t.Run("sign", func(t *testing.T) { runSignMatrix(t, cl) })
			t.Run("decrypt", func(t *testing.T) { runDecryptMatrix(t, cl) })
			t.Run("unknown-key", func(t *testing.T) { runUnknownKey(t, cl) })
		})
	}
}

// TestIntegrationOutOfOrder: RSA signatures (slow) and ECDSA signatures
// (fast) mixed on one connection come back out of order; each reaches
// its own request.
func TestIntegrationOutOfOrder(t *testing.T) {
	in := startKeyServer(t, nil, "")
	cfg := Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS, ConnsPerServer: 1, Logger: quietLogger(t)}
	cl := newTestClient(t, cfg)
	rsaKey := testKeys(t)["rsa2048"].(*rsa.PrivateKey)
	ecKey := testKeys(t)["ecdsa-p256"].(*ecdsa.PrivateKey)
	rs, _ := cl.Signer(rsaKey.Public())
	es, _ := cl.Signer(ecKey.Public())

	var (
		mu       sync.Mutex
		order    []int // submission index of each completion, in completion order
		bad      atomic.Int32
		wg       sync.WaitGroup
		inverted int
	)
	for round := 0; round < 20 && inverted == 0; round++ {
		order = order[:0]
		for i := range 8 {
			digest := digestOf(crypto.SHA256, []byte{byte(round), byte(i)})
			s, check := es, func(sig []byte) bool { return ecdsa.VerifyASN1(&ecKey.PublicKey, digest, sig) }
			if i == 0 {
				s, check = rs, func(sig []byte) bool { return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest, sig) == nil }
			}
			wg.Add(1)
			if err := s.SignAsync(digest, crypto.SHA256, func(sig []byte, err error) {
				defer wg.Done()
				if err != nil || !check(sig) {
					bad.Add(1)
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		for j := 1; j < len(order); j++ {
			if order[j] < order[j-1] {
				inverted++
			}
		}
	}
	if bad.Load() != 0 {
		t.Fatalf("%d signatures failed or did not verify", bad.Load())
	}
	if inverted == 0 {
		t.Fatal("answers never came back out of order; the test proved nothing")
	}
}

// TestIntegrationFailover: two key servers under load; one is shut down
// (gracefully) and, in a second run, cut off the network. Requests keep
// succeeding through the other, and only those in transport are retried,
// once.
func TestIntegrationFailover(t *testing.T) {
	const workers = 16
	for _, tc := range []struct {
		name string
		kill func(t *testing.T, n *testNet, in *servertest.Instance)
	}{
		{"shutdown", func(t *testing.T, _ *testNet, in *servertest.Instance) { in.Server.Close() }},
		{"network-cut", func(t *testing.T, n *testNet, in *servertest.Instance) {
			if n.cut(in.Addr) == 0 {
				t.Error("no connection to cut")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := servertest.NewPKI(t)
			a, b := startKeyServer(t, pki, ""), startKeyServer(t, pki, "")
			reg := prometheus.NewRegistry()
			cfg := twoServerConfig(t, a, b, reg)
			tn := newTestNet()
			cfg.Dial = tn.dial
			cl := newTestClient(t, cfg)
			key := testKeys(t)["ecdsa-p256"].(*ecdsa.PrivateKey)
			s, _ := cl.Signer(key.Public())

			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			var killedAt atomic.Int64
			go func() {
				time.Sleep(500 * time.Millisecond)
				tc.kill(t, tn, a)
				killedAt.Store(time.Now().UnixNano())
			}()
			res := runLoad(ctx, s, key, workers)
			m := cfg.Metrics
			okA := metricValue(t, m.requests.WithLabelValues("a", "ecdsa-sign-sha256", "ok"))
			okB := metricValue(t, m.requests.WithLabelValues("b", "ecdsa-sign-sha256", "ok"))
			retries := metricValue(t, m.retries.WithLabelValues("a"))
			t.Logf("ok %d failed %d; served by a %.0f, b %.0f; retried %.0f", res.ok.Load(), res.failed.Load(), okA, okB, retries)
			if res.failed.Load() != 0 {
				t.Fatalf("%d requests failed: %v", res.failed.Load(), res.errs)
			}
			if okA == 0 || okB == 0 || res.ok.Load() < 100 {
				t.Errorf("want both servers used and at least 100 signatures, got a %.0f b %.0f total %d", okA, okB, res.ok.Load())
			}
			if retries > workers {
				t.Errorf("%.0f retries, but at most %d requests were ever in flight", retries, workers)
			}
			if tc.name == "shutdown" {
				if st := cl.Servers()[0]; st.Conns != 0 {
					t.Errorf("server a after shutdown: %+v", st)
				}
			}
		})
	}
}

// TestIntegrationPrefersFastServer: with one key server 3ms further away,
// the client sends most requests to the other, whatever the list order.
func TestIntegrationPrefersFastServer(t *testing.T) {
	pki := servertest.NewPKI(t)
	a, b := startKeyServer(t, pki, ""), startKeyServer(t, pki, "")
	cfg := twoServerConfig(t, a, b, nil)
	tn := newTestNet()
	tn.setDelay(a.Addr, 3*time.Millisecond) // a is first in the list, and slow
	cfg.Dial = tn.dial
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	for range 200 {
		if _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	m := cfg.Metrics
	okA := metricValue(t, m.requests.WithLabelValues("a", "ecdsa-sign-sha256", "ok"))
	okB := metricValue(t, m.requests.WithLabelValues("b", "ecdsa-sign-sha256", "ok"))
	t.Logf("slow a served %.0f, fast b %.0f; rtt %v / %v", okA, okB, cl.Servers()[0].RTT, cl.Servers()[1].RTT)
	if okB < 0.8*200 {
		t.Fatalf("fast server served %.0f of 200", okB)
	}
}

// TestIntegrationSlowServer: answers slower than RequestTimeout fail with
// ErrTimeout at the timeout, not later; once the server is quick again,
// requests succeed.
func TestIntegrationSlowServer(t *testing.T) {
	in := startKeyServer(t, nil, "")
	tn := newTestNet()
	cfg := Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS, Dial: tn.dial, Logger: quietLogger(t),
		RequestTimeout: 200 * time.Millisecond, PingTimeout: 2 * time.Second, BreakerFailures: 1000}
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	tn.setDelay(in.Addr, time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := s.Sign(nil, make([]byte, 32), crypto.SHA256)
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("err %v, want ErrTimeout", err)
			}
			if d := time.Since(start); d > 700*time.Millisecond {
				t.Errorf("timed out after %v, want about 200ms (answers come after 1s)", d)
			}
		}()
	}
	wg.Wait()
	tn.setDelay(in.Addr, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(ctx, t, "fast again", func() bool {
		_, err := s.Sign(nil, make([]byte, 32), crypto.SHA256)
		return err == nil
	})
}

// TestIntegrationBreaker: when the only key server goes down, its breaker
// opens and requests fail fast with ErrUnavailable; when it comes back on
// the same address, the breaker lets traffic in and closes.
func TestIntegrationBreaker(t *testing.T) {
	pki := servertest.NewPKI(t)
	in := startKeyServer(t, pki, "")
	addr := in.Addr
	reg := prometheus.NewRegistry()
	cfg := Config{Servers: []Server{{Name: "ks", Addr: addr}}, TLS: in.ClientTLS, Logger: quietLogger(t),
		BreakerCooldown: 100 * time.Millisecond, BreakerCooldownMax: 400 * time.Millisecond, Metrics: NewMetrics(reg)}
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	gauge := cfg.Metrics.breaker.WithLabelValues("ks")
	sign := func() error { _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); return err }
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	in.Server.Close()
	waitFor(ctx, t, "breaker open", func() bool { return cl.Servers()[0].Breaker == "open" })
	if g := metricValue(t, gauge); g != float64(breakerOpen) {
		t.Errorf("breaker gauge %v, want %d", g, breakerOpen)
	}
	for range 100 {
		start := time.Now()
		err := sign()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("failing took %v while the breaker is open, want fast", d)
		}
	}

	startKeyServer(t, pki, addr)
	waitFor(ctx, t, "first signature after recovery", func() bool { return sign() == nil })
	for range 5 {
		if err := sign(); err != nil {
			t.Fatal(err)
		}
	}
	if st := cl.Servers()[0]; st.Breaker != "closed" {
		t.Fatalf("after recovery: %+v", st)
	}
	if g := metricValue(t, gauge); g != float64(breakerClosed) {
		t.Errorf("breaker gauge %v, want %d", g, breakerClosed)
	}
}

// TestIntegrationRestartUnderLoad: the only key server restarts while
// requests flow; requests fail fast while it is down (never hang) and
// flow again after.
func TestIntegrationRestartUnderLoad(t *testing.T) {
	pki := servertest.NewPKI(t)
	in := startKeyServer(t, pki, "")
	cfg := Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS, Logger: quietLogger(t), RequestTimeout: 2 * time.Second,
		BreakerCooldown: 50 * time.Millisecond, BreakerCooldownMax: 200 * time.Millisecond}
	cl := newTestClient(t, cfg)
	key := testKeys(t)["ecdsa-p256"].(*ecdsa.PrivateKey)
	s, _ := cl.Signer(key.Public())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var before, after atomic.Int64
	restarted := make(chan struct{})
	go func() {
		time.Sleep(400 * time.Millisecond)
		before.Store(0)
		in.Server.Close()
		time.Sleep(200 * time.Millisecond)
		startKeyServer(t, pki, in.Addr)
		close(restarted)
	}()
	var wg sync.WaitGroup
	var slow atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				_, err := s.Sign(nil, make([]byte, 32), crypto.SHA256)
				if time.Since(start) > time.Second {
					slow.Add(1)
				}
				if err == nil {
					select {
					case <-restarted:
						after.Add(1)
					default:
					}
				} else if !errors.Is(err, ErrUnavailable) {
					var ce *connError
					if !errors.As(err, &ce) {
						t.Errorf("unexpected error %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if after.Load() == 0 {
		t.Fatal("no signature after the restart")
	}
	if slow.Load() != 0 {
		t.Fatalf("%d requests took over a second", slow.Load())
	}
}

// TestIntegrationRefused: a client certificate from another CA is refused
// by the real server, over TLS 1.3 (seen at the first ping) and TLS 1.2
// (seen in the handshake), and the error says so.
func TestIntegrationRefused(t *testing.T) {
	in := startKeyServer(t, nil, "")
	other := servertest.NewPKI(t)
	for _, tc := range []struct {
		name       string
		maxVersion uint16
	}{{"tls1.3", 0}, {"tls1.2", tls.VersionTLS12}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Servers: []Server{{Addr: in.Addr}}, TLS: in.ClientTLS.Clone(), Logger: quietLogger(t)}
			cfg.TLS.Certificates = other.ClientTLS().Certificates
			cfg.TLS.MaxVersion = tc.maxVersion
			checkRefused(t, cfg)
		})
	}
}

// TestIntegrationMetrics: the series exist under their names.
func TestIntegrationMetrics(t *testing.T) {
	in := startKeyServer(t, nil, "")
	reg := prometheus.NewRegistry()
	cfg := Config{Servers: []Server{{Name: "main", Addr: in.Addr}}, TLS: in.ClientTLS, Logger: quietLogger(t), Metrics: NewMetrics(reg)}
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	if _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		got[f.GetName()] = true
	}
	for _, name := range []string{"rampart_keyless_client_requests_total", "rampart_keyless_client_request_duration_seconds",
		"rampart_keyless_client_breaker_state", "rampart_keyless_client_connections", "rampart_keyless_client_dials_total",
		"rampart_keyless_client_rtt_ewma_seconds"} {
		if !got[name] {
			t.Errorf("no series %s", name)
		}
	}
	if v := metricValue(t, cfg.Metrics.conns.WithLabelValues("main")); v != DefaultConnsPerServer {
		t.Errorf("connections gauge %v, want %d", v, DefaultConnsPerServer)
	}
}

// metricValue reads one counter or gauge (testutil would need a module
// the go.mod does not list yet).
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}
