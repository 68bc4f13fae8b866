package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/keyless"
)

// Unit tests of the client's own parts against the codec-only responder.
// The same scenarios run against the real key server in
// integration_test.go.

func TestConfigValidate(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "ok", cfg: testConfig(t, pki, "127.0.0.1:2407")},
		{name: "empty", cfg: Config{}, wantErr: []string{"servers:", "tls:"}},
		{name: "bad values", cfg: Config{
			Servers: []Server{{Addr: "nohost"}, {Name: "a", Addr: "h:1"}, {Name: "a", Addr: "h:2"}},
			TLS:     &tls.Config{}, ConnsPerServer: -1, MaxInFlightPerConn: 1 << 20, PingIntervalMax: 40 * time.Second,
			RequestTimeout: -time.Second,
		}, wantErr: []string{"servers[0].addr", "servers[2].name", "tls: no client certificate", "conns_per_server",
			"max_in_flight_per_conn", "ping_interval_max", "request_timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestResponderSignMatrix(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cl := newTestClient(t, testConfig(t, pki, r.addr()))
	t.Run("sign", func(t *testing.T) { runSignMatrix(t, cl) })
	t.Run("decrypt", func(t *testing.T) { runDecryptMatrix(t, cl) })
	t.Run("unknown-key", func(t *testing.T) { runUnknownKey(t, cl) })
}

// TestOutOfOrder: the responder answers each run of 8 requests in reverse
// order; every signature must still reach its own request.
func TestOutOfOrder(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", func(r *responder) { r.reverse = 8 })
	cfg := testConfig(t, pki, r.addr())
	cfg.ConnsPerServer = 1 // all requests on one connection
	cl := newTestClient(t, cfg)
	key := testKeys(t)["ecdsa-p256"].(*ecdsa.PrivateKey)
	s, _ := cl.Signer(key.Public())
	const n = 8 * 16
	var wg sync.WaitGroup
	var bad atomic.Int32
	// Launch in runs of 8 so that each run fills a reversed batch.
	for run := range n / 8 {
		for i := range 8 {
			digest := digestOf(crypto.SHA256, []byte{byte(run), byte(i)})
			wg.Add(1)
			if err := s.SignAsync(digest, crypto.SHA256, func(sig []byte, err error) {
				defer wg.Done()
				if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest, sig) {
					bad.Add(1)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
	}
	if bad.Load() != 0 {
		t.Fatalf("%d of %d signatures wrong or failed", bad.Load(), n)
	}
}

// TestTimeout: a slow server times requests out with ErrTimeout; the late
// answers are dropped and the connection keeps serving.
func TestTimeout(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cfg.RequestTimeout = 150 * time.Millisecond
	cfg.BreakerFailures = 1000 // this test is about timeouts, not the breaker
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	digest := make([]byte, 32)

	r.delay.Store(int64(1500 * time.Millisecond))
	start := time.Now()
	_, err := s.Sign(nil, digest, crypto.SHA256)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Errorf("timed out after %v, want about 150ms (the answer comes after 1.5s)", d)
	}
	r.delay.Store(0)
	time.Sleep(1500 * time.Millisecond) // the late answer arrives and is dropped
	if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
		t.Fatalf("after the timeout: %v", err)
	}
	for _, st := range cl.Servers() {
		if st.Outstanding != 0 || st.Conns != cfg.withDefaults().ConnsPerServer {
			t.Errorf("server %+v: want nothing outstanding and all connections up", st)
		}
	}
}

// TestRefused: a client certificate from another CA is refused by the key
// server; the error says so.
func TestRefused(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cfg.TLS = cfg.TLS.Clone()
	cfg.TLS.Certificates = other.client.Certificates
	checkRefused(t, cfg)
}

func checkRefused(t *testing.T, cfg Config) {
	t.Helper()
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	start := time.Now()
	_, err := s.Sign(nil, make([]byte, 32), crypto.SHA256)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err %v, want ErrUnavailable and ErrRefused", err)
	}
	var de *DialError
	if !errors.As(err, &de) || !de.Refused() {
		t.Fatalf("err %v: no refused *DialError", err)
	}
	if !strings.Contains(err.Error(), "refused the TLS connection") {
		t.Errorf("error text %q does not say the server refused", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failing took %v, want fast", d)
	}
	t.Logf("error: %v", err)
}

// TestServerCertUnknown: the client refuses a key server whose
// certificate it cannot verify.
func TestServerCertUnknown(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cfg.TLS = cfg.TLS.Clone()
	cfg.TLS.RootCAs = other.client.RootCAs
	cl := newTestClient(t, cfg)
	_, err := cl.Do(keyless.OpPing, keyless.SKI{}, nil)
	var de *DialError
	if !errors.As(err, &de) || de.Stage != "tls handshake" || de.Refused() {
		t.Fatalf("err %v, want a handshake *DialError", err)
	}
}

// TestPingRoundTrip: Do with OpPing through the normal route.
func TestPingRoundTrip(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cl := newTestClient(t, testConfig(t, pki, r.addr()))
	res, err := cl.Do(keyless.OpPing, keyless.SKI{}, []byte("hello"))
	if err != nil || string(res) != "hello" {
		t.Fatalf("ping: %q, %v", res, err)
	}
	if _, err := cl.Do(keyless.OpResponse, keyless.SKI{}, nil); err == nil {
		t.Fatal("a response opcode was sent as a request")
	}
	if _, err := cl.Do(keyless.OpPing, keyless.SKI{}, make([]byte, maxRequestPayload+1)); !errors.Is(err, keyless.ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
}

// TestOverloaded: with a stalled server, a tiny queue and one slot, the
// queue fills and further requests fail at once.
func TestOverloaded(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cfg.ConnsPerServer, cfg.MaxInFlightPerConn, cfg.QueueLen = 1, 1, 2
	cfg.RequestTimeout = time.Second
	cfg.BreakerFailures = 1000
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	r.delay.Store(int64(300 * time.Millisecond))
	var wg sync.WaitGroup
	var overloaded, ok atomic.Int32
	for range 10 {
		wg.Add(1)
		err := s.SignAsync(make([]byte, 32), crypto.SHA256, func(_ []byte, err error) {
			defer wg.Done()
			if err == nil {
				ok.Add(1)
			}
		})
		if err != nil {
			wg.Done()
			if !errors.Is(err, ErrOverloaded) {
				t.Fatalf("err %v, want ErrOverloaded", err)
			}
			overloaded.Add(1)
		}
	}
	wg.Wait()
	// One in the slot, one taken by the writer waiting for a slot, two
	// queued: at least 6 of 10 refused, the rest served.
	if overloaded.Load() < 5 || int(ok.Load())+int(overloaded.Load()) != 10 {
		t.Fatalf("ok %d, overloaded %d", ok.Load(), overloaded.Load())
	}
}

// TestClose: pending requests fail with ErrClosed, their callbacks run
// before Close returns, and later requests are refused.
func TestClose(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	r.delay.Store(int64(time.Second))
	var closed atomic.Int32
	for range 20 {
		if err := s.SignAsync(make([]byte, 32), crypto.SHA256, func(_ []byte, err error) {
			if errors.Is(err, ErrClosed) {
				closed.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	cl.Close()
	if closed.Load() != 20 {
		t.Fatalf("%d of 20 callbacks saw ErrClosed by the time Close returned", closed.Load())
	}
	if _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestStopDuringLoad: a server that goes away under load; with one server
// the in-flight requests fail (after their one retry finds no server),
// nothing hangs, and the client recovers when the server returns.
func TestStopDuringLoad(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	addr := r.addr()
	cfg := testConfig(t, pki, addr)
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.delay.Store(int64(20 * time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		if err := s.SignAsync(make([]byte, 32), crypto.SHA256, func(_ []byte, err error) { errs <- err; wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrUnavailable) && !strings.Contains(err.Error(), "lost") {
			t.Errorf("unexpected error %v", err)
		}
	}
	startResponder(t, pki, addr, nil)
	waitFor(ctx, t, "recovery", func() bool {
		_, err := s.Sign(nil, make([]byte, 32), crypto.SHA256)
		return err == nil
	})
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: gave up: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestUnpadPKCS1v15 checks the constant-time unpadding on its own.
func TestUnpadPKCS1v15(t *testing.T) {
	ps := bytes.Repeat([]byte{0x5a}, 8)
	tests := []struct {
		name  string
		em    []byte
		valid int
		msg   string
	}{
		{"ok", append(append([]byte{0, 2}, ps...), append([]byte{0}, "hi"...)...), 1, "hi"},
		{"empty message", append(append([]byte{0, 2}, ps...), 0), 1, ""},
		{"short ps", append(append([]byte{0, 2}, ps[:7]...), append([]byte{0}, "hello"...)...), 0, ""},
		{"first byte", append(append([]byte{1, 2}, ps...), append([]byte{0}, "hi"...)...), 0, ""},
		{"block type 1", append(append([]byte{0, 1}, ps...), append([]byte{0}, "hi"...)...), 0, ""},
		{"no separator", append([]byte{0, 2}, bytes.Repeat([]byte{1}, 20)...), 0, ""},
		{"too short", []byte{0, 2, 0}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			valid, i := unpadPKCS1v15(tc.em)
			if valid != tc.valid || (valid == 1 && string(tc.em[i:]) != tc.msg) {
				t.Fatalf("valid %d index %d, want %d and %q", valid, i, tc.valid, tc.msg)
			}
		})
	}
}

var _ = rand.Reader

// TestCloseStopsGoroutines: after Close, every goroutine the client
// started has ended.
func TestCloseStopsGoroutines(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	before := runtime.NumGoroutine()
	cfg := testConfig(t, pki, r.addr(), "127.0.0.1:1") // one up, one refusing
	cfg.ConnsPerServer = 3
	cl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	for range 10 {
		if _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	if n := runtime.NumGoroutine(); n < before+3*3 {
		t.Fatalf("%d goroutines with the client running, %d before: the client seems not to run", n, before)
	}
	cl.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestBusyConnKeepsPinging: with every request slot taken by slow
// requests, health pings still go out (they have slots of their own), so
// a busy but healthy server keeps its connection.
func TestBusyConnKeepsPinging(t *testing.T) {
	pki := newTestPKI(t)
	r := startResponder(t, pki, "", nil)
	cfg := testConfig(t, pki, r.addr())
	cfg.ConnsPerServer, cfg.MaxInFlightPerConn = 1, 2
	cfg.PingInterval, cfg.PingIntervalMax, cfg.PingTimeout = 50*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond
	reg := prometheus.NewRegistry()
	cfg.Metrics = NewMetrics(reg)
	cl := newTestClient(t, cfg)
	s, _ := cl.Signer(testKeys(t)["ecdsa-p256"].Public())
	r.delay.Store(int64(time.Second))
	errs := make(chan error, 2)
	for range 2 {
		if err := s.SignAsync(make([]byte, 32), crypto.SHA256, func(_ []byte, err error) { errs <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	pings := metricValue(t, cfg.Metrics.requests.WithLabelValues("0", "ping", "ok"))
	dials := metricValue(t, cfg.Metrics.dials.WithLabelValues("0", "ok"))
	if pings < 5 || dials != 1 {
		t.Fatalf("%.0f pings answered and %.0f dials while the slots were busy; want pings every 50ms and no reconnect", pings, dials)
	}
}
