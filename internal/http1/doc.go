// Package http1 parses HTTP/1.1 request heads and chunked bodies in place,
// strictly and without allocating, and writes the heads the edge sends on:
// requests toward origins and responses to clients.
//
// Its one job is framing: deciding, byte for byte, where a request head and
// its body start and end, and rejecting every message whose framing could be
// read two ways (RFC 9112 section 11.2, request smuggling); and, going out,
// writing framing that can be read only one way (hop-by-hop headers
// removed, exactly one framing header, X-Forwarded-For, Forwarded and Via
// added). Anything ambiguous is an *Error carrying the status to answer
// (400, 414, 417, 431, 501 or 505); the caller answers it with
// AppendErrorResponse and closes the connection.
//
// State: a Parser owns only its Limits. A Request owns a header slice
// allocated once, with capacity Limits.MaxHeaders, and reused for every
// request; its byte slices point into the buffer given to Parser.Parse and
// are valid only as long as that buffer is (for gnet, inside the callback).
// A ChunkedDecoder owns a few integers of decoding state per body.
//
// Goroutines: a Parser, its Requests and ChunkedDecoders belong to one event
// loop; they are not safe for concurrent use and never block. A Parser may be
// shared read-only between loops, since Parse does not mutate it.
//
// It must never allocate per request, copy or retain the input buffer after a
// call returns, or forward a message it had to guess about.
package http1
