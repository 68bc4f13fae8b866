//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reads the filter's clock for userspace: run once with BPF_PROG_TEST_RUN,
 * it writes jiffies and CLOCK_MONOTONIC into the first 16 bytes of the
 * frame, so the loader can convert list expiry times into jiffies (the
 * filter reads jiffies because bpf_jiffies64 is inlined, unlike the
 * ktime helpers). */

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int rampart_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *out = data;
	if ((void *)(out + 2) > data_end)
		return XDP_ABORTED;
	out[0] = bpf_jiffies64();
	out[1] = bpf_ktime_get_ns();
	return XDP_PASS;
}
