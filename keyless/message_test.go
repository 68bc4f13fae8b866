package keyless

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"unsafe"
)

func TestPingExample(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   Op
	}{
		{"ping", OpPing},
		{"pong", OpPong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := pingExample(tc.op)
			if len(want) != 1024 {
				t.Fatalf("example is %d bytes, spec says 1024", len(want))
			}
			m := Message{ID: 7, Op: tc.op, Payload: []byte("Hello!")}
			got, err := AppendMessage(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%x\nwant\n%x", got, want)
			}
			if n := m.EncodedLen(); n != len(want) {
				t.Errorf("EncodedLen = %d, want %d", n, len(want))
			}
			var d Message
			if err := d.Decode(want); err != nil {
				t.Fatal(err)
			}
			if !equal(&d, &m) {
				t.Fatalf("decoded %s, want %s", dump(&d), dump(&m))
			}
		})
	}
}

// TestItems encodes one field at a time and checks the item bytes that
// follow the opcode item, then decodes them back.
func TestItems(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	v6b := v6.As16()
	for _, tc := range []struct {
		name     string
		m        Message
		wantItem []byte // nil: nothing after the opcode but padding
		decoded  *Message
	}{
		{"payload", Message{Payload: []byte{1, 2}}, item(TagPayload, 1, 2), nil},
		{"extra", Message{Extra: []byte("ex")}, item(TagExtra, 'e', 'x'), nil},
		{"ski", Message{SKI: testSKI}, item(TagSKI, testSKI[:]...), nil},
		{"digest", Message{Digest: testDigest}, item(TagCertificateDigest, testDigest[:]...), nil},
		{"client-ipv4", Message{ClientIP: netip.MustParseAddr("192.0.2.1")}, item(TagClientIP, 192, 0, 2, 1), nil},
		{"client-ipv6", Message{ClientIP: v6}, item(TagClientIP, v6b[:]...), nil},
		{"client-ipv4-mapped-sent-as-4", Message{ClientIP: netip.MustParseAddr("::ffff:192.0.2.1")}, item(TagClientIP, 192, 0, 2, 1),
			&Message{ClientIP: netip.MustParseAddr("192.0.2.1")}},
		{"client-ipv6-zone-dropped", Message{ClientIP: netip.MustParseAddr("fe80::1%eth0")}, item(TagClientIP, []byte{0xfe, 0x80, 15: 1}...),
			&Message{ClientIP: netip.MustParseAddr("fe80::1")}},
		{"client-ip-unspecified-sent", Message{ClientIP: netip.IPv4Unspecified()}, item(TagClientIP, 0, 0, 0, 0), nil},
		{"server-ipv4", Message{ServerIP: netip.MustParseAddr("198.18.0.1")}, item(TagServerIP, 198, 18, 0, 1), nil},
		{"server-ipv6", Message{ServerIP: v6}, item(TagServerIP, v6b[:]...), nil},
		{"sni", Message{SNI: []byte("example.com")}, item(TagSNI, []byte("example.com")...), nil},
		{"cert-id", Message{CertID: []byte("c1")}, item(TagCertID, 'c', '1'), nil},
		{"custom-func-name", Message{CustomFuncName: []byte("f")}, item(TagCustomFuncName, 'f'), nil},
		{"jaeger-span", Message{JaegerSpan: []byte("1:2:0:1")}, item(TagJaegerSpan, []byte("1:2:0:1")...), nil},
		{"request-context", Message{RequestContext: []byte(`{}`)}, item(TagRequestContext, '{', '}'), nil},
		{"compliance-region", Message{ComplianceRegion: RegionFedRAMPHigh}, item(TagComplianceRegion, 1), nil},
		{"empty-values-left-out", Message{Payload: []byte{}, Extra: []byte{}, SNI: []byte{}, CertID: []byte{},
			CustomFuncName: []byte{}, JaegerSpan: []byte{}, RequestContext: []byte{}}, nil, &Message{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.ID, tc.m.Op = 0x01020304, OpPing
			want := padded(0x01020304, item(TagOpcode, byte(OpPing)), tc.wantItem)
			got, err := AppendMessage(nil, &tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%x\nwant\n%x", got, want)
			}
			wantMsg := &tc.m
			if tc.decoded != nil {
				wantMsg = tc.decoded
				wantMsg.ID, wantMsg.Op = tc.m.ID, tc.m.Op
			}
			var d Message
			if err := d.Decode(got); err != nil {
				t.Fatal(err)
			}
			if !equal(&d, wantMsg) {
				t.Fatalf("decoded %s, want %s", dump(&d), dump(wantMsg))
			}
		})
	}
}

// TestItemOrder checks the established writer's order with every item set.
func TestItemOrder(t *testing.T) {
	var d Message
	all := seeds()[4].data // sign-request-all-items, built by hand in that order
	if err := d.Decode(all); err != nil {
		t.Fatal(err)
	}
	got, err := AppendMessage(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("encoded\n%x\nwant\n%x", got, all)
	}
}

func TestOpcodes(t *testing.T) {
	for _, tc := range []struct {
		op       Op
		value    byte
		typ      string
		checkErr error
	}{
		{OpRSADecrypt, 0x01, "rsa", nil},
		{OpRSASignMD5SHA1, 0x02, "rsa", nil},
		{OpRSASignSHA1, 0x03, "rsa", nil},
		{OpRSASignSHA224, 0x04, "rsa", nil},
		{OpRSASignSHA256, 0x05, "rsa", nil},
		{OpRSASignSHA384, 0x06, "rsa", nil},
		{OpRSASignSHA512, 0x07, "rsa", nil},
		{OpRSADecryptRaw, 0x08, "unknown", ErrBadOpcode},
		{OpECDSASignMD5SHA1, 0x12, "ecdsa", nil},
		{OpECDSASignSHA1, 0x13, "ecdsa", nil},
		{OpECDSASignSHA224, 0x14, "ecdsa", nil},
		{OpECDSASignSHA256, 0x15, "ecdsa", nil},
		{OpECDSASignSHA384, 0x16, "ecdsa", nil},
		{OpECDSASignSHA512, 0x17, "ecdsa", nil},
		{OpEd25519Sign, 0x18, "ed25519", nil},
		{OpSeal, 0x21, "other", nil},
		{OpUnseal, 0x22, "other", nil},
		{OpRPC, 0x23, "rpc", nil},
		{OpCustom, 0x24, "custom", nil},
		{OpRSAPSSSignSHA256, 0x35, "rsa", nil},
		{OpRSAPSSSignSHA384, 0x36, "rsa", nil},
		{OpRSAPSSSignSHA512, 0x37, "rsa", nil},
		{OpPing, 0xF1, "other", nil},
		{OpResponse, 0xF0, "other", ErrUnexpectedOpcode},
		{OpPong, 0xF2, "other", ErrUnexpectedOpcode},
		{OpError, 0xFF, "other", ErrUnexpectedOpcode},
		{0x00, 0x00, "unknown", ErrBadOpcode}, // a missing opcode item
		{0x19, 0x19, "unknown", ErrBadOpcode},
		{0x38, 0x38, "unknown", ErrBadOpcode},
		{0xF3, 0xF3, "unknown", ErrBadOpcode},
	} {
		t.Run(tc.op.String(), func(t *testing.T) {
			if byte(tc.op) != tc.value {
				t.Fatalf("%v = %#x, spec says %#x", tc.op, byte(tc.op), tc.value)
			}
			if got := tc.op.Type(); got != tc.typ {
				t.Errorf("Type = %q, want %q", got, tc.typ)
			}
			if err := tc.op.CheckRequest(); err != tc.checkErr {
				t.Errorf("CheckRequest = %v, want %v", err, tc.checkErr)
			}
			m := Message{ID: 1, Op: tc.op, Payload: []byte("in")}
			enc, err := AppendMessage(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc[8:12], []byte{0x11, 0, 1, tc.value}) {
				t.Fatalf("opcode item %x", enc[8:12])
			}
			var d Message
			if err := d.Decode(enc); err != nil || !equal(&d, &m) {
				t.Fatalf("decoded %s, %v", dump(&d), err)
			}
		})
	}
}

func TestTags(t *testing.T) {
	want := map[Tag]byte{
		TagCertificateDigest: 0x01, TagSNI: 0x02, TagClientIP: 0x03, TagSKI: 0x04,
		TagServerIP: 0x05, TagCertID: 0x06, TagOpcode: 0x11, TagPayload: 0x12,
		TagCustomFuncName: 0x13, TagExtra: 0x14, TagJaegerSpan: 0x15,
		TagRequestContext: 0x16, TagComplianceRegion: 0x17, TagPadding: 0x20,
	}
	for tag := range 256 {
		v, known := want[Tag(tag)]
		if known && v != byte(tag) {
			t.Errorf("%v = %#x, want %#x", Tag(tag), tag, v)
		}
		if Tag(tag).Known() != known {
			t.Errorf("%v.Known() = %v", Tag(tag), !known)
		}
	}
}

func TestErrorResponses(t *testing.T) {
	for code := ErrNone; code <= ErrRemoteConfiguration+1; code++ {
		t.Run(code.Error(), func(t *testing.T) {
			want := padded(77, item(TagOpcode, 0xff), item(TagPayload, byte(code)))
			if got := AppendError(nil, 77, code); !bytes.Equal(got, want) {
				t.Fatalf("AppendError\n%x\nwant\n%x", got, want)
			}
			viaMessage, err := AppendMessage(nil, &Message{ID: 77, Op: OpError, Payload: []byte{byte(code)}})
			if err != nil || !bytes.Equal(viaMessage, want) {
				t.Fatalf("AppendMessage disagrees with AppendError: %v", err)
			}
			var m Message
			if err := m.Decode(want); err != nil {
				t.Fatal(err)
			}
			err = m.Err()
			var re *RemoteError
			if !errors.As(err, &re) || re.Code != code || !errors.Is(err, code) {
				t.Fatalf("Err() = %v, want RemoteError %v", err, code)
			}
		})
	}
	// The codes the spec numbers, by name.
	for code, v := range map[ErrCode]byte{ErrNone: 0, ErrCrypto: 1, ErrKeyNotFound: 2, ErrRead: 3,
		ErrVersionMismatch: 4, ErrBadOpcode: 5, ErrUnexpectedOpcode: 6, ErrFormat: 7, ErrInternal: 8,
		ErrCertNotFound: 9, ErrExpired: 0x0a, ErrRemoteConfiguration: 0x0b} {
		if byte(code) != v {
			t.Errorf("%v = %#x, want %#x", code, byte(code), v)
		}
	}
}

func TestErr(t *testing.T) {
	for _, tc := range []struct {
		name       string
		m          Message
		wantReason Reason // 0: no ParseError
		wantCode   ErrCode
		wantNil    bool
	}{
		{"response", Message{Op: OpResponse, Payload: []byte("sig")}, 0, 0, true},
		{"pong", Message{Op: OpPong}, 0, 0, true},
		{"error", Message{Op: OpError, Payload: []byte{byte(ErrInternal)}}, 0, ErrInternal, false},
		{"error-empty-payload", Message{Op: OpError}, ReasonErrorPayload, 0, false},
		{"error-long-payload", Message{Op: OpError, Payload: []byte{2, 2}}, ReasonErrorPayload, 0, false},
		{"request-op", Message{Op: OpPing}, ReasonResponseOp, 0, false},
		{"missing-op", Message{}, ReasonResponseOp, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Err()
			switch {
			case tc.wantNil:
				if err != nil {
					t.Fatalf("Err() = %v", err)
				}
			case tc.wantReason != 0:
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Reason != tc.wantReason || !errors.Is(err, ErrFormat) {
					t.Fatalf("Err() = %v, want ParseError %v", err, tc.wantReason)
				}
			default:
				var re *RemoteError
				if !errors.As(err, &re) || re.Code != tc.wantCode {
					t.Fatalf("Err() = %v, want RemoteError %v", err, tc.wantCode)
				}
			}
		})
	}
}

func TestPadding(t *testing.T) {
	// A ping with a p-byte payload has a body of B = 4 + 3 + p before padding.
	for _, tc := range []struct {
		name       string
		payload    int
		wantTotal  int
		wantPadLen int // -1: no padding item
	}{
		{"empty", 0, 1024, 1024 - 8 - 4 - 3},
		{"small", 6, 1024, 1000},
		{"exact-fit-1021", 1021 - 8 - 7, 1024, 0},
		{"zero-pad-1022", 1022 - 8 - 7, 1025, 0},
		{"zero-pad-1023", 1023 - 8 - 7, 1026, 0},
		{"no-pad-1024", 1024 - 8 - 7, 1024, -1},
		{"no-pad-1025", 1025 - 8 - 7, 1025, -1},
		{"no-pad-large", 5000, 5000 + 8 + 7, -1},
		{"max", MaxPayloadLen, MaxMessageLen, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Message{Op: OpPing, Payload: bytes.Repeat([]byte{'p'}, tc.payload)}
			enc, err := AppendMessage(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != tc.wantTotal || m.EncodedLen() != tc.wantTotal {
				t.Fatalf("total %d, EncodedLen %d, want %d", len(enc), m.EncodedLen(), tc.wantTotal)
			}
			rest := enc[8+4:]
			if tc.payload > 0 {
				rest = rest[3+tc.payload:]
			}
			if tc.wantPadLen < 0 {
				if len(rest) != 0 {
					t.Fatalf("%d bytes after the payload, want none", len(rest))
				}
				return
			}
			if want := item(TagPadding, make([]byte, tc.wantPadLen)...); !bytes.Equal(rest, want) {
				t.Fatalf("padding %x", rest[:min(len(rest), 8)])
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"payload", Message{Payload: make([]byte, MaxPayloadLen+1)}},
		{"payload-and-sni", Message{Payload: make([]byte, MaxPayloadLen), SNI: []byte("a")}},
		{"huge-item", Message{Extra: make([]byte, 70000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendMessage(dst, &tc.m)
			if !errors.Is(err, ErrTooLarge) || string(got) != "keep" {
				t.Fatalf("AppendMessage = %q..., %v", got[:min(len(got), 8)], err)
			}
			if tc.m.EncodedLen() <= MaxMessageLen {
				t.Fatalf("EncodedLen = %d", tc.m.EncodedLen())
			}
		})
	}
}

// TestDecode covers the parsing rules of KEYLESS.md §1-2, accepted and
// refused inputs in one table.
func TestDecode(t *testing.T) {
	ping := item(TagOpcode, byte(OpPing))
	mapped := []byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	for _, tc := range []struct {
		name string
		in   []byte
		want Message // when wantErr is 0
		// wantErr is the Reason of the expected *ParseError; the error must
		// also report wantOffset and wantTag.
		wantErr    Reason
		wantOffset int
		wantTag    Tag
		wantCode   ErrCode
	}{
		{name: "minimal", in: raw(9, ping), want: Message{ID: 9, Op: OpPing}},
		{name: "empty-body-no-opcode", in: raw(9), want: Message{ID: 9}},
		{name: "unpadded-accepted", in: raw(1, ping, item(TagPayload, 'x')), want: Message{ID: 1, Op: OpPing, Payload: []byte("x")}},
		{name: "any-order", in: raw(1, item(TagPayload, 'x'), item(TagPadding), ping), want: Message{ID: 1, Op: OpPing, Payload: []byte("x")}},
		{name: "unknown-tags-skipped", in: raw(1, item(0x00), item(0x07, 1), ping, item(0x30, 1, 2), item(0xff, 3)), want: Message{ID: 1, Op: OpPing}},
		{name: "unknown-tag-repeated-ok", in: raw(1, item(0x42), item(0x42), ping), want: Message{ID: 1, Op: OpPing}},
		{name: "one-stray-byte", in: raw(1, ping, []byte{0x12}), want: Message{ID: 1, Op: OpPing}},
		{name: "two-stray-bytes", in: raw(1, ping, []byte{0x12, 0xff}), want: Message{ID: 1, Op: OpPing}},
		{name: "minor-version-ignored", in: rawHeader(1, 9, 4, 3, ping), want: Message{ID: 3, Op: OpPing}},
		{name: "ski-wrong-length-ignored", in: raw(1, ping, item(TagSKI, 1, 2)), want: Message{ID: 1, Op: OpPing}},
		{name: "digest-wrong-length-ignored", in: raw(1, ping, item(TagCertificateDigest, 1)), want: Message{ID: 1, Op: OpPing}},
		{name: "padding-content-ignored", in: raw(1, ping, item(TagPadding, 1, 2, 3)), want: Message{ID: 1, Op: OpPing}},
		{name: "mapped-ip-unmapped", in: raw(1, item(TagServerIP, mapped...)), want: Message{ID: 1, ServerIP: netip.MustParseAddr("10.0.0.1")}},
		{name: "empty-items-are-nil", in: raw(1, item(TagPayload), item(TagSNI)), want: Message{ID: 1}},
		{name: "region-zero", in: raw(1, item(TagComplianceRegion, 0)), want: Message{ID: 1}},
		{name: "unknown-region-kept", in: raw(1, item(TagComplianceRegion, 7)), want: Message{ID: 1, ComplianceRegion: 7}},
		{name: "unknown-opcode-decodes", in: raw(1, item(TagOpcode, 0x08)), want: Message{ID: 1, Op: OpRSADecryptRaw}},
		{name: "max-id", in: raw(0xffffffff, ping), want: Message{ID: 0xffffffff, Op: OpPing}},

		{name: "empty", in: nil, wantErr: ReasonShortHeader, wantCode: ErrFormat},
		{name: "truncated-header", in: []byte{1, 0, 0, 4, 0, 0, 0}, wantErr: ReasonShortHeader, wantCode: ErrFormat},
		{name: "major-0", in: rawHeader(0, 0, 4, 1, ping), wantErr: ReasonVersion, wantCode: ErrVersionMismatch},
		{name: "major-2", in: rawHeader(2, 0, 4, 1, ping), wantErr: ReasonVersion, wantCode: ErrVersionMismatch},
		{name: "body-shorter-than-header-says", in: rawHeader(1, 0, 5, 1, ping), wantErr: ReasonBodyLength, wantCode: ErrFormat},
		{name: "header-only-body-missing", in: rawHeader(1, 0, 1016, 1, nil), wantErr: ReasonBodyLength, wantCode: ErrFormat},
		{name: "trailing-bytes-after-body", in: rawHeader(1, 0, 4, 1, append(ping, 0)), wantErr: ReasonBodyLength, wantCode: ErrFormat},
		{name: "item-past-end", in: raw(1, ping, itemLen(TagPayload, 3, 'a', 'b')), wantErr: ReasonItemOverrun, wantOffset: 12, wantTag: TagPayload, wantCode: ErrFormat},
		{name: "unknown-item-past-end", in: raw(1, itemLen(0x50, 0xffff)), wantErr: ReasonItemOverrun, wantOffset: 8, wantTag: 0x50, wantCode: ErrFormat},
		{name: "repeated-opcode", in: raw(1, ping, ping), wantErr: ReasonDuplicateTag, wantOffset: 12, wantTag: TagOpcode, wantCode: ErrFormat},
		{name: "repeated-padding", in: raw(1, item(TagPadding), ping, item(TagPadding)), wantErr: ReasonDuplicateTag, wantOffset: 15, wantTag: TagPadding, wantCode: ErrFormat},
		{name: "repeated-empty-payload", in: raw(1, item(TagPayload), item(TagPayload)), wantErr: ReasonDuplicateTag, wantOffset: 11, wantTag: TagPayload, wantCode: ErrFormat},
		{name: "repeated-ski-first-ignored", in: raw(1, item(TagSKI, 1), item(TagSKI, testSKI[:]...)), wantErr: ReasonDuplicateTag, wantOffset: 12, wantTag: TagSKI, wantCode: ErrFormat},
		{name: "opcode-empty", in: raw(1, item(TagOpcode)), wantErr: ReasonItemLength, wantOffset: 8, wantTag: TagOpcode, wantCode: ErrFormat},
		{name: "opcode-two-bytes", in: raw(1, item(TagOpcode, 0xf1, 0)), wantErr: ReasonItemLength, wantOffset: 8, wantTag: TagOpcode, wantCode: ErrFormat},
		{name: "client-ip-5-bytes", in: raw(1, ping, item(TagClientIP, 1, 2, 3, 4, 5)), wantErr: ReasonItemLength, wantOffset: 12, wantTag: TagClientIP, wantCode: ErrFormat},
		{name: "client-ip-empty", in: raw(1, item(TagClientIP)), wantErr: ReasonItemLength, wantOffset: 8, wantTag: TagClientIP, wantCode: ErrFormat},
		{name: "server-ip-8-bytes", in: raw(1, item(TagServerIP, make([]byte, 8)...)), wantErr: ReasonItemLength, wantOffset: 8, wantTag: TagServerIP, wantCode: ErrFormat},
		{name: "region-two-bytes", in: raw(1, item(TagComplianceRegion, 1, 1)), wantErr: ReasonItemLength, wantOffset: 8, wantTag: TagComplianceRegion, wantCode: ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := m.Decode(tc.in)
			if tc.wantErr == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !equal(&m, &tc.want) {
					t.Fatalf("decoded %s, want %s", dump(&m), dump(&tc.want))
				}
				if n, ok := Frame(tc.in); !ok || n != len(tc.in) {
					t.Fatalf("Frame = %d, %v", n, ok)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Decode = %v, want *ParseError", err)
			}
			if pe.Reason != tc.wantErr || pe.Offset != tc.wantOffset || pe.Tag != tc.wantTag {
				t.Fatalf("got %v (reason %v offset %d tag %v), want reason %v offset %d tag %v",
					err, pe.Reason, pe.Offset, pe.Tag, tc.wantErr, tc.wantOffset, tc.wantTag)
			}
			if pe.Code() != tc.wantCode || !errors.Is(err, tc.wantCode) {
				t.Fatalf("Code = %v, want %v", pe.Code(), tc.wantCode)
			}
			t.Log(err)
		})
	}
}

func TestFrame(t *testing.T) {
	ping := pingExample(OpPing)
	for _, tc := range []struct {
		name   string
		buf    []byte
		wantN  int
		wantOK bool
	}{
		{"empty", nil, HeaderLen, false},
		{"partial-header", ping[:7], HeaderLen, false},
		{"header-only", ping[:8], 1024, false},
		{"partial-body", ping[:1023], 1024, false},
		{"whole", ping, 1024, true},
		{"whole-and-next", append(append([]byte{}, ping...), ping[:3]...), 1024, true},
		{"empty-body", []byte{1, 0, 0, 0, 0, 0, 0, 1}, 8, true},
		{"max-body", []byte{1, 0, 0xff, 0xff, 0, 0, 0, 1}, MaxMessageLen, false},
		{"bad-version-still-framed", []byte{9, 9, 0, 0, 0, 0, 0, 1}, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, ok := Frame(tc.buf); n != tc.wantN || ok != tc.wantOK {
				t.Fatalf("Frame = %d, %v; want %d, %v", n, ok, tc.wantN, tc.wantOK)
			}
		})
	}
}

// TestFrameStream frames a stream of back-to-back messages fed in uneven
// pieces, as a reader would see them.
func TestFrameStream(t *testing.T) {
	var stream []byte
	var want []Message
	for i := range 20 {
		m := Message{ID: uint32(i), Op: OpPing, Payload: bytes.Repeat([]byte{byte(i)}, i*97)}
		stream, _ = AppendMessage(stream, &m)
		want = append(want, m)
	}
	var buf []byte
	var got int
	var m Message
	for off, step := 0, 1; off < len(stream); off, step = off+step, step*3%1001+1 {
		buf = append(buf, stream[off:min(off+step, len(stream))]...)
		for {
			n, ok := Frame(buf)
			if !ok {
				break
			}
			if err := m.Decode(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if !equal(&m, &want[got]) {
				t.Fatalf("message %d: %s", got, dump(&m))
			}
			got++
			buf = buf[n:]
		}
	}
	if got != len(want) || len(buf) != 0 {
		t.Fatalf("framed %d of %d messages, %d bytes left", got, len(want), len(buf))
	}
}

// TestDecodeAliases checks the documented aliasing: slices point into the
// input and are capped so an append cannot overwrite the next item.
func TestDecodeAliases(t *testing.T) {
	in := pingExample(OpPing)
	var m Message
	if err := m.Decode(in); err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(m.Payload) != &in[15] || cap(m.Payload) != len("Hello!") {
		t.Fatalf("payload does not alias the input at its item, cap %d", cap(m.Payload))
	}
	_ = append(m.Payload, 'X')
	if in[21] != byte(TagPadding) {
		t.Fatal("append to Payload overwrote the padding item")
	}
}

// TestDecodeResets checks that a reused Message keeps nothing from the
// previous message.
func TestDecodeResets(t *testing.T) {
	var m Message
	if err := m.Decode(seeds()[4].data); err != nil {
		t.Fatal(err)
	}
	if err := m.Decode(raw(2)); err != nil {
		t.Fatal(err)
	}
	if want := (Message{ID: 2}); !equal(&m, &want) {
		t.Fatalf("decoded %s", dump(&m))
	}
}

func TestAllocs(t *testing.T) {
	full := seeds()[4].data
	ping := pingExample(OpPing)
	var m Message
	if err := m.Decode(full); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, MaxMessageLen)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Decode/ping", func() {
			if err := m.Decode(ping); err != nil {
				panic(err)
			}
		}},
		{"Decode/all-items", func() {
			if err := m.Decode(full); err != nil {
				panic(err)
			}
		}},
		{"AppendMessage/all-items", func() {
			if _, err := AppendMessage(buf[:0], &m); err != nil {
				panic(err)
			}
		}},
		{"AppendMessage/stack-message", func() {
			r := Message{ID: 1, Op: OpResponse, Payload: full[12:44]}
			if _, err := AppendMessage(buf[:0], &r); err != nil {
				panic(err)
			}
		}},
		{"AppendError", func() { _ = AppendError(buf[:0], 1, ErrKeyNotFound) }},
		{"Frame", func() { _, _ = Frame(full) }},
		{"CheckRequest", func() {
			if Op(0x99).CheckRequest() == nil {
				panic("nil")
			}
		}},
		{"Err/pong", func() {
			r := Message{Op: OpPong}
			if r.Err() != nil {
				panic("not nil")
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}
