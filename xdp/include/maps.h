/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"

/* A token bucket expressed as GCRA in ticks: a packet conforms when the
 * bucket's theoretical arrival time, advanced by the packet's cost, stays
 * within depth of now. interval 0 disables that bucket. Byte costs are in
 * 2^-20 tick so that multi-gigabit rates keep their precision. */
struct limits {
	__u64 packet_interval_t;
	__u64 packet_depth_t;
	__u64 byte_interval_t_q20;
	__u64 byte_depth_t;
	__u64 syn_interval_t;
	__u64 syn_depth_t;
};

struct settings {
	enum config_flag flags;
	__u32 sample_every;   /* 1 in N drops per reason and CPU is sampled; 0 = off */
	__u32 attack_entries; /* entries in attack_addrs; 0 skips that lookup */
	__u32 lists_gen;      /* bumped on every list change: cached verdicts expire */
	__u32 rate_batch;     /* packets a source may pass before its bucket is charged */
	__u32 source_bits;    /* log2 of source_cache slots */
	__u32 service_bits;   /* log2 of one half of service_table */
	__u32 service_half;   /* active half of service_table: 0 or 1 */
	__u32 service_spill;  /* an address did not fit the table: check the hash on a miss */
	__u32 hz;             /* kernel HZ, for tools converting jiffies */
	__u64 flush_interval_t; /* a source's pending counts reach its bucket at least this often */
	__u64 clock_jiffies;  /* calibration: jiffies at ... */
	__u64 clock_mono_ns;  /* ... this CLOCK_MONOTONIC time */
	struct limits normal;
	struct limits attack;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Times in jiffies; expires 0 never expires. */
struct prefix_entry {
	__u64 expires_j;
	__u64 added_j;
	__u32 flags; /* PREFIX_FROM_PROFILE: owned by the profile, not by rampartctl */
	__u32 _pad;
};

/* Addresses in hash keys are 16 bytes, IPv4 as ::ffff:a.b.c.d. */
struct service_key {
	__u8 addr[16];
	__u16 port; /* network order; 0 for protocols without ports */
	__u8 proto;
	__u8 _pad;
};

struct service_value {
	__u32 flags; /* reserved */
};

struct addr_key {
	__u8 addr[16];
};

struct served_addr {
	enum served_flag flags;
};

/* One served address with its ports inline, so that the common case needs
 * no hash lookup: an open-addressing table probed SERVICE_PROBES times from
 * the address's hash, in two halves swapped atomically on reconfiguration.
 * An address with more ports than fit is flagged OVERFLOW and its ports are
 * checked in the services hash. */
struct service_slot {
	__u8 addr[16];
	__u16 tcp[SLOT_TCP_PORTS]; /* network order, 0 = unused */
	__u16 udp[SLOT_UDP_PORTS];
	enum served_flag flags;
};

struct attack_entry {
	__u64 since_ns;
};

/* Per-source state; IPv6 sources are keyed by their /64. Charged in
 * batches from the per-CPU source cache, without locks: a source spread
 * over C CPUs may pass up to C batches over its limit before every CPU
 * has seen its bucket run dry. */
struct rate_state {
	__u64 packet_tat_t;
	__u64 byte_tat_t;
	__u64 syn_tat_t;
	__u64 last_seen_j;
	__u64 packets;
	__u64 bytes;
	__u64 dropped;
};

/* A CPU's memory of one recent source (direct-mapped by address hash): its
 * list verdict, valid while lists_gen matches, and its rate accounting not
 * yet charged to rate_limits. Sources well under their limits touch no
 * hash map at all; a source near its limit is judged packet by packet. */
struct source_slot {
	struct addr_key key;
	__u64 list_expires_j;   /* cached verdict's entry expiry; 0 = never */
	__u64 drop_until_t;     /* every packet dropped until then (drop_reason) */
	__u64 syn_drop_until_t; /* SYNs dropped until then */
	__u64 flush_at_t;
	__u32 lists_gen;
	__u32 pending_bytes;
	__u32 pending_dropped;
	__u16 pending_packets;
	__u16 pending_syns;
	__u16 batch;            /* judge (and charge) when pending_packets reaches this */
	__u8 list_verdict;
	__u8 drop_reason;
	__u8 used;
	__u8 _pad[3];
};

struct sample {
	__u64 timestamp_ns;
	enum reason reason;
	__u32 ifindex;
	__u32 packet_len;
	__u32 captured_len;
	__u8 data[SAMPLE_BYTES];
};

/* Sizes here are defaults; the loader sets the real ones from the profile. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct settings);
	__uint(max_entries, 1);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, REASON_MAX);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, enum hint_flag);
	__uint(max_entries, 2 * HINT_SLOTS_PER_FAMILY);
} source_hints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4_key);
	__type(value, struct prefix_entry);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v6_key);
	__type(value, struct prefix_entry);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allow_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4_key);
	__type(value, struct prefix_entry);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} block_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v6_key);
	__type(value, struct prefix_entry);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} block_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct service_slot);
	__uint(max_entries, 2 * 4096);
} service_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct source_slot);
	__uint(max_entries, 65536);
} source_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct service_key);
	__type(value, struct service_value);
	__uint(max_entries, 4096);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct addr_key);
	__type(value, struct served_addr);
	__uint(max_entries, 4096);
} served_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct addr_key);
	__type(value, struct attack_entry);
	__uint(max_entries, 1024);
} attack_addrs SEC(".maps");

/* Bit p set: UDP source port p is a known amplification vector. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 65536 / 64);
} reflection_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct addr_key);
	__type(value, struct rate_state);
	__uint(max_entries, 65536);
} rate_limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

/* Types that only Go reads (ring buffer records, enums) are not referenced
 * by any map, so clang would leave them out of BTF and bpf2go could not
 * generate them. This never-used pointer keeps them in. */
struct btf_anchor {
	enum reason reason;
	enum config_flag config_flag;
	enum hint_flag hint_flag;
	enum served_flag served_flag;
	enum list_verdict list_verdict;
	enum prefix_flag prefix_flag;
	struct sample sample;
};
const struct btf_anchor *btf_anchor __attribute__((unused));
