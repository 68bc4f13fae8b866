// Package flood sends bounded floods of raw Ethernet frames from inside a
// network namespace, for the demo, the netns tests and live benchmarks.
//
// A Sender owns one AF_PACKET socket bound to one interface. Open must run
// on a thread inside the target namespace (testnet's Host.Do); the socket
// stays bound to that namespace's interface afterwards, so Send may then be
// called from any goroutine. Send calls are serialised by the Sender; in
// steady state Send allocates nothing: frames go out in sendmmsg(2) batches
// through headers built once per frame set.
//
// A Sender never chooses where traffic goes: callers build the frames
// (internal/packets) and must only address namespaces they created.
package flood
