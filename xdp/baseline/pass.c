//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The floor of XDP cost on the pass path: pass every frame without
 * reading it. Benchmarks report the filter's pass cost beside this. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int baseline_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
