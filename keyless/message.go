package keyless

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Message is one keyless request or response. Apart from ID and Op (the
// opcode item is always sent), a field's zero value means "absent": the
// encoder leaves such items out and the decoder leaves the field zero when
// the item is missing or empty, so a message survives a round trip
// unchanged.
//
// After Decode, the byte-slice fields point into the decoded buffer (see
// Decode). To build a message, fill in the fields; slices are read, never
// kept, by AppendMessage.
type Message struct {
	ID uint32 // chosen by the requester, echoed in the response
	Op Op     // 0 when the opcode item is missing

	Payload []byte // TagPayload
	Extra   []byte // TagExtra

	SKI    SKI    // TagSKI; the key selector
	Digest Digest // TagCertificateDigest; legacy, 32 bytes

	// IPv4 addresses, IPv4-mapped ones included, travel as 4 bytes, so the
	// decoder unmaps: ::ffff:192.0.2.1 comes back as 192.0.2.1. Zones are
	// not sent.
	ClientIP netip.Addr // TagClientIP
	ServerIP netip.Addr // TagServerIP

	SNI            []byte // TagSNI, UTF-8
	CertID         []byte // TagCertID
	CustomFuncName []byte // TagCustomFuncName, for OpCustom
	JaegerSpan     []byte // TagJaegerSpan
	RequestContext []byte // TagRequestContext, a JSON object

	ComplianceRegion Region // TagComplianceRegion
}

// Frame says how long the message at the start of buf is: n is the total
// length (header and body) once the header is in buf, or HeaderLen before
// that; ok reports whether all n bytes are present.
//
// It lets an event loop peek and a goroutine reader read exactly what it
// needs, with no copy: read until len(buf) >= n, then Decode(buf[:n]).
// It looks at the length field only; Decode checks everything else.
func Frame(buf []byte) (n int, ok bool) {
	if len(buf) < HeaderLen {
		return HeaderLen, false
	}
	n = HeaderLen + int(binary.BigEndian.Uint16(buf[2:4]))
	return n, len(buf) >= n
}

// Decode parses msg, which must be exactly one message (see Frame), into m,
// overwriting every field.
//
// Aliasing: Payload, Extra, SNI, CertID, CustomFuncName, JaegerSpan and
// RequestContext are slices of msg, not copies; that is what keeps Decode
// free of allocations. They are valid only as long as msg is not
// overwritten, so a reader that reuses its buffer must finish with m (or
// copy what it keeps) before the next read. Each slice is capped at its own
// end, so appending to one cannot clobber the bytes after it.
//
// Parsing follows the established receiver: items in any order, unknown
// tags skipped, 1 or 2 stray bytes at the end ignored, an SKI or digest of
// the wrong length ignored, padding content ignored and padding not
// required. It refuses, with a *ParseError, a major version other than 1,
// a body length that disagrees with len(msg), an item running past the
// end, a known tag seen twice, and an opcode, IP or compliance-region item
// of a forbidden length. The opcode itself is not checked here, because the
// server must answer a bad one by ID: see Op.CheckRequest and Message.Err.
//
// After an error m holds no meaningful value.
func (m *Message) Decode(msg []byte) error {
	*m = Message{}
	if len(msg) < HeaderLen {
		return &ParseError{Reason: ReasonShortHeader, Value: len(msg)}
	}
	// A stricter choice the spec allows: the established peers ignore the
	// version, but every one of them sends 1, and a different major
	// version could only mean a different, incompatible format.
	if msg[0] != VersionMajor {
		return &ParseError{Reason: ReasonVersion, Value: int(msg[0])}
	}
	if body := int(binary.BigEndian.Uint16(msg[2:4])); len(msg)-HeaderLen != body {
		return &ParseError{Reason: ReasonBodyLength, Value: len(msg) - HeaderLen, Limit: body}
	}
	m.ID = binary.BigEndian.Uint32(msg[4:8])

	var seen uint64
	off := HeaderLen
	for len(msg)-off >= ItemHeaderLen {
		tag := Tag(msg[off])
		n := int(binary.BigEndian.Uint16(msg[off+1 : off+3]))
		start := off + ItemHeaderLen
		end := start + n
		if end > len(msg) {
			return &ParseError{Reason: ReasonItemOverrun, Offset: off, Tag: tag, Value: n, Limit: len(msg) - start}
		}
		if tag.Known() {
			// A known tag counts as seen even when its content is ignored
			// (an SKI of the wrong length), so no message can carry two
			// candidate values for one field.
			if seen&(1<<tag) != 0 {
				return &ParseError{Reason: ReasonDuplicateTag, Offset: off, Tag: tag}
			}
			seen |= 1 << tag
			if !m.set(tag, msg[start:end:end]) {
				return &ParseError{Reason: ReasonItemLength, Offset: off, Tag: tag, Value: n}
			}
		}
		off = end
	}
	return nil
}

// set stores one known item; false means its length is forbidden.
func (m *Message) set(tag Tag, data []byte) bool {
	switch tag {
	case TagOpcode:
		if len(data) != 1 {
			return false
		}
		m.Op = Op(data[0])
	case TagPayload:
		m.Payload = nonEmpty(data)
	case TagExtra:
		m.Extra = nonEmpty(data)
	case TagSKI:
		if len(data) == len(m.SKI) {
			m.SKI = SKI(data)
		}
	case TagCertificateDigest:
		if len(data) == len(m.Digest) {
			m.Digest = Digest(data)
		}
	case TagClientIP:
		ip, ok := parseIP(data)
		m.ClientIP = ip
		return ok
	case TagServerIP:
		ip, ok := parseIP(data)
		m.ServerIP = ip
		return ok
	case TagSNI:
		m.SNI = nonEmpty(data)
	case TagCertID:
		m.CertID = nonEmpty(data)
	case TagCustomFuncName:
		m.CustomFuncName = nonEmpty(data)
	case TagJaegerSpan:
		m.JaegerSpan = nonEmpty(data)
	case TagRequestContext:
		m.RequestContext = nonEmpty(data)
	case TagComplianceRegion:
		if len(data) != 1 {
			return false
		}
		m.ComplianceRegion = Region(data[0])
	case TagPadding:
	}
	return true
}

// nonEmpty maps an empty item to nil: on this wire an empty value and a
// missing item mean the same, and one representation keeps round trips
// exact.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func parseIP(b []byte) (netip.Addr, bool) {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)), true
	case 16:
		return netip.AddrFrom16([16]byte(b)).Unmap(), true
	}
	return netip.Addr{}, false
}

// ipLen is the data length ip is sent with; 0 means it is left out.
func ipLen(ip netip.Addr) int {
	switch {
	case !ip.IsValid():
		return 0
	case ip.Is4() || ip.Is4In6():
		return 4
	}
	return 16
}

// bodyLen is the body size before padding.
func (m *Message) bodyLen() int {
	n := ItemHeaderLen + 1 // the opcode item is always sent
	for _, b := range [...][]byte{m.Payload, m.Extra, m.SNI, m.CertID,
		m.CustomFuncName, m.JaegerSpan, m.RequestContext} {
		if len(b) > 0 {
			n += ItemHeaderLen + len(b)
		}
	}
	if !m.SKI.IsZero() {
		n += ItemHeaderLen + len(m.SKI)
	}
	if !m.Digest.IsZero() {
		n += ItemHeaderLen + len(m.Digest)
	}
	if l := ipLen(m.ClientIP); l > 0 {
		n += ItemHeaderLen + l
	}
	if l := ipLen(m.ServerIP); l > 0 {
		n += ItemHeaderLen + l
	}
	if m.ComplianceRegion != RegionNone {
		n += ItemHeaderLen + 1
	}
	return n
}

// padLen is the data length of the padding item for a body of b bytes, or
// -1 for no padding item (KEYLESS.md §5, "Padding rule"). When even an
// empty padding item overshoots 1024 bytes (b is 1014 or 1015) the spec
// still sends one, so those messages are 1025 and 1026 bytes long.
func padLen(b int) int {
	if HeaderLen+b >= PaddedLen {
		return -1
	}
	return max(0, PaddedLen-(HeaderLen+b+ItemHeaderLen))
}

// EncodedLen is the number of bytes AppendMessage writes for m, padding
// included. It may exceed MaxMessageLen, in which case AppendMessage fails.
func (m *Message) EncodedLen() int {
	b := m.bodyLen()
	if p := padLen(b); p >= 0 {
		b += ItemHeaderLen + p
	}
	return HeaderLen + b
}

// AppendMessage appends m, encoded and padded, to dst. It allocates only
// when dst lacks capacity; EncodedLen says how much is needed. Version 1.0
// is always sent. Items go in the established writer's order: opcode,
// payload, extra, SKI, digest, client IP, server IP, SNI, cert ID, custom
// function name, Jaeger span, request context, compliance region, padding.
//
// If the body would exceed MaxBodyLen it returns dst unchanged and an error
// wrapping ErrTooLarge.
func AppendMessage(dst []byte, m *Message) ([]byte, error) {
	body := m.bodyLen()
	if body > MaxBodyLen {
		return dst, fmt.Errorf("%w: body of %d bytes, at most %d fit", ErrTooLarge, body, MaxBodyLen)
	}
	pad := padLen(body)
	if pad >= 0 {
		body += ItemHeaderLen + pad
	}
	dst = slices.Grow(dst, HeaderLen+body)
	dst = appendHeader(dst, m.ID, body)
	dst = append(dst, byte(TagOpcode), 0, 1, byte(m.Op))
	dst = appendItem(dst, TagPayload, m.Payload)
	dst = appendItem(dst, TagExtra, m.Extra)
	if !m.SKI.IsZero() {
		dst = appendItem(dst, TagSKI, m.SKI[:])
	}
	if !m.Digest.IsZero() {
		dst = appendItem(dst, TagCertificateDigest, m.Digest[:])
	}
	dst = appendIP(dst, TagClientIP, m.ClientIP)
	dst = appendIP(dst, TagServerIP, m.ServerIP)
	dst = appendItem(dst, TagSNI, m.SNI)
	dst = appendItem(dst, TagCertID, m.CertID)
	dst = appendItem(dst, TagCustomFuncName, m.CustomFuncName)
	dst = appendItem(dst, TagJaegerSpan, m.JaegerSpan)
	dst = appendItem(dst, TagRequestContext, m.RequestContext)
	if m.ComplianceRegion != RegionNone {
		dst = append(dst, byte(TagComplianceRegion), 0, 1, byte(m.ComplianceRegion))
	}
	if pad >= 0 {
		dst = append(dst, byte(TagPadding), byte(pad>>8), byte(pad))
		dst = appendZeros(dst, pad)
	}
	return dst, nil
}

// AppendError appends the OpError response for request id carrying code.
// It cannot fail, which suits the paths that report failures.
func AppendError(dst []byte, id uint32, code ErrCode) []byte {
	const body = PaddedLen - HeaderLen
	const pad = body - (ItemHeaderLen + 1) - (ItemHeaderLen + 1) - ItemHeaderLen
	dst = slices.Grow(dst, HeaderLen+body)
	dst = appendHeader(dst, id, body)
	dst = append(dst,
		byte(TagOpcode), 0, 1, byte(OpError),
		byte(TagPayload), 0, 1, byte(code),
		byte(TagPadding), byte(pad>>8), byte(pad&0xFF))
	return appendZeros(dst, pad)
}

// appendZeros extends dst, already grown to fit, by n zero bytes. It
// avoids append(dst, make([]byte, n)...), which the compiler turns into a
// clear normally but into a real allocation under -race, where the
// zero-allocation tests also run.
func appendZeros(dst []byte, n int) []byte {
	l := len(dst)
	dst = dst[:l+n]
	clear(dst[l:])
	return dst
}

// Err reports what a decoded response says about its request: nil for
// OpResponse and OpPong, a *RemoteError for an OpError with its one-byte
// code, and a *ParseError (close the connection) for an error payload that
// is not one byte or an opcode that is not a response at all.
func (m *Message) Err() error {
	switch m.Op {
	case OpResponse, OpPong:
		return nil
	case OpError:
		if len(m.Payload) != 1 {
			return &ParseError{Reason: ReasonErrorPayload, Tag: TagPayload, Value: len(m.Payload)}
		}
		return &RemoteError{Code: ErrCode(m.Payload[0])}
	}
	return &ParseError{Reason: ReasonResponseOp, Tag: TagOpcode, Value: int(m.Op)}
}

func appendHeader(dst []byte, id uint32, body int) []byte {
	dst = append(dst, VersionMajor, VersionMinor, byte(body>>8), byte(body))
	return binary.BigEndian.AppendUint32(dst, id)
}

func appendItem(dst []byte, tag Tag, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = append(dst, byte(tag), byte(len(data)>>8), byte(len(data)))
	return append(dst, data...)
}

func appendIP(dst []byte, tag Tag, ip netip.Addr) []byte {
	switch ipLen(ip) {
	case 4:
		a := ip.Unmap().As4()
		return append(append(dst, byte(tag), 0, 4), a[:]...)
	case 16:
		a := ip.As16()
		return append(append(dst, byte(tag), 0, 16), a[:]...)
	}
	return dst
}
