package keyless

import (
	"bytes"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzDecode seeds")

// FuzzDecode checks that Decode never panics, that an error is always a
// *ParseError and leaves Frame consistent, and that whatever decodes
// re-encodes (canonically, padded) to bytes that decode to the same message.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s.data)
	}
	var m, m2 Message
	f.Fuzz(func(t *testing.T, in []byte) {
		err := m.Decode(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == 0 || !errors.Is(err, pe.Code()) || pe.Error() == "" {
				t.Fatalf("Decode = %v (%T), want a *ParseError", err, err)
			}
			return
		}
		if n, ok := Frame(in); !ok || n != len(in) {
			t.Fatalf("decoded, but Frame = %d, %v for %d bytes", n, ok, len(in))
		}
		for _, s := range [][]byte{m.Payload, m.Extra, m.SNI, m.CertID, m.CustomFuncName, m.JaegerSpan, m.RequestContext} {
			if s != nil && (len(s) == 0 || !inside(s, in)) {
				t.Fatalf("field %q is empty or outside the input", s)
			}
		}
		enc, err := AppendMessage(nil, &m)
		if err != nil {
			// Only a message that lacked an opcode item can grow past the
			// limit, since the encoder always writes one.
			if !errors.Is(err, ErrTooLarge) || m.EncodedLen() <= MaxMessageLen || m.Op != 0 {
				t.Fatalf("re-encode %s: %v", dump(&m), err)
			}
			return
		}
		if len(enc) != m.EncodedLen() || len(enc) < PaddedLen {
			t.Fatalf("re-encoded %d bytes, EncodedLen %d", len(enc), m.EncodedLen())
		}
		if err := m2.Decode(enc); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !equal(&m, &m2) {
			t.Fatalf("round trip changed the message:\n%s\n%s", dump(&m), dump(&m2))
		}
		if enc2, _ := AppendMessage(nil, &m2); !bytes.Equal(enc, enc2) {
			t.Fatal("encoding is not canonical")
		}
	})
}

// inside reports whether the non-empty s lies within buf.
func inside(s, buf []byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(buf))
}

// TestFuzzCorpus keeps testdata/fuzz/FuzzDecode in step with seeds(), so
// the committed corpus is generated, not hand-edited: go test -run
// TestFuzzCorpus -update rewrites it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for _, s := range seeds() {
		want := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\n")
		path := filepath.Join(dir, s.name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzCorpus -update", path, err)
		}
	}
}

// randMessage draws a message whose encoding fits, with each field present
// about half the time and lengths that cross the padding boundaries.
func randMessage(r *rand.Rand) Message {
	bytesN := func(max int) []byte {
		if r.IntN(2) == 0 {
			return nil
		}
		n := 1 + r.IntN(max)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	addr := func() netip.Addr {
		switch r.IntN(3) {
		case 0:
			return netip.Addr{}
		case 1:
			return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), 2, 1})
		}
		var a [16]byte
		a[0], a[15] = 0x20, byte(r.Uint32())
		return netip.AddrFrom16(a)
	}
	m := Message{ID: r.Uint32(), Op: Op(r.Uint32())}
	payloadMax := []int{40, 1100, 20000}[r.IntN(3)]
	m.Payload = bytesN(payloadMax)
	m.Extra = bytesN(100)
	if r.IntN(2) == 0 {
		for i := range m.SKI {
			m.SKI[i] = byte(r.Uint32())
		}
	}
	if r.IntN(4) == 0 {
		m.Digest[r.IntN(32)] = 1
	}
	m.ClientIP, m.ServerIP = addr(), addr()
	m.SNI = bytesN(64)
	m.CertID = bytesN(16)
	m.CustomFuncName = bytesN(16)
	m.JaegerSpan = bytesN(40)
	m.RequestContext = bytesN(200)
	m.ComplianceRegion = Region(r.IntN(3))
	return m
}

// TestRoundTripRandom is the round-trip property over seeded random
// messages: encode, frame, decode, compare, and check the padding rule.
func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d Message
	buf := make([]byte, 0, MaxMessageLen)
	for i := range 5000 {
		m := randMessage(r)
		enc, err := AppendMessage(buf[:0], &m)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if n, ok := Frame(enc); !ok || n != len(enc) {
			t.Fatalf("#%d: Frame = %d, %v of %d", i, n, ok, len(enc))
		}
		unpadded := m.bodyLen() + HeaderLen
		switch {
		case unpadded >= PaddedLen && len(enc) != unpadded,
			unpadded < PaddedLen-ItemHeaderLen && len(enc) != PaddedLen,
			unpadded >= PaddedLen-ItemHeaderLen && unpadded < PaddedLen && len(enc) != unpadded+ItemHeaderLen:
			t.Fatalf("#%d: %d bytes unpadded, %d encoded", i, unpadded, len(enc))
		}
		if err := d.Decode(enc); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if !equal(&d, &m) {
			t.Fatalf("#%d: decoded %s, want %s", i, dump(&d), dump(&m))
		}
	}
}

// TestDecodeShuffled writes random messages item by item in a random order,
// with unknown tags and stray trailing bytes mixed in, and checks that
// Decode sees past all of it.
func TestDecodeShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var d Message
	for i := range 2000 {
		m := randMessage(r)
		enc, err := AppendMessage(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		// Split the canonical body into its items and reshuffle them.
		var items [][]byte
		for off := HeaderLen; off < len(enc); {
			n := int(enc[off+1])<<8 | int(enc[off+2])
			items = append(items, enc[off:off+ItemHeaderLen+n])
			off += ItemHeaderLen + n
		}
		for range r.IntN(4) {
			tag := Tag(r.IntN(256))
			for tag.Known() {
				tag = Tag(r.IntN(256))
			}
			items = append(items, item(tag, bytes.Repeat([]byte{0xee}, r.IntN(10))...))
		}
		r.Shuffle(len(items), func(a, b int) { items[a], items[b] = items[b], items[a] })
		items = append(items, []byte{0x12, 0xff}[:r.IntN(3)])
		in := raw(m.ID, items...)
		if len(in)-HeaderLen > MaxBodyLen {
			continue
		}
		if err := d.Decode(in); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if !equal(&d, &m) {
			t.Fatalf("#%d: decoded %s, want %s", i, dump(&d), dump(&m))
		}
	}
}
