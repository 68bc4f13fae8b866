// Package xdp loads, configures and attaches Rampart's XDP DoS pre-filter
// (filter.c) and gives typed access to its maps.
//
// Per packet the filter, in this order:
//  1. parses Ethernet, up to two VLAN tags, IPv4 (options skipped, IHL and
//     total length checked), IPv6 (a bounded chain of extension headers),
//     TCP and UDP; malformed or truncated frames are dropped under their own
//     reason, non-IP frames pass;
//  2. looks the source up in the allowlist (pass, skipping every other
//     check) and the blocklist (drop until the entry expires); a source hint
//     array (one slot per IPv4 /16, per folded IPv6 /32) lets the common
//     case skip both LPM tries;
//  3. drops or passes fragments as the profile says;
//  4. drops TCP flag combinations no real stack sends;
//  5. drops UDP from amplification source ports toward served addresses
//     with no UDP service (reflection);
//  6. with service filtering on, drops anything not addressed to a served
//     (address, protocol, port); ICMP may pass;
//  7. charges the source's token buckets (packets, bytes, SYNs; GCRA in an
//     LRU hash keyed by source, IPv6 by /64), using the stricter attack
//     limits when the destination is in attack mode;
//  8. counts the verdict under its reason (per-CPU) and sends 1 in N drops
//     to a ring buffer.
//
// Cheap checks come before expensive ones so that junk is dropped early.
//
// The common path uses only lookups the verifier inlines (array maps and
// bpf_jiffies64), because out-of-line calls are what a packet pays for on
// kernels with return-thunk mitigations: a per-CPU source cache remembers
// each recent source's list verdict and rate accounting, served addresses
// sit in an array with their ports inline, and the clock is jiffies. Hash,
// LRU and trie lookups happen for new sources, after list changes, and for
// sources near their limits. docs/xdp.md has the measurements.
//
// State: a Filter owns its program and (unless pinned) its maps; pinned
// maps under /sys/fs/bpf/rampart/<iface>/ outlive the process. Maps methods
// are safe from any goroutine and any process: writers serialise with an
// flock on the pin folder. Nothing here runs on an event loop.
package xdp
