//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rampart's XDP DoS pre-filter. Per packet: parse, allow/block by source
 * prefix, TCP flag sanity, UDP reflection, served services, per-source rate
 * limits (stricter toward addresses in attack mode), one counter per reason
 * and a 1-in-N sample of drops. See xdp/doc.go for the order and its why. */

#include "include/parse.h"


char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void sample_drop(struct xdp_md *ctx, int reason, __u32 len)
{
	struct sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s)
		return;
	s->timestamp_ns = bpf_ktime_get_ns();
	s->reason = reason;
	s->ifindex = ctx->ingress_ifindex;
	s->packet_len = len;
	/* Computed so the verifier can see 1 <= cap <= 128 on every path; a
	 * plain min lets clang reuse the unbounded len. */
	__u32 cap = len >= SAMPLE_BYTES ? SAMPLE_BYTES : ((len - 1) & (SAMPLE_BYTES - 1)) + 1;
	s->captured_len = 0;
	if (bpf_xdp_load_bytes(ctx, 0, s->data, cap) == 0)
		s->captured_len = cap;
	bpf_ringbuf_submit(s, 0);
}

static __always_inline int finish(struct xdp_md *ctx, const struct settings *cfg,
				  int reason, __u32 len)
{
	__u32 key = reason;
	struct counter *c = bpf_map_lookup_elem(&stats, &key);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
	if (reason < REASON_FIRST_DROP)
		return XDP_PASS;
	if (c && cfg->sample_every && c->packets % cfg->sample_every == 0)
		sample_drop(ctx, reason, len);
	return XDP_DROP;
}

/* The slot of the source hint array for an address: IPv4 by its /16, IPv6
 * by its /32 folded to 16 bits. Kept in step with xdp.HintSlot in Go. */
static __always_inline __u32 hint_slot(const struct packet *p)
{
	const __u8 *a = p->src.addr;
	if (!p->ipv6)
		return ((__u32)a[12] << 8) | a[13];
	return HINT_SLOTS_PER_FAMILY +
	       ((((__u32)a[0] << 8) | a[1]) ^ (((__u32)a[2] << 8) | a[3]));
}

static __always_inline int live(const struct prefix_entry *e, __u64 now)
{
	return e && (e->expires_ns == 0 || e->expires_ns > now);
}

static __always_inline int source_listed(void *trie_v4, void *trie_v6,
					 const struct packet *p, __u64 now)
{
	if (!p->ipv6) {
		struct lpm_v4_key k = { .prefixlen = 32 };
		__builtin_memcpy(k.addr, &p->src.addr[12], 4);
		return live(bpf_map_lookup_elem(trie_v4, &k), now);
	}
	struct lpm_v6_key k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, p->src.addr, 16);
	return live(bpf_map_lookup_elem(trie_v6, &k), now);
}

/* Null, SYN+FIN, SYN+RST, FIN+RST, and anything without ACK that is not
 * a SYN or a RST (FIN, Xmas, PSH and URG scans). */
static __always_inline int bad_tcp_flags(__u8 f)
{
	f &= TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG;
	if (f == 0)
		return 1;
	if ((f & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN))
		return 1;
	if ((f & (TCP_SYN | TCP_RST)) == (TCP_SYN | TCP_RST))
		return 1;
	if ((f & (TCP_FIN | TCP_RST)) == (TCP_FIN | TCP_RST))
		return 1;
	if (!(f & (TCP_ACK | TCP_SYN | TCP_RST)))
		return 1;
	return 0;
}

static __always_inline int reflection_port(__u16 port_be)
{
	__u32 port = bpf_ntohs(port_be);
	__u32 idx = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&reflection_ports, &idx);
	return bits && (*bits & (1ULL << (port & 63)));
}

static __always_inline int served(const struct settings *cfg, const struct packet *p)
{
	if ((p->l4proto == IPPROTO_ICMP || p->l4proto == IPPROTO_ICMPV6) &&
	    (cfg->flags & CONFIG_ALLOW_ICMP))
		return 1;
	if (p->fragment && !p->has_ports)
		return bpf_map_lookup_elem(&served_addrs, &p->dst) != NULL;
	struct service_key k = {
		.port = p->has_ports ? p->dport : 0,
		.proto = p->l4proto,
	};
	__builtin_memcpy(k.addr, p->dst.addr, 16);
	return bpf_map_lookup_elem(&services, &k) != NULL;
}

/* GCRA: the packet conforms when the bucket's theoretical arrival time,
 * pushed by this packet's cost, stays within depth of now. */
static __always_inline int conforms(__u64 tat, __u64 now, __u64 cost, __u64 depth,
				    __u64 *next)
{
	__u64 base = tat > now ? tat : now;
	*next = base + cost;
	return *next <= now + depth;
}

static __always_inline int charge(struct rate_state *st, const struct limits *lim,
				  const struct packet *p, __u32 len, __u64 now)
{
	__u64 next_syn = st->syn_tat_ns, next_pkt = st->packet_tat_ns,
	      next_byte = st->byte_tat_ns;

	if (lim->syn_interval_ns && p->l4proto == IPPROTO_TCP && p->has_ports &&
	    (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN &&
	    !conforms(st->syn_tat_ns, now, lim->syn_interval_ns, lim->syn_depth_ns, &next_syn))
		return REASON_DROP_RATE_SYN;
	if (lim->packet_interval_ns &&
	    !conforms(st->packet_tat_ns, now, lim->packet_interval_ns, lim->packet_depth_ns,
		      &next_pkt))
		return REASON_DROP_RATE_PACKETS;
	if (lim->byte_interval_ns_q10 &&
	    !conforms(st->byte_tat_ns, now, ((__u64)len * lim->byte_interval_ns_q10) >> 10,
		      lim->byte_depth_ns, &next_byte))
		return REASON_DROP_RATE_BYTES;

	st->syn_tat_ns = next_syn;
	st->packet_tat_ns = next_pkt;
	st->byte_tat_ns = next_byte;
	return REASON_PASS;
}

static __always_inline int rate_limit(const struct settings *cfg, const struct packet *p,
				      __u32 len, __u64 now)
{
	const struct limits *lim = &cfg->normal;
	if (cfg->attack_entries && bpf_map_lookup_elem(&attack_addrs, &p->dst))
		lim = &cfg->attack;

	struct addr_key key = p->src;
	if (p->ipv6) {
		__u32 *w = (__u32 *)key.addr;
		w[2] = 0;
		w[3] = 0;
	}

	int reason;
	struct rate_state *st = bpf_map_lookup_elem(&rate_limits, &key);
	if (!st) {
		struct rate_state fresh = {};
		reason = charge(&fresh, lim, p, len, now);
		fresh.last_seen_ns = now;
		fresh.packets = 1;
		fresh.bytes = len;
		fresh.dropped = reason != REASON_PASS;
		bpf_map_update_elem(&rate_limits, &key, &fresh, BPF_NOEXIST);
		return reason;
	}
	reason = charge(st, lim, p, len, now);
	st->last_seen_ns = now;
	st->packets++;
	st->bytes += len;
	if (reason != REASON_PASS)
		st->dropped++;
	return reason;
}

SEC("xdp")
int rampart_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;

	__u32 zero = 0;
	const struct settings *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;

	struct packet p = {};
	int reason = parse_packet(&p, data, data_end);
	if (reason != REASON_PASS)
		return finish(ctx, cfg, reason, len);

	__u64 now = 0;
	__u32 slot = hint_slot(&p);
	enum hint_flag *hint = bpf_map_lookup_elem(&source_hints, &slot);
	if (hint && *hint) {
		now = bpf_ktime_get_coarse_ns();
		if ((*hint & HINT_ALLOW) && source_listed(&allow_v4, &allow_v6, &p, now))
			return finish(ctx, cfg, REASON_PASS_ALLOWLIST, len);
		if ((*hint & HINT_BLOCK) && source_listed(&block_v4, &block_v6, &p, now))
			return finish(ctx, cfg, REASON_DROP_BLOCKLIST, len);
	}

	if (p.fragment) {
		if (cfg->flags & CONFIG_DROP_FRAGMENTS)
			return finish(ctx, cfg, REASON_DROP_FRAGMENT, len);
	} else if (p.l4proto == IPPROTO_TCP && bad_tcp_flags(p.tcp_flags)) {
		return finish(ctx, cfg, REASON_DROP_TCP_FLAGS, len);
	}

	if (p.l4proto == IPPROTO_UDP && p.has_ports && reflection_port(p.sport)) {
		struct served_addr *sa = bpf_map_lookup_elem(&served_addrs, &p.dst);
		if (sa && !(sa->flags & SERVED_UDP))
			return finish(ctx, cfg, REASON_DROP_UDP_REFLECTION, len);
	}

	if ((cfg->flags & CONFIG_FILTER_SERVICES) && !served(cfg, &p))
		return finish(ctx, cfg, REASON_DROP_NOT_SERVED, len);

	if (cfg->flags & CONFIG_RATE_LIMIT) {
		if (!now)
			now = bpf_ktime_get_coarse_ns();
		reason = rate_limit(cfg, &p, len, now);
		if (reason != REASON_PASS)
			return finish(ctx, cfg, reason, len);
	}

	return finish(ctx, cfg, p.fragment ? REASON_PASS_FRAGMENT : REASON_PASS, len);
}
