package server_test

// Helpers that speak the wire format by hand from KEYLESS.md, without the
// keyless codec, so that the server is checked against the spec and not
// against the code it is built on.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Tags and opcodes, copied from KEYLESS.md §2 and §3.
const (
	tagDigest   = 0x01
	tagSNI      = 0x02
	tagClientIP = 0x03
	tagSKI      = 0x04
	tagServerIP = 0x05
	tagOpcode   = 0x11
	tagPayload  = 0x12
	tagPadding  = 0x20

	opResponse = 0xF0
	opPing     = 0xF1
	opPong     = 0xF2
	opError    = 0xFF
)

// item is one TLV item: tag, 2-byte length, data.
func item(tag byte, data []byte) []byte {
	b := []byte{tag, byte(len(data) >> 8), byte(len(data))}
	return append(b, data...)
}

// frame is a message with the items as given, no padding added.
func frame(id uint32, items ...[]byte) []byte {
	body := bytes.Join(items, nil)
	b := []byte{0x01, 0x00, byte(len(body) >> 8), byte(len(body))}
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, body...)
}

// padding applies KEYLESS.md §5's padding rule to a body of b bytes: the
// padding item to append, or nil.
func padding(b int) []byte {
	if 8+b >= 1024 {
		return nil
	}
	n := 1024 - (8 + b + 3)
	if n < 0 {
		n = 0
	}
	return item(tagPadding, make([]byte, n))
}

// request builds a padded request in the established writer's order:
// opcode, payload, SKI, padding.
func request(id uint32, op byte, ski []byte, payload []byte) []byte {
	items := [][]byte{item(tagOpcode, []byte{op})}
	if len(payload) > 0 {
		items = append(items, item(tagPayload, payload))
	}
	if len(ski) > 0 {
		items = append(items, item(tagSKI, ski))
	}
	b := 0
	for _, it := range items {
		b += len(it)
	}
	if p := padding(b); p != nil {
		items = append(items, p)
	}
	return frame(id, items...)
}

// reply is a response parsed by hand.
type reply struct {
	id      uint32
	op      byte
	payload []byte
	raw     []byte
}

// readReply reads one message and checks it against the spec: version
// 1.0, a body length that matches, only opcode, payload and padding items
// (a response echoes nothing else), each once, padding all zero and of
// the length the padding rule gives.
func readReply(t testing.TB, c net.Conn) reply {
	t.Helper()
	r, err := tryReadReply(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	checkReply(t, r)
	return r
}

func tryReadReply(c net.Conn) (reply, error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return reply{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	raw := make([]byte, 8+n)
	copy(raw, hdr)
	if _, err := io.ReadFull(c, raw[8:]); err != nil {
		return reply{}, err
	}
	r := reply{id: binary.BigEndian.Uint32(hdr[4:8]), raw: raw}
	for off := 8; len(raw)-off >= 3; {
		tag := raw[off]
		l := int(binary.BigEndian.Uint16(raw[off+1 : off+3]))
		if off+3+l > len(raw) {
			return r, errors.New("item past the end")
		}
		data := raw[off+3 : off+3+l]
		switch tag {
		case tagOpcode:
			if l != 1 {
				return r, errors.New("opcode item length")
			}
			r.op = data[0]
		case tagPayload:
			r.payload = data
		}
		off += 3 + l
	}
	return r, nil
}

func checkReply(t testing.TB, r reply) {
	t.Helper()
	raw := r.raw
	if raw[0] != 1 || raw[1] != 0 {
		t.Fatalf("reply version %d.%d, want 1.0", raw[0], raw[1])
	}
	seen := map[byte]bool{}
	before := 0 // body bytes before padding
	padLen := -1
	off := 8
	for ; len(raw)-off >= 3; off += 3 + int(binary.BigEndian.Uint16(raw[off+1:off+3])) {
		tag := raw[off]
		l := int(binary.BigEndian.Uint16(raw[off+1 : off+3]))
		if seen[tag] {
			t.Fatalf("reply repeats tag %#x", tag)
		}
		seen[tag] = true
		switch tag {
		case tagOpcode, tagPayload:
			if padLen >= 0 {
				t.Fatalf("item %#x after the padding", tag)
			}
			before += 3 + l
		case tagPadding:
			padLen = l
			if !bytes.Equal(raw[off+3:off+3+l], make([]byte, l)) {
				t.Fatalf("padding not zero")
			}
		default:
			t.Fatalf("reply carries tag %#x; a response holds only opcode, payload and padding", tag)
		}
	}
	if off != len(raw) {
		t.Fatalf("reply has %d stray bytes", len(raw)-off)
	}
	want := -1
	if 8+before < 1024 {
		want = max(0, 1024-(8+before+3))
	}
	if padLen != want {
		t.Fatalf("reply of %d bytes before padding has padding %d, want %d", 8+before, padLen, want)
	}
	if !seen[tagOpcode] {
		t.Fatalf("reply without opcode")
	}
}

// errorReply is the exact error response of KEYLESS.md for id and code:
// opcode 0xFF, a one-byte payload, padded to 1024 bytes.
func errorReply(id uint32, code byte) []byte {
	items := [][]byte{item(tagOpcode, []byte{opError}), item(tagPayload, []byte{code})}
	return frame(id, append(items, padding(8))...)
}

// exchange sends req and reads one reply.
func exchange(t testing.TB, c net.Conn, req []byte) reply {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	return readReply(t, c)
}

// expectClosed checks that the server closes c without sending a reply.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("server sent data (%#x) where it should have closed", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection")
	}
	if err == nil {
		t.Fatalf("read: no data and no error")
	}
}
