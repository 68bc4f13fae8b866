// Package demo runs `rampart demo`: it builds a client, an attacker, an
// edge and an origin in network namespaces on one bridge (internal/testnet),
// attaches the XDP filter to the edge's interface, and runs the edge's HTTP
// pipeline in front of the origin. While the client makes real HTTP
// requests through the pipeline to the origin, the attacker sends bounded
// floods (SYN flood, UDP reflection, spoofed sources from a blocked prefix,
// malformed frames) with internal/flood. It then reports how many requests
// the origin served, their latency and statuses, and the filter's counters
// by reason.
//
// The origin is a net/http server in the origin's namespace. The pipeline
// is `rampart run` (Options.Rampart, by default this executable) started in
// the edge's namespace with nsenter, from a profile the demo derives from
// the embedded default one (a pipeline on the edge's address, one zone whose
// origin is the origin host); it runs without --iface, because the demo
// attaches the filter itself, with private maps, to read its counters. The
// filter's config is the profile's plus a TCP-only served address (the
// reflection target) and the origin on the allow list, so that the origin's
// replies to the pipeline's connections get in.
//
// Run owns everything it creates (namespaces, filter with private maps, the
// origin, the pipeline process, packet sockets, a temporary folder for the
// pipeline's profile and log) and removes it before returning, on error and
// on cancellation too; the pipeline gets SIGTERM, then SIGKILL after a
// deadline, by its PID. When the pipeline misbehaves (exits early, never
// serves, does not stop cleanly) its folder is kept and the error quotes the
// end of its log. One Run at a time per process is the expected use;
// concurrent runs would not collide (namespace names are unique) but would
// share the machine's two cores.
//
// The demo never sends traffic outside the namespaces it created: every
// address is in 198.18.0.0/15, and no host has a route out of its lan.
package demo
