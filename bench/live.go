package bench

import (
	"fmt"
	"io"
)

// noisyPct is the gap between the two live methods above which the
// result warns that the machine was busy.
const noisyPct = 15

// Live case names, stable JSON keys.
const (
	liveRampart  = "rampart"
	liveNftables = "nftables"
	liveFloor    = "xdp_drop"
)

// LiveResult is the receive-side CPU cost of dropping a bounded flood on a
// veth, per dropped frame, for Rampart's filter (native XDP), an nftables
// netdev ingress drop rule and a bare XDP_DROP program (the floor: what
// any XDP drop costs on this path).
type LiveResult struct {
	Frames     int `json:"frames"`
	FrameBytes int `json:"frame_bytes"`
	Rounds     int `json:"rounds"`
	SenderCPU  int `json:"sender_cpu"`
	// XDPMode is how Rampart's filter was attached (native on veth).
	XDPMode string `json:"xdp_mode"`
	// Per dropped frame: system + irq + softirq time of the sender's CPU
	// (where veth runs the whole receive path) from /proc/stat, minus the
	// same CPU's idle rate measured in each round.
	XDPNsPerDrop       float64 `json:"xdp_ns_per_drop"`
	NftablesNsPerDrop  float64 `json:"nftables_ns_per_drop"`
	FloorNsPerDrop     float64 `json:"xdp_drop_floor_ns_per_drop"`
	RatioNftablesVsXDP float64 `json:"ratio_nftables_vs_xdp"`
	// XDPNetNsPerDrop is Rampart above the bare XDP_DROP: the cost of its
	// decision on the live path, with the sender, the bridge and veth's
	// XDP plumbing (the same for both programs) taken out. nftables has no
	// such floor: without an XDP program veth takes its plain skb path.
	XDPNetNsPerDrop float64 `json:"xdp_net_ns_per_drop"`
	// XDPNetThreadNsPerDrop is the same by thread time.
	XDPNetThreadNsPerDrop float64 `json:"xdp_net_thread_ns_per_drop"`
	// ThreadNsPerDrop cross-checks with CPU time no other process can
	// pollute: the sending thread's own time (precise, from the
	// scheduler) plus every ksoftirqd thread's.
	ThreadNsPerDrop map[string]float64 `json:"thread_ns_per_drop"`
	// RatioNftablesVsXDPThread is the same ratio by thread time.
	RatioNftablesVsXDPThread float64 `json:"ratio_nftables_vs_xdp_thread"`
	// MethodsDisagreePct is the median gap between the two methods. On a
	// quiet machine they agree within a few percent; a large gap means
	// other work shared the sender's CPU and the /proc/stat figures carry
	// its noise (the thread figures do not).
	MethodsDisagreePct float64            `json:"methods_disagree_pct"`
	SenderMpps         map[string]float64 `json:"sender_mpps"`
	// DropShare is the share of sent frames the case's own counter says it
	// dropped (the filter's blocklist counter, the nftables rule counter;
	// rx_packets for the bare program).
	DropShare map[string]float64 `json:"drop_share"`
	// LegitConnects counts TCP connections from a third namespace to a
	// listener behind the dropper, made while each flood ran. (The bare
	// XDP_DROP drops them too, so it has no entry.)
	LegitConnects map[string]ConnectCount `json:"legit_connects"`
	SamplesNs     map[string][]float64    `json:"samples_ns_per_drop"`
}

// ConnectCount is how many connections completed and failed.
type ConnectCount struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
}

func (l *LiveResult) writeTable(w io.Writer) {
	fmt.Fprintf(w, "Live veth drop cost: %d x %d-byte UDP frames per flood, sender on CPU %d, median of %d interleaved rounds\n",
		l.Frames, l.FrameBytes, l.SenderCPU, l.Rounds)
	fmt.Fprintf(w, "  %-22s %10s %11s %10s %9s %9s  %s\n", "", "ns/drop", "above floor", "thread ns", "Mpps sent", "dropped", "legit connects during flood")
	row := func(label, key string, ns float64, net string) {
		conns := "(drops them too)"
		if c, ok := l.LegitConnects[key]; ok {
			conns = fmt.Sprintf("%d ok, %d failed", c.OK, c.Failed)
		}
		fmt.Fprintf(w, "  %-22s %10.0f %11s %10.0f %9.2f %8.1f%%  %s\n", label, ns, net,
			l.ThreadNsPerDrop[key], l.SenderMpps[key], 100*l.DropShare[key], conns)
	}
	row("rampart (xdp "+l.XDPMode+")", liveRampart, l.XDPNsPerDrop, fmt.Sprintf("%.0f / %.0f", l.XDPNetNsPerDrop, l.XDPNetThreadNsPerDrop))
	row("nftables ingress", liveNftables, l.NftablesNsPerDrop, "-")
	row("bare XDP_DROP (floor)", liveFloor, l.FloorNsPerDrop, "-")
	fmt.Fprintln(w, "  above floor: rampart minus bare XDP_DROP, by /proc/stat / by thread time")
	fmt.Fprintf(w, "  nftables / rampart: %.2fx (ns/drop: system+irq+softirq of CPU %d from /proc/stat, minus idle;\n", l.RatioNftablesVsXDP, l.SenderCPU)
	fmt.Fprintf(w, "  thread ns: sender thread + ksoftirqd CPU time, a cross-check no other process can pollute: %.2fx)\n", l.RatioNftablesVsXDPThread)
	if l.MethodsDisagreePct > noisyPct {
		fmt.Fprintf(w, "  warning: the two methods differ by %.0f%%: other work shared CPU %d; trust the thread figures\n", l.MethodsDisagreePct, l.SenderCPU)
	}
}
