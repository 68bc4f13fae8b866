/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"

/* A token bucket expressed as GCRA: a packet conforms when the bucket's
 * theoretical arrival time, advanced by the packet's cost, stays within
 * depth_ns of now. interval 0 disables that bucket. Byte costs are in
 * 1/1024 ns so that multi-gigabit rates keep their precision. */
struct limits {
	__u64 packet_interval_ns;
	__u64 packet_depth_ns;
	__u64 byte_interval_ns_q10;
	__u64 byte_depth_ns;
	__u64 syn_interval_ns;
	__u64 syn_depth_ns;
};

struct settings {
	enum config_flag flags;
	__u32 sample_every;   /* 1 in N drops per reason and CPU is sampled; 0 = off */
	__u32 attack_entries; /* entries in attack_addrs; 0 skips that lookup */
	__u32 _pad;
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

/* expires_ns is CLOCK_MONOTONIC (coarse); 0 never expires. */
struct prefix_entry {
	__u64 expires_ns;
	__u64 added_ns;
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

struct attack_entry {
	__u64 since_ns;
};

/* Per-source state; IPv6 sources are keyed by their /64. Updated without
 * locks from every CPU: under contention a source may briefly exceed its
 * limit by a few packets, never by a factor. */
struct rate_state {
	__u64 packet_tat_ns;
	__u64 byte_tat_ns;
	__u64 syn_tat_ns;
	__u64 last_seen_ns;
	__u64 packets;
	__u64 bytes;
	__u64 dropped;
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
	struct sample sample;
};
const struct btf_anchor *btf_anchor __attribute__((unused));
