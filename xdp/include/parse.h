/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"
#include "maps.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IP_MF     0x2000
#define IP_OFFSET 0x1FFF

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 id;
};

/* What the checks need from a packet, with addresses in the 16-byte form
 * of the hash keys (IPv4 as ::ffff:a.b.c.d). */
struct packet {
	struct addr_key src;
	struct addr_key dst;
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u8 ipv6;
	__u8 l4proto;
	__u8 tcp_flags;
	__u8 fragment;  /* any fragment */
	__u8 has_ports; /* L4 header present and parsed */
};

static __always_inline void map_v4(struct addr_key *k, __be32 addr)
{
	__u32 *w = (__u32 *)k->addr;
	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = addr;
}

static __always_inline void copy_v6(struct addr_key *k, const struct in6_addr *a)
{
	__u32 *w = (__u32 *)k->addr;
	w[0] = a->in6_u.u6_addr32[0];
	w[1] = a->in6_u.u6_addr32[1];
	w[2] = a->in6_u.u6_addr32[2];
	w[3] = a->in6_u.u6_addr32[3];
}

static __always_inline int is_mapped(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 &&
	       a->in6_u.u6_addr32[2] == bpf_htonl(0x0000ffff);
}

/* Parses TCP or UDP at l4, bounded by both the frame and the IP payload.
 * Returns a drop reason or REASON_PASS. */
static __always_inline int parse_l4(struct packet *p, void *l4, void *l4_end,
				    void *data_end)
{
	if (p->l4proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end || (void *)(th + 1) > l4_end)
			return REASON_DROP_TCP_TRUNCATED;
		__u32 doff = th->doff * 4;
		if (doff < sizeof(*th))
			return REASON_DROP_TCP_BAD_OFFSET;
		if (l4 + doff > l4_end)
			return REASON_DROP_TCP_BAD_OFFSET;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->has_ports = 1;
	} else if (p->l4proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end || (void *)(uh + 1) > l4_end)
			return REASON_DROP_UDP_TRUNCATED;
		__u32 ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh))
			return REASON_DROP_UDP_BAD_LENGTH;
		/* A first fragment carries only part of the datagram. */
		if (!p->fragment && l4 + ulen != l4_end)
			return REASON_DROP_UDP_BAD_LENGTH;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->has_ports = 1;
	}
	return REASON_PASS;
}

static __always_inline int parse_ipv4(struct packet *p, void *l3, void *data_end)
{
	struct iphdr *iph = l3;
	if ((void *)(iph + 1) > data_end)
		return REASON_DROP_IPV4_TRUNCATED;
	if (iph->version != 4)
		return REASON_DROP_IPV4_BAD_VERSION;
	__u32 ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return REASON_DROP_IPV4_BAD_IHL;
	if (l3 + ihl > data_end)
		return REASON_DROP_IPV4_TRUNCATED;
	__u32 tot = bpf_ntohs(iph->tot_len);
	if (tot < ihl || l3 + tot > data_end)
		return REASON_DROP_IPV4_BAD_LENGTH;

	map_v4(&p->src, iph->saddr);
	map_v4(&p->dst, iph->daddr);
	p->l4proto = iph->protocol;

	__u16 frag = bpf_ntohs(iph->frag_off);
	if (frag & (IP_MF | IP_OFFSET)) {
		p->fragment = 1;
		if (frag & IP_OFFSET)
			return REASON_PASS; /* no L4 header in a later fragment */
	}
	return parse_l4(p, l3 + ihl, l3 + tot, data_end);
}

static __always_inline int parse_ipv6(struct packet *p, void *l3, void *data_end)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > data_end)
		return REASON_DROP_IPV6_TRUNCATED;
	if (ip6->version != 6)
		return REASON_DROP_IPV6_BAD_VERSION;
	void *end = (void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len);
	if (end > data_end)
		return REASON_DROP_IPV6_BAD_LENGTH;

	/* ::ffff:a.b.c.d never appears on the wire (RFC 4291 2.5.5.2); here it
	 * would share keys with IPv4 a.b.c.d and inherit its list verdicts,
	 * buckets and services. */
	if (is_mapped(&ip6->saddr) || is_mapped(&ip6->daddr))
		return REASON_DROP_IPV6_MAPPED;
	p->ipv6 = 1;
	copy_v6(&p->src, &ip6->saddr);
	copy_v6(&p->dst, &ip6->daddr);

	__u8 nh = ip6->nexthdr;
	void *cur = ip6 + 1;
	int i;
	for (i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		__u32 hlen;
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case 135: /* mobility */
		case 139: /* HIP */
		case 140: /* shim6 */
			if (cur + 2 > data_end || cur + 2 > end)
				return REASON_DROP_IPV6_EXT_TRUNCATED;
			hlen = (((__u8 *)cur)[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if (cur + 2 > data_end || cur + 2 > end)
				return REASON_DROP_IPV6_EXT_TRUNCATED;
			hlen = (((__u8 *)cur)[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag *fh = cur;
			if ((void *)(fh + 1) > data_end || (void *)(fh + 1) > end)
				return REASON_DROP_IPV6_EXT_TRUNCATED;
			__u16 fo = bpf_ntohs(fh->frag_off);
			/* An atomic fragment (offset 0, no more) is a whole
			 * packet: RFC 6946 says to process it as one. */
			if (fo & 0xFFF9)
				p->fragment = 1;
			if (fo & 0xFFF8) {
				p->l4proto = fh->nexthdr;
				return REASON_PASS; /* no L4 header in a later fragment */
			}
			hlen = sizeof(*fh);
			break;
		}
		default:
			p->l4proto = nh;
			return parse_l4(p, cur, end, data_end);
		}
		nh = ((__u8 *)cur)[0];
		cur += hlen;
		if (cur > end)
			return REASON_DROP_IPV6_EXT_TRUNCATED;
	}
	/* The bound was reached; only an upper-layer header may follow. */
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
	case 135:
	case 139:
	case 140:
		return REASON_DROP_IPV6_EXT_CHAIN;
	}
	p->l4proto = nh;
	return parse_l4(p, cur, end, data_end);
}

/* Parses Ethernet, up to MAX_VLAN_TAGS VLAN tags and IP. Returns a drop
 * reason, REASON_PASS_NON_IP, or REASON_PASS with p filled in. */
static __always_inline int parse_packet(struct packet *p, void *data, void *data_end)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return REASON_DROP_ETH_TRUNCATED;
	__be16 proto = eth->h_proto;
	void *cur = eth + 1;

	int i;
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vh = cur;
		if ((void *)(vh + 1) > data_end)
			return REASON_DROP_VLAN_TRUNCATED;
		proto = vh->proto;
		cur = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return REASON_DROP_VLAN_TOO_DEEP;

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(p, cur, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(p, cur, data_end);
	return REASON_PASS_NON_IP;
}
