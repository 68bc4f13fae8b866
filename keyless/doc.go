// Package keyless encodes and decodes the Keyless SSL wire protocol that
// Rampart's key server and edge client speak, byte for byte compatible with
// the established key server (specification: KEYLESS.md).
// For now it holds the codec only; the server and client build on it.
//
// # Wire format
//
// A message is an 8-byte header and a body of at most 65535 bytes; every
// integer is big-endian:
//
//	major version (1) = 1 | minor version (1) = 0 | body length (2) | message ID (4)
//
// The body is a run of TLV items, tag (1) | length (2) | data, in any order.
// The opcode item (Op) says what a request asks or how a response went
// (OpResponse, OpPong, OpError with a one-byte ErrCode); the payload item
// carries the input or result; the SKI item (SKIOf) selects the key; other
// items carry the SNI, IPs, tracing and metadata. Unknown tags are skipped;
// empty values are never sent. Every message is padded with a padding item
// to at least PaddedLen (1024) bytes so that message sizes do not tell
// operations apart. Requests carry an ID of the requester's choosing; the
// response echoes it, and responses may come back in any order.
//
// # API
//
// Frame tells a stream reader how long the next message is, so it can read
// or peek exactly that much. Message.Decode parses one message in place:
// its byte slices alias the input, and decoding into a reused Message
// allocates nothing. AppendMessage and AppendError append encoded messages
// to a caller's buffer, allocating nothing when it has room. Op.CheckRequest
// and Message.Err give the protocol's verdict on a request's opcode and a
// response's outcome.
//
// Errors: a *ParseError is a malformed message and always means "close the
// connection", as the established peers do; its Code is ErrFormat (or
// ErrVersionMismatch) for logs, never sent. An ErrCode is itself an error,
// so handlers return codes directly; a *RemoteError is a code received from
// the peer.
//
// # State and goroutines
//
// The package owns no state. Its functions may be called from any goroutine
// and never block; a Message is plain data, not safe for concurrent
// mutation, and after Decode it is valid only while the input buffer is.
//
// It must never allocate while decoding, copy payloads, or put key
// material, payloads or request contexts in error strings.
package keyless
