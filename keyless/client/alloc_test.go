package client

import (
	"crypto"
	"crypto/tls"
	"io"

	"crypto/ecdsa"
	"crypto/rand"
	"github.com/rampart-edge/rampart/keyless"
	"sync"
	"testing"
	"time"
)

// echoClient is a client of an echo responder (fixed answers, no
// allocation of its own), so that allocation counts are the client's.
func echoClient(tb testing.TB, connsPerServer int) *Signer {
	s, _ := echoSetup(tb, connsPerServer)
	return s
}

// echoSetup also returns a function that does one bare TLS round trip of
// a request-sized message to the same responder, with no client: the
// baseline of the allocation test.
func echoSetup(tb testing.TB, connsPerServer int) (*Signer, func() error) {
	pki := newTestPKI(tb)
	r := startResponder(tb, pki, "", func(r *responder) { r.echo = true })
	raw, err := tls.Dial("tcp", r.addr(), pki.client)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	req, _ := keyless.AppendMessage(nil, &keyless.Message{ID: 1, Op: keyless.OpECDSASignSHA256, Payload: make([]byte, 32)})
	resp := make([]byte, keyless.PaddedLen)
	bare := func() error {
		if _, err := raw.Write(req); err != nil {
			return err
		}
		_, err := io.ReadFull(raw, resp)
		return err
	}
	cfg := testConfig(tb, pki, r.addr())
	cfg.ConnsPerServer = connsPerServer
	cfg.PingInterval, cfg.PingIntervalMax = 10*time.Second, 10*time.Second
	cl := newTestClient(tb, cfg)
	s, err := cl.Signer(testKeys(tb)["ecdsa-p256"].Public())
	if err != nil {
		tb.Fatal(err)
	}
	return s, bare
}

// TestSignAllocs: SignAsync allocates nothing per request in steady
// state, and Sign only the signature it returns. crypto/tls itself
// allocates one small object per record read (an atLeastReader, on
// both ends), so the measure is a bare TLS round trip of the same sizes
// to the same responder: the client may add nothing to it (one for Sign).
func TestSignAllocs(t *testing.T) {
	s, bare := echoSetup(t, 1)
	digest := make([]byte, 32)
	ch := make(chan error, 1)
	done := func(_ []byte, err error) { ch <- err }
	async := func() {
		if err := s.SignAsync(digest, crypto.SHA256, done); err != nil {
			t.Fatal(err)
		}
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	sync := func() {
		if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	baseline := func() {
		if err := bare(); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 { // warm the pool, the metric series and the buffers
		async()
		sync()
		baseline()
	}
	b := testing.AllocsPerRun(500, baseline)
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	if a := testing.AllocsPerRun(500, async); a > b {
		t.Errorf("SignAsync: %.2f allocs per request, bare TLS round trip %.2f: the client adds %.2f, want 0", a, b, a-b)
	}
	if a := testing.AllocsPerRun(500, sync); a > b+1 {
		t.Errorf("Sign: %.2f allocs per request, bare TLS round trip %.2f: the client adds %.2f, want 1 (the signature)", a, b, a-b)
	}
	t.Logf("allocs per round trip: bare TLS %.2f", b)
}

// BenchmarkSign measures the client against an echo responder on
// loopback (so the figures are the client's and the TLS loopback's, with
// no signing), beside in-process ECDSA P-256 signing as the baseline that
// the remote path must beat or approach once a real key server signs.
func BenchmarkSign(b *testing.B) {
	key := testKeys(b)["ecdsa-p256"].(*ecdsa.PrivateKey)
	digest := make([]byte, 32)
	b.Run("baseline-local-ecdsa-p256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, key, digest); err != nil {
				b.Fatal(err)
			}
		}
	})
	s := echoClient(b, 2)
	b.Run("echo/sign-1-in-flight", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, depth := range []int{16, 256} {
		b.Run("echo/sign-async-"+itoa(depth)+"-in-flight", func(b *testing.B) {
			b.ReportAllocs()
			sem := make(chan struct{}, depth)
			var wg sync.WaitGroup
			done := func(_ []byte, err error) {
				if err != nil {
					b.Error(err)
				}
				<-sem
				wg.Done()
			}
			for b.Loop() {
				sem <- struct{}{}
				wg.Add(1)
				if err := s.SignAsync(digest, crypto.SHA256, done); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
