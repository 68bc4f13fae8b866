// Package flowbench is the flow table benchmark workload, written once for
// `rampart bench flowtable` (package bench) and the Go benchmarks of
// package flowtable: reproducible 5-tuple keys of IPv4 and IPv6 clients,
// operation streams for the mixed and read-only workloads, the 64-byte
// value, and the three stores under test (flowtable.Table, a sync.Map and
// a map behind a sync.RWMutex) behind one Store interface.
//
// State: a Sim owns its list of which keys the stores hold and is used
// from one goroutine. A Store owns its entries; Run may be called from
// several goroutines at once, each with its own stream of one Streams call
// (the streams touch disjoint keys), and Len, Evictions and Close only
// between runs. The key slice handed to NewSim is only read, so several
// Sims may share it.
//
// The workload must never change for the same seed: the keys, the streams
// and what the stores do with them are what the published figures were
// measured on. It is benchmark code only; the daemon never imports it.
package flowbench
