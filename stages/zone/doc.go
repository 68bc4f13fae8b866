// Package zone maps request host names to customers' sites (zones) and
// each zone to its origin servers, and keeps the origins' health.
//
// Config is the profile's zones and unknown_host keys: plain data, checked
// by Validate without touching the machine. NewTable builds an immutable
// Table from it; on reload the caller builds a new Table beside the old one
// and swaps a pointer (atomic.Pointer[Table]). Table, Zone and the
// addresses of Origin are read-only after NewTable, so any goroutine may
// call Lookup, Next and Pick; Lookup allocates nothing and never blocks, so
// event loops call it per request.
//
// The only mutable state is each Origin's health: an atomic flag and
// counters that event loops update with MarkFailure and MarkSuccess
// (passive health: connect failures seen by the proxy) and that a Checker
// updates from its own goroutines (active HTTP health checks, and
// readmission of passively failed origins of zones without a health
// path). Both are lock-free.
//
// This package never resolves names (origins are literal addresses), never
// answers a request for an unknown host with some zone's origin (Lookup
// returns nil and the caller sends the unknown_host response), and never
// runs health checks or logs on an event loop.
package zone
