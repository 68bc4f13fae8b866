//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rampart's XDP DoS pre-filter. Per packet: parse, allow/block by source
 * prefix, fragments, TCP flag sanity, UDP reflection, served services,
 * per-source rate limits (stricter toward addresses in attack mode), one
 * counter per reason and a 1-in-N sample of drops. See xdp/doc.go.
 *
 * Cost model: on kernels with return-thunk and retpoline mitigations every
 * out-of-line call (hash, LRU and LPM lookups, most helpers) costs tens of
 * nanoseconds, while array lookups and bpf_jiffies64 are inlined by the
 * verifier. The common path is therefore built from inlined lookups only: a
 * per-CPU source cache holds each recent source's list verdict and its
 * not-yet-charged rate accounting, and served addresses live in an array
 * with their ports inline. Hash, LRU and trie lookups remain for new
 * sources, list changes and sources near their limits. */

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

static __always_inline int key_eq(const struct addr_key *a, const struct addr_key *b)
{
	const __u64 *x = (const __u64 *)a->addr, *y = (const __u64 *)b->addr;
	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline void key_copy(struct addr_key *dst, const struct addr_key *src)
{
	__u64 *d = (__u64 *)dst->addr;
	const __u64 *s = (const __u64 *)src->addr;
	d[0] = s[0];
	d[1] = s[1];
}

/* Multiplicative hash of an address; mirrored by addrHash in Go. */
static __always_inline __u32 addr_hash(const struct addr_key *k)
{
	const __u32 *w = (const __u32 *)k->addr;
	return (w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9E3779B1u;
}

static __always_inline int is_v4_mapped(const struct addr_key *k)
{
	const __u32 *w = (const __u32 *)k->addr;
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* The slot of the source hint array for an address: IPv4 by its /16, IPv6
 * by its /32 folded to 16 bits. Mirrored by HintSlot in Go. */
static __always_inline __u32 hint_slot(const struct packet *p)
{
	const __u8 *a = p->src.addr;
	if (!p->ipv6)
		return ((__u32)a[12] << 8) | a[13];
	return HINT_SLOTS_PER_FAMILY +
	       ((((__u32)a[0] << 8) | a[1]) ^ (((__u32)a[2] << 8) | a[3]));
}

/* The longest matching prefix decides; when it has expired, the source is
 * not listed (until the sweeper removes it and a shorter one shows). */
static __always_inline struct prefix_entry *lookup_source(void *trie_v4, void *trie_v6,
							  const struct packet *p, __u64 now_j)
{
	struct prefix_entry *e;
	if (!p->ipv6) {
		struct lpm_v4_key k = { .prefixlen = 32 };
		__builtin_memcpy(k.addr, &p->src.addr[12], 4);
		e = bpf_map_lookup_elem(trie_v4, &k);
	} else {
		struct lpm_v6_key k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, p->src.addr, 16);
		e = bpf_map_lookup_elem(trie_v6, &k);
	}
	if (e && e->expires_j && e->expires_j <= now_j)
		return NULL;
	return e;
}

static __always_inline void resolve_lists(const struct settings *cfg, const struct packet *p,
					  struct source_slot *src, __u64 now_j)
{
	src->lists_gen = cfg->lists_gen;
	src->list_verdict = LISTED_NONE;
	src->list_expires_j = 0;
	__u32 slot = hint_slot(p);
	enum hint_flag *hint = bpf_map_lookup_elem(&source_hints, &slot);
	if (!hint || !*hint)
		return;
	struct prefix_entry *e;
	if ((*hint & HINT_ALLOW) && (e = lookup_source(&allow_v4, &allow_v6, p, now_j))) {
		src->list_verdict = LISTED_ALLOW;
		src->list_expires_j = e->expires_j;
		return;
	}
	if ((*hint & HINT_BLOCK) && (e = lookup_source(&block_v4, &block_v6, p, now_j))) {
		src->list_verdict = LISTED_BLOCK;
		src->list_expires_j = e->expires_j;
	}
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

static __always_inline struct service_slot *find_service(const struct settings *cfg,
							 const struct addr_key *dst)
{
	__u32 bits = cfg->service_bits;
	if (bits == 0 || bits > 24)
		return NULL;
	__u32 mask = (1u << bits) - 1;
	__u32 h = addr_hash(dst) >> (32 - bits);
	__u32 base = cfg->service_half ? mask + 1 : 0;
	int i;
#pragma unroll
	for (i = 0; i < SERVICE_PROBES; i++) {
		__u32 idx = base + ((h + i) & mask);
		struct service_slot *s = bpf_map_lookup_elem(&service_table, &idx);
		if (!s || !(s->flags & SERVED_USED))
			return NULL;
		if (key_eq((const struct addr_key *)s->addr, dst))
			return s;
	}
	return NULL;
}

static __always_inline int slot_serves(const struct service_slot *s, const struct packet *p)
{
	int i;
	if (p->dport == 0) /* never served; also the value of unused inline ports */
		return 0;
	if (p->l4proto == IPPROTO_TCP) {
#pragma unroll
		for (i = 0; i < SLOT_TCP_PORTS; i++)
			if (s->tcp[i] == p->dport)
				return 1;
	} else if (p->l4proto == IPPROTO_UDP) {
#pragma unroll
		for (i = 0; i < SLOT_UDP_PORTS; i++)
			if (s->udp[i] == p->dport)
				return 1;
	}
	return 0;
}

static __always_inline int served(const struct settings *cfg, const struct packet *p,
				  const struct service_slot *svc)
{
	if ((p->l4proto == IPPROTO_ICMP || p->l4proto == IPPROTO_ICMPV6) &&
	    (cfg->flags & CONFIG_ALLOW_ICMP))
		return 1;
	if (p->fragment && !p->has_ports) {
		/* A later fragment has no ports, but the address must serve its
		 * protocol: UDP amplification's bulk rides in later fragments. */
		__u32 want = p->l4proto == IPPROTO_TCP ? SERVED_TCP :
			     p->l4proto == IPPROTO_UDP ? SERVED_UDP : 0;
		if (!want)
			return 0;
		if (svc)
			return (svc->flags & want) != 0;
		if (!cfg->service_spill)
			return 0;
		struct served_addr *sa = bpf_map_lookup_elem(&served_addrs, &p->dst);
		return sa && (sa->flags & want);
	}
	if (p->l4proto != IPPROTO_TCP && p->l4proto != IPPROTO_UDP)
		return 0;
	if (svc && slot_serves(svc, p))
		return 1;
	if (svc ? !(svc->flags & SERVED_OVERFLOW) : !cfg->service_spill)
		return 0;
	struct service_key k = { .port = p->dport, .proto = p->l4proto };
	__builtin_memcpy(k.addr, p->dst.addr, 16);
	return bpf_map_lookup_elem(&services, &k) != NULL;
}

/* Advances a GCRA bucket by cost, from now if it has been idle. */
static __always_inline void advance(__u64 *tat, __u64 now, __u64 cost)
{
	*tat = (*tat > now ? *tat : now) + cost;
}

static __always_inline int fits(__u64 tat, __u64 now, __u64 cost, __u64 depth)
{
	return (tat > now ? tat : now) + cost <= now + depth;
}

/* Room left in a bucket, in units of cost (how many more would fit). */
static __always_inline __u64 room(__u64 tat, __u64 now, __u64 cost, __u64 depth)
{
	__u64 base = tat > now ? tat : now;
	if (!cost || base >= now + depth)
		return 0;
	return (now + depth - base) / cost;
}

/* Charges a source's pending packets to its bucket in rate_limits. With
 * judge set, the newest pending packet (syn, len) has not been let through
 * yet and is judged here: the reason to drop it, or REASON_PASS. It also
 * decides how many packets may pass unjudged before the next charge (no
 * more than the buckets have room for) and until when to drop outright. */
static __always_inline int charge(const struct settings *cfg, const struct limits *lim,
				  struct source_slot *src, int judge, int syn, __u32 len,
				  __u64 now_t, __u64 now_j)
{
	struct addr_key key;
	key_copy(&key, &src->key);
	if (!is_v4_mapped(&key)) {
		__u32 *w = (__u32 *)key.addr;
		w[2] = 0;
		w[3] = 0;
	}
	struct rate_state fresh = {};
	struct rate_state *st = bpf_map_lookup_elem(&rate_limits, &key);
	int insert = 0;
	if (!st) {
		st = &fresh;
		insert = 1;
	}

	__u32 packets = src->pending_packets, syns = src->pending_syns, bytes = src->pending_bytes;
	if (judge) {
		packets -= 1;
		syns -= syn;
		bytes -= len;
	}
	__u64 byte_cost = lim->byte_interval_t_q20;
	if (lim->packet_interval_t)
		advance(&st->packet_tat_t, now_t, packets * lim->packet_interval_t);
	if (lim->syn_interval_t && syns)
		advance(&st->syn_tat_t, now_t, syns * lim->syn_interval_t);
	if (byte_cost)
		advance(&st->byte_tat_t, now_t, ((__u64)bytes * byte_cost) >> 20);

	int reason = REASON_PASS;
	if (judge) {
		__u64 this_bytes = ((__u64)len * byte_cost) >> 20;
		if (syn && lim->syn_interval_t &&
		    !fits(st->syn_tat_t, now_t, lim->syn_interval_t, lim->syn_depth_t))
			reason = REASON_DROP_RATE_SYN;
		else if (lim->packet_interval_t &&
			 !fits(st->packet_tat_t, now_t, lim->packet_interval_t, lim->packet_depth_t))
			reason = REASON_DROP_RATE_PACKETS;
		else if (byte_cost && !fits(st->byte_tat_t, now_t, this_bytes, lim->byte_depth_t))
			reason = REASON_DROP_RATE_BYTES;
		if (reason == REASON_PASS) {
			if (lim->packet_interval_t)
				advance(&st->packet_tat_t, now_t, lim->packet_interval_t);
			if (syn && lim->syn_interval_t)
				advance(&st->syn_tat_t, now_t, lim->syn_interval_t);
			if (byte_cost)
				advance(&st->byte_tat_t, now_t, this_bytes);
		}
	}

	st->last_seen_j = now_j;
	st->packets += src->pending_packets + src->pending_dropped;
	st->bytes += src->pending_bytes;
	st->dropped += src->pending_dropped + (reason != REASON_PASS);

	/* How long until the next packet (or SYN) conforms, and how many may
	 * pass before the buckets must be asked again. */
	__u64 batch = cfg->rate_batch ? cfg->rate_batch : 1;
	src->drop_until_t = 0;
	src->syn_drop_until_t = 0;
	if (lim->packet_interval_t) {
		__u64 r = room(st->packet_tat_t, now_t, lim->packet_interval_t, lim->packet_depth_t);
		if (r == 0) {
			src->drop_until_t = st->packet_tat_t + lim->packet_interval_t - lim->packet_depth_t;
			src->drop_reason = REASON_DROP_RATE_PACKETS;
		}
		batch = r < batch ? r : batch;
	}
	if (byte_cost) {
		/* Room counted in 1514-byte frames, so a batch of standard frames
		 * cannot overdraw (jumbo frames can, by their excess); outright
		 * drops only while not even the smallest frame fits, so that a
		 * small packet after a big one is still judged exactly. */
		__u64 frame = (1514ULL * byte_cost) >> 20;
		__u64 smallest = (ETH_HLEN * byte_cost) >> 20;
		__u64 r = room(st->byte_tat_t, now_t, frame, lim->byte_depth_t);
		if (!fits(st->byte_tat_t, now_t, smallest, lim->byte_depth_t) && !src->drop_until_t) {
			src->drop_until_t = st->byte_tat_t + smallest - lim->byte_depth_t;
			src->drop_reason = REASON_DROP_RATE_BYTES;
		}
		batch = r < batch ? r : batch;
	}
	if (lim->syn_interval_t) {
		__u64 r = room(st->syn_tat_t, now_t, lim->syn_interval_t, lim->syn_depth_t);
		if (r == 0)
			src->syn_drop_until_t = st->syn_tat_t + lim->syn_interval_t - lim->syn_depth_t;
		batch = r < batch ? r : batch;
	}
	src->batch = batch ? batch : 1;
	src->pending_packets = 0;
	src->pending_syns = 0;
	src->pending_bytes = 0;
	src->pending_dropped = 0;
	src->flush_at_t = now_t + cfg->flush_interval_t;

	if (insert)
		bpf_map_update_elem(&rate_limits, &key, &fresh, BPF_NOEXIST);
	return reason;
}

static __always_inline int rate_limit(const struct settings *cfg, const struct packet *p,
				      struct source_slot *src, const struct service_slot *svc,
				      __u32 len, __u64 now_j)
{
	__u64 now_t = now_j << TICK_SHIFT;
	int syn = p->l4proto == IPPROTO_TCP && p->has_ports &&
		  (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;

	int attack = 0;
	if (svc)
		attack = svc->flags & SERVED_ATTACK;
	else if (cfg->attack_entries)
		attack = bpf_map_lookup_elem(&attack_addrs, &p->dst) != NULL;
	const struct limits *lim = attack ? &cfg->attack : &cfg->normal;

	if ((syn && now_t < src->syn_drop_until_t) || now_t < src->drop_until_t) {
		int reason = (syn && now_t < src->syn_drop_until_t) ? REASON_DROP_RATE_SYN
								     : src->drop_reason;
		src->pending_dropped++;
		if (now_t >= src->flush_at_t)
			charge(cfg, lim, src, 0, 0, 0, now_t, now_j);
		return reason;
	}

	src->pending_packets++;
	src->pending_syns += syn;
	src->pending_bytes += len;
	/* Toward an address under attack every packet is judged. */
	if (attack || src->pending_packets >= src->batch || now_t >= src->flush_at_t)
		return charge(cfg, lim, src, 1, syn, len, now_t, now_j);
	return REASON_PASS;
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

	__u64 now_j = bpf_jiffies64();
	__u32 idx = 0;
	if (cfg->source_bits > 0 && cfg->source_bits <= 24)
		idx = addr_hash(&p.src) >> (32 - cfg->source_bits);
	struct source_slot *src = bpf_map_lookup_elem(&source_cache, &idx);
	if (!src) /* settings that do not match the map: fail closed */
		return finish(ctx, cfg, REASON_DROP_INTERNAL, len);
	if (!src->used || !key_eq(&src->key, &p.src)) {
		/* Whatever the evicted source did reaches its bucket: skipping
		 * a one-packet residency would let two sources that share a slot
		 * alternate past their limits. */
		if (src->used && (src->pending_packets || src->pending_dropped))
			charge(cfg, &cfg->normal, src, 0, 0, 0, now_j << TICK_SHIFT, now_j);
		key_copy(&src->key, &p.src);
		src->used = 1;
		src->lists_gen = cfg->lists_gen - 1;
		src->pending_packets = 0;
		src->pending_syns = 0;
		src->pending_bytes = 0;
		src->pending_dropped = 0;
		src->drop_until_t = 0;
		src->syn_drop_until_t = 0;
		src->batch = 1; /* a new residency's first packet learns its bucket */
		src->flush_at_t = (now_j << TICK_SHIFT) + cfg->flush_interval_t;
	}
	if (src->lists_gen != cfg->lists_gen ||
	    (src->list_expires_j && src->list_expires_j <= now_j))
		resolve_lists(cfg, &p, src, now_j);
	if (src->list_verdict == LISTED_ALLOW)
		return finish(ctx, cfg, REASON_PASS_ALLOWLIST, len);
	if (src->list_verdict == LISTED_BLOCK)
		return finish(ctx, cfg, REASON_DROP_BLOCKLIST, len);

	if (p.fragment && (cfg->flags & CONFIG_DROP_FRAGMENTS))
		return finish(ctx, cfg, REASON_DROP_FRAGMENT, len);
	/* A passed first fragment carries the TCP header: scans split after
	 * byte 20 (nmap --mtu) must not slip through. */
	if (p.l4proto == IPPROTO_TCP && p.has_ports && bad_tcp_flags(p.tcp_flags))
		return finish(ctx, cfg, REASON_DROP_TCP_FLAGS, len);

	struct service_slot *svc = find_service(cfg, &p.dst);

	if (p.l4proto == IPPROTO_UDP && p.has_ports && reflection_port(p.sport)) {
		int udp_served;
		if (svc) {
			udp_served = svc->flags & SERVED_UDP;
		} else if (cfg->service_spill) {
			struct served_addr *sa = bpf_map_lookup_elem(&served_addrs, &p.dst);
			udp_served = !sa || (sa->flags & SERVED_UDP);
		} else {
			udp_served = 1; /* not a served address: not ours to call reflection */
		}
		if (!udp_served)
			return finish(ctx, cfg, REASON_DROP_UDP_REFLECTION, len);
	}

	if ((cfg->flags & CONFIG_FILTER_SERVICES) && !served(cfg, &p, svc))
		return finish(ctx, cfg, REASON_DROP_NOT_SERVED, len);

	if (cfg->flags & CONFIG_RATE_LIMIT) {
		reason = rate_limit(cfg, &p, src, svc, len, now_j);
		if (reason != REASON_PASS)
			return finish(ctx, cfg, reason, len);
	}

	return finish(ctx, cfg, p.fragment ? REASON_PASS_FRAGMENT : REASON_PASS, len);
}
