// Package demo runs `rampart demo`: it builds a client, an attacker and an
// edge in network namespaces on one bridge (internal/testnet), attaches the
// XDP filter to the edge's interface, and while the client makes real HTTP
// requests the attacker sends bounded floods (SYN flood, UDP reflection,
// spoofed sources from a blocked prefix, malformed frames) with
// internal/flood. It then reports the legitimate requests' outcome and
// latency and the filter's counters by reason.
//
// Run owns everything it creates (namespaces, filter with private maps, the
// HTTP server, packet sockets) and removes it before returning, on error and
// on cancellation too. One Run at a time per process is the expected use;
// concurrent runs would not collide (namespace names are unique) but would
// share the machine's two cores.
//
// The demo never sends traffic outside the namespaces it created: every
// address is in 198.18.0.0/15, and the edge has no route out of its lan.
package demo
