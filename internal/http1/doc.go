// Package http1 parses HTTP/1.1 messages in place, strictly and without
// allocating, and writes the heads the edge sends on: client requests and
// chunked bodies coming in, origin responses coming back, requests toward
// origins and responses toward clients going out.
//
// Its one job is framing: deciding, byte for byte, where a head and its
// body start and end, and rejecting every message whose framing could be
// read two ways (RFC 9112 section 11.2, request smuggling; section 11.1,
// response splitting); and, going out, writing framing that can be read
// only one way (hop-by-hop headers removed, exactly one framing header,
// X-Forwarded-For, Forwarded and Via added).
//
// Client side: Parser.Parse reads a request head (one empty line before
// it is skipped, RFC 9112 section 2.2); ChunkedDecoder reads a chunked
// body, either copying its data out (Decode) or only checking its framing
// so that a proxy can forward the bytes verbatim (Scan), with the trailer
// section located by Trailers. Anything ambiguous is an *Error carrying
// the status to answer (400, 414, 417, 431, 501 or 505); the caller answers
// it with AppendErrorResponse and closes the connection.
//
// Origin side: Parser.ParseResponse reads an origin's response head under
// the same rules, interim 1xx responses and 101 included; Response's
// BodyFraming applies RFC 9112 section 6.3 to say how its body ends given
// the request method; AppendForwardedResponse writes the head toward the
// client. A broken origin response is an *Error with Status 502. A body
// error found after the head went out (by Scan or Decode, whose errors
// carry request statuses) cannot be answered any more: the caller aborts
// both connections.
//
// Going out: AppendForwardedRequest, AppendForwardedResponse,
// AppendResponseHead, AppendChunk, AppendLastChunk and AppendErrorResponse
// append to a caller's buffer.
//
// State: a Parser owns only its Limits. A Request or Response owns a header
// slice allocated once, with capacity Limits.MaxHeaders, and reused for
// every message; its byte slices point into the buffer given to Parse or
// ParseResponse and are valid only as long as that buffer is (for gnet,
// inside the callback). A ChunkedDecoder owns a few integers of decoding
// state per body.
//
// Goroutines: a Parser, its Requests, Responses and ChunkedDecoders belong
// to one event loop; they are not safe for concurrent use and never block.
// A Parser may be shared read-only between loops, since neither parse
// method mutates it.
//
// It must never allocate per message, copy or retain the input buffer after
// a call returns, or forward a message it had to guess about.
package http1
