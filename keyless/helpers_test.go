package keyless

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// The helpers here build messages byte by byte, independently of
// AppendMessage, so that tests compare the encoder against the spec rather
// than against itself.

// item is one raw TLV item.
func item(tag Tag, data ...byte) []byte {
	b := []byte{byte(tag), byte(len(data) >> 8), byte(len(data))}
	return append(b, data...)
}

// itemLen is an item header that declares n bytes, followed by data (which
// need not be n bytes long).
func itemLen(tag Tag, n int, data ...byte) []byte {
	return append([]byte{byte(tag), byte(n >> 8), byte(n)}, data...)
}

// raw is a version 1.0 message whose header length is the body's.
func raw(id uint32, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return rawHeader(1, 0, len(b), id, b)
}

// rawHeader is a message with any version and any declared length.
func rawHeader(major, minor byte, declared int, id uint32, body []byte) []byte {
	h := []byte{major, minor, byte(declared >> 8), byte(declared)}
	h = binary.BigEndian.AppendUint32(h, id)
	return append(h, body...)
}

// padded is raw with the spec's padding item appended.
func padded(id uint32, items ...[]byte) []byte {
	b := bytes.Join(items, nil)
	if HeaderLen+len(b) < PaddedLen {
		n := max(0, PaddedLen-HeaderLen-len(b)-ItemHeaderLen)
		b = append(b, item(TagPadding, make([]byte, n)...)...)
	}
	return raw(id, b)
}

// equal compares messages field by field; nil and empty slices are equal.
func equal(a, b *Message) bool {
	return a.ID == b.ID && a.Op == b.Op &&
		bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.Extra, b.Extra) &&
		a.SKI == b.SKI && a.Digest == b.Digest &&
		a.ClientIP == b.ClientIP && a.ServerIP == b.ServerIP &&
		bytes.Equal(a.SNI, b.SNI) && bytes.Equal(a.CertID, b.CertID) &&
		bytes.Equal(a.CustomFuncName, b.CustomFuncName) &&
		bytes.Equal(a.JaegerSpan, b.JaegerSpan) &&
		bytes.Equal(a.RequestContext, b.RequestContext) &&
		a.ComplianceRegion == b.ComplianceRegion
}

// dump is a readable form of a message for failure output.
func dump(m *Message) string {
	var s strings.Builder
	fmt.Fprintf(&s, "{ID:%d Op:%v", m.ID, m.Op)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"Payload", m.Payload}, {"Extra", m.Extra}, {"SNI", m.SNI}, {"CertID", m.CertID},
		{"CustomFuncName", m.CustomFuncName}, {"JaegerSpan", m.JaegerSpan}, {"RequestContext", m.RequestContext}} {
		if f.b != nil {
			fmt.Fprintf(&s, " %s:%q", f.name, f.b)
		}
	}
	if !m.SKI.IsZero() {
		fmt.Fprintf(&s, " SKI:%v", m.SKI)
	}
	if !m.Digest.IsZero() {
		fmt.Fprintf(&s, " Digest:%v", m.Digest)
	}
	if m.ClientIP.IsValid() {
		fmt.Fprintf(&s, " ClientIP:%v", m.ClientIP)
	}
	if m.ServerIP.IsValid() {
		fmt.Fprintf(&s, " ServerIP:%v", m.ServerIP)
	}
	if m.ComplianceRegion != 0 {
		fmt.Fprintf(&s, " Region:%d", m.ComplianceRegion)
	}
	return s.String() + "}"
}

// pingExample is the worked example of KEYLESS.md §5, written out as the
// spec prints it.
func pingExample(op Op) []byte {
	b := []byte{
		0x01, 0x00, 0x03, 0xf8, 0x00, 0x00, 0x00, 0x07, // header: v1.0, body length 1016, ID 7
		0x11, 0x00, 0x01, byte(op), // opcode
		0x12, 0x00, 0x06, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x21, // payload "Hello!"
		0x20, 0x03, 0xe8, // padding, 1000 bytes
	}
	return append(b, make([]byte, 1000)...)
}

var (
	testSKI    = SKI{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67}
	testDigest = Digest{31: 0xd1, 0: 0xd0}
)

// seed is a named input for FuzzDecode, committed under
// testdata/fuzz/FuzzDecode/<name> and checked by TestFuzzCorpus.
type seed struct {
	name string
	data []byte
}

func seeds() []seed {
	v6 := []byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x01}
	mapped := []byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1}
	return []seed{
		{"ping-example", pingExample(OpPing)},
		{"pong-example", pingExample(OpPong)},
		{"ping-empty", padded(0, item(TagOpcode, byte(OpPing)))},
		{"error-key-not-found", padded(9, item(TagOpcode, byte(OpError)), item(TagPayload, byte(ErrKeyNotFound)))},
		{"sign-request-all-items", padded(42,
			item(TagOpcode, byte(OpECDSASignSHA256)),
			item(TagPayload, bytes.Repeat([]byte{0xab}, 32)...),
			item(TagExtra, 'x'),
			item(TagSKI, testSKI[:]...),
			item(TagCertificateDigest, testDigest[:]...),
			item(TagClientIP, 192, 0, 2, 1),
			item(TagServerIP, v6...),
			item(TagSNI, []byte("example.com")...),
			item(TagCertID, []byte("cert-1")...),
			item(TagCustomFuncName, []byte("fn")...),
			item(TagJaegerSpan, []byte("1:2:0:1")...),
			item(TagRequestContext, []byte(`{"request_id":"r1"}`)...),
			item(TagComplianceRegion, byte(RegionFedRAMPHigh)))},
		{"reordered-unknown-tags-trailing", raw(5,
			item(0x7f, 1, 2, 3),
			item(TagSKI, testSKI[:]...),
			item(TagClientIP, mapped...),
			item(0x7f),
			item(TagOpcode, byte(OpRSASignSHA256)),
			[]byte{0x12, 0x00})},
		{"no-opcode", raw(1, item(TagPayload, 'p'))},
		{"large-unpadded", raw(3, item(TagOpcode, byte(OpSeal)), item(TagPayload, make([]byte, 3000)...))},
		{"pad-1025", padded(4, item(TagOpcode, byte(OpPing)), item(TagPayload, make([]byte, 1007)...))},
		{"wrong-length-ski-ignored", padded(6, item(TagOpcode, byte(OpPing)), item(TagSKI, 1, 2, 3))},
		{"duplicate-tag", raw(2, item(TagOpcode, byte(OpPing)), item(TagOpcode, byte(OpPing)))},
		{"item-overrun", raw(2, item(TagOpcode, byte(OpPing)), itemLen(TagPayload, 10, 'a'))},
		{"body-length-mismatch", rawHeader(1, 0, 100, 2, item(TagOpcode, byte(OpPing)))},
		{"short-header", []byte{1, 0, 0}},
		{"bad-version", rawHeader(2, 0, 4, 2, item(TagOpcode, byte(OpPing)))},
		{"bad-opcode-length", raw(2, item(TagOpcode, 0xf1, 0xf1))},
		{"bad-ip-length", raw(2, item(TagOpcode, byte(OpPing)), item(TagClientIP, 1, 2, 3))},
	}
}
