package keyless

import (
	"net/netip"
	"testing"
)

// benchMessages are the shapes that matter: the ping every pooled
// connection sends, a full sign request as the edge sends it, a signature
// response, and an unpadded seal request that is mostly payload.
func benchMessages() []struct {
	name string
	m    Message
} {
	return []struct {
		name string
		m    Message
	}{
		{"ping", Message{ID: 7, Op: OpPing, Payload: []byte("Hello!")}},
		{"sign-request", Message{ID: 8, Op: OpECDSASignSHA256, Payload: make([]byte, 32), SKI: testSKI,
			ClientIP: netip.MustParseAddr("192.0.2.1"), ServerIP: netip.MustParseAddr("2001:db8::1"),
			SNI: []byte("www.example.com"), RequestContext: []byte(`{"request_id":"0123456789abcdef"}`)}},
		{"rsa2048-response", Message{ID: 9, Op: OpResponse, Payload: make([]byte, 256)}},
		{"seal-4k", Message{ID: 10, Op: OpSeal, Payload: make([]byte, 4096)}},
	}
}

// BenchmarkDecode compares Decode with copying the same bytes once, the
// least any decoder that copies its payloads must pay; the ratio is the
// figure to watch.
func BenchmarkDecode(b *testing.B) {
	for _, bm := range benchMessages() {
		in, err := AppendMessage(nil, &bm.m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name+"/baseline-copy", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			dst := make([]byte, len(in))
			for b.Loop() {
				copy(dst, in)
			}
		})
		b.Run(bm.name+"/rampart", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			var m Message
			for b.Loop() {
				if err := m.Decode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppend compares AppendMessage with copying a ready-made
// encoding of the same message, the floor for any encoder.
func BenchmarkAppend(b *testing.B) {
	for _, bm := range benchMessages() {
		tmpl, err := AppendMessage(nil, &bm.m)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]byte, 0, MaxMessageLen)
		b.Run(bm.name+"/baseline-copy", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tmpl)))
			for b.Loop() {
				dst = append(dst[:0], tmpl...)
			}
		})
		b.Run(bm.name+"/rampart", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tmpl)))
			for b.Loop() {
				if dst, err = AppendMessage(dst[:0], &bm.m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("error/rampart", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]byte, 0, PaddedLen)
		for b.Loop() {
			dst = AppendError(dst[:0], 1, ErrKeyNotFound)
		}
	})
}

func BenchmarkFrame(b *testing.B) {
	in := pingExample(OpPing)
	b.ReportAllocs()
	for b.Loop() {
		if n, ok := Frame(in); !ok || n != len(in) {
			b.Fatal(n, ok)
		}
	}
}
