package demo

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampart-edge/rampart/xdp"
)

// report writes the results; the clean-up steps print their lines after.
func (d *run) report() {
	r := d.res
	d.printf("\nattack traffic (raw frames from the attacker's namespace, spread over %s):\n", d.opts.Duration)
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flood\tsent\tdropped as\tcounted\tshare\t")
	for _, f := range r.Floods {
		names := make([]string, len(f.Reasons))
		for i, reason := range f.Reasons {
			names[i] = reason.String()
		}
		share := "-"
		if f.Sent > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(f.Dropped)/float64(f.Sent))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t\n", f.Name, f.Sent, strings.Join(names, "+"), f.Dropped, share)
	}
	tw.Flush()
	for _, f := range r.Floods {
		d.printf("  %-15s %s\n", f.Name+":", f.From)
	}
	l := d.cfg.RateLimit.Normal
	d.printf("  the SYN flood's source may still open %d SYN/s (burst %d): those SYNs pass and the edge answers them\n",
		l.SYNsPerSecond, l.SYNBurst)

	lg := r.Legit
	d.printf("\nlegitimate client %s -> edge pipeline %s:%d -> origin %s:%d, during the floods:\n",
		d.client.Addr, d.edge.Addr, httpPort, d.origin.Addr, originPort)
	d.printf("  requests served by the origin: %d/%d (one connection each)\n", lg.Served, lg.Requests)
	if lg.Served > 0 {
		d.printf("  latency of the served:         p50 %s  p90 %s  p99 %s  max %s\n", ms(lg.P50), ms(lg.P90), ms(lg.P99), ms(lg.Max))
	}
	d.printf("  statuses seen:                 %s\n", lg.StatusSummary())
	if lg.FirstErr != "" {
		d.printf("  first failure:                 %s\n", lg.FirstErr)
	}
	d.printf("  the origin answered %d requests in all, %d of them forwarded by the pipeline for %s (Via: rampart,\n"+
		"    X-Forwarded-For): the readiness check, the baseline and the requests above\n",
		r.OriginRequests, r.OriginForwarded, d.client.Addr)
	d.printf("  the client's packets dropped by its own per-source buckets: %d\n", r.ClientRateDropped)

	d.printf("\nfilter counters by reason (edge eth0, %s mode, every packet since attach):\n", r.Mode)
	tw = tabwriter.NewWriter(d.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reason\tverdict\tpackets\tbytes\t")
	var passed, dropped uint64
	for _, reason := range xdp.Reasons() {
		c := r.Stats[reason]
		if c.Packets == 0 {
			continue
		}
		if reason.Dropped() {
			dropped += c.Packets
		} else {
			passed += c.Packets
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", reason, reason.Verdict(), c.Packets, c.Bytes)
	}
	fmt.Fprintf(tw, "total\tpass\t%d\t\t\n", passed)
	fmt.Fprintf(tw, "total\tdrop\t%d\t\t\n", dropped)
	tw.Flush()
	if r.Stats[xdp.ReasonAllowlist].Packets > 0 {
		d.printf("allowlist: the origin's replies to the pipeline's connections (%s/32, added by the demo)\n", d.origin.Addr)
	}
	if r.Stats[xdp.ReasonNotServed].Packets > 0 {
		d.printf("not_served: packets for no served address and port; besides any flood, the lan hosts' own IGMP reports land there\n")
	}
	every := d.cfg.SampleEvery
	if every > 0 {
		d.printf("drop samples read from the ring: %d (1 in %d drops, per reason and CPU)\n", r.Samples, every)
	}
	verdict := "every legitimate request was served by the origin through the pipeline"
	if lg.Failed() > 0 || r.Baseline.Failed() > 0 {
		verdict = "SOME LEGITIMATE REQUESTS FAILED"
	}
	d.printf("\nresult: %s; %d packets dropped in XDP before the edge's stack saw them, in %s\n",
		verdict, dropped, r.Elapsed.Round(100*time.Millisecond))
}
