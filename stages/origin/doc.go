// Package origin is the last stage of the pipeline: it forwards a request
// to one of its zone's origins over a pooled keep-alive connection dialled
// onto the client's own event loop, and streams the response back.
//
// Everything here runs on the exchange's loop. Per loop it keeps one pool
// per origin (idle connections, LIFO so the warmest is reused, with an idle
// timeout), a free list of request tasks, and scratch buffers, so a request
// over a warm connection allocates nothing.
//
// Policy:
//   - Origins are tried in the zone's order from a rotating start, skipping
//     those the health checker marked down; a refused or timed-out connect
//     marks the origin (passive health) and moves to the next one.
//   - A request is retried on a fresh connection only when it is idempotent,
//     carries no body, and the origin sent nothing back: a pooled connection
//     the origin closed while idle is the common case.
//   - 502 when no origin could be reached or the origin broke the protocol
//     before the response began; 504 when it did not answer in time. Once a
//     response has begun, a failure can only close the client connection.
//   - Bodies stream both ways with the framing the codec validated: a
//     Content-Length body is counted, a chunked one is checked chunk by chunk
//     and forwarded verbatim. When one side cannot keep up, reading from the
//     other stops until it drains.
//   - Expect: 100-continue is answered by the edge when it forwards the
//     request; interim 1xx responses of the origin are not forwarded.
package origin
