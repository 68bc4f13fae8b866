package server_test

import (
	"crypto"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// BenchmarkSign measures signatures through the key server (one mutual-TLS
// connection, batches of 64 requests in flight, the default worker pool)
// against the same key signing in-process on one goroutine, the floor a
// single CPU sets. On a machine with W CPUs the server can beat the
// baseline by up to W times; the gap below that is the protocol's cost.
//
//	go test -run '^$' -bench BenchmarkSign -benchtime 2s ./keyless/server/
func BenchmarkSign(b *testing.B) {
	in := servertest.StartWith(b, servertest.Options{Logger: slog.New(slog.DiscardHandler)})
	for _, bc := range []struct {
		name string
		key  crypto.Signer
		op   byte
		hash crypto.Hash
	}{
		{"ecdsa-p256", in.Keys.ECDSAP256, 0x15, crypto.SHA256},
		{"ed25519", in.Keys.Ed25519, 0x18, 0},
		{"rsa-2048", in.Keys.RSA, 0x05, crypto.SHA256},
	} {
		msg := []byte("benchmark message")
		payload := msg
		var opts crypto.SignerOpts = crypto.Hash(0)
		if bc.hash != 0 {
			payload, opts = digest(bc.hash, msg), bc.hash
		}
		b.Run(bc.name+"/baseline-in-process", func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				if _, err := bc.key.Sign(rand.Reader, payload, opts); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "sigs/s")
		})
		b.Run(bc.name+"/keyserver", func(b *testing.B) {
			b.ReportAllocs()
			const inFlight = 64
			c := in.Dial(b)
			ski := servertest.SKI(b, bc.key.Public())
			var batch []byte
			for i := range uint32(inFlight) {
				batch = append(batch, request(i, bc.op, ski[:], payload)...)
			}
			start := time.Now()
			n := 0
			for b.Loop() {
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write(batch); err != nil {
					b.Fatal(err)
				}
				for range inFlight {
					r, err := tryReadReply(c)
					if err != nil || r.op != opResponse {
						b.Fatalf("reply: op %#x, %v", r.op, err)
					}
				}
				n += inFlight
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)/el.Seconds(), "sigs/s")
			b.ReportMetric(float64(el.Nanoseconds())/float64(n), "ns/sig")
		})
	}
}
