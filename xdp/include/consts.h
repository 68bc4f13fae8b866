/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once

/* Every verdict the filter can reach has exactly one reason. Reasons below
 * REASON_FIRST_DROP pass the packet to the kernel; the rest drop it. The Go
 * side derives the verdict from the reason, so the two can never disagree. */
enum reason {
	REASON_PASS = 0,          /* passed every check */
	REASON_PASS_ALLOWLIST,    /* source on the allowlist */
	REASON_PASS_NON_IP,       /* ARP, LLDP, ...: not ours to judge */
	REASON_PASS_FRAGMENT,     /* fragment, profile says pass */

	REASON_FIRST_DROP,
	REASON_DROP_ETH_TRUNCATED = REASON_FIRST_DROP,
	REASON_DROP_VLAN_TRUNCATED,
	REASON_DROP_VLAN_TOO_DEEP,
	REASON_DROP_IPV4_TRUNCATED,
	REASON_DROP_IPV4_BAD_VERSION,
	REASON_DROP_IPV4_BAD_IHL,
	REASON_DROP_IPV4_BAD_LENGTH,
	REASON_DROP_IPV6_TRUNCATED,
	REASON_DROP_IPV6_BAD_VERSION,
	REASON_DROP_IPV6_BAD_LENGTH,
	REASON_DROP_IPV6_EXT_TRUNCATED,
	REASON_DROP_IPV6_EXT_CHAIN,
	REASON_DROP_TCP_TRUNCATED,
	REASON_DROP_TCP_BAD_OFFSET,
	REASON_DROP_UDP_TRUNCATED,
	REASON_DROP_UDP_BAD_LENGTH,
	REASON_DROP_BLOCKLIST,
	REASON_DROP_FRAGMENT,
	REASON_DROP_TCP_FLAGS,
	REASON_DROP_UDP_REFLECTION,
	REASON_DROP_NOT_SERVED,
	REASON_DROP_RATE_PACKETS,
	REASON_DROP_RATE_BYTES,
	REASON_DROP_RATE_SYN,
	REASON_DROP_IPV6_MAPPED,  /* IPv4-mapped address in an IPv6 header */
	REASON_DROP_INTERNAL,     /* the filter's own state is inconsistent */
	REASON_MAX,
};

/* config.flags */
enum config_flag {
	CONFIG_FILTER_SERVICES = 1 << 0, /* drop traffic to anything not served */
	CONFIG_DROP_FRAGMENTS  = 1 << 1, /* drop IP fragments instead of passing them */
	CONFIG_RATE_LIMIT      = 1 << 2, /* per-source token buckets */
	CONFIG_ALLOW_ICMP      = 1 << 3, /* ICMP/ICMPv6 pass the service filter */
};

/* Values of the source hint array. A clear slot proves that no allow or
 * block prefix touches the address, so the tries need not be walked. */
enum hint_flag {
	HINT_ALLOW = 1 << 0,
	HINT_BLOCK = 1 << 1,
};

/* served_addr.flags and service_slot.flags */
enum served_flag {
	SERVED_TCP      = 1 << 0,
	SERVED_UDP      = 1 << 1,
	SERVED_ATTACK   = 1 << 2, /* service_slot only: address in attack mode */
	SERVED_OVERFLOW = 1 << 3, /* service_slot only: more ports than fit inline */
	SERVED_USED     = 1 << 4, /* service_slot only: slot holds an address */
};

/* prefix_entry.flags */
enum prefix_flag {
	PREFIX_FROM_PROFILE = 1 << 0,
};

/* List verdicts cached in a source_slot. */
enum list_verdict {
	LISTED_NONE  = 0,
	LISTED_ALLOW = 1,
	LISTED_BLOCK = 2,
};

#define HINT_SLOTS_PER_FAMILY 65536
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT_HEADERS 8
#define SAMPLE_BYTES 128

/* The filter's clock is jiffies (inlined, no helper call); rate-limit time
 * is in ticks of 2^-TICK_SHIFT jiffy so that sub-jiffy intervals keep their
 * precision. */
#define TICK_SHIFT 24
#define SERVICE_PROBES 4
#define SLOT_TCP_PORTS 6
#define SLOT_UDP_PORTS 2
