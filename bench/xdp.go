package bench

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
)

// trimmedMean is the mean without the slowest 2 % of xs: runs hit by an
// interrupt or a preemption, not by the program.
func trimmedMean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	s = s[:len(s)-len(s)/50]
	var sum float64
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

// Case names, stable: they are JSON keys.
const (
	caseTCPSYN        = "tcp_syn_pass"
	caseUDP           = "udp_pass"
	caseIPv6SYN       = "ipv6_syn_pass"
	caseVLANSYN       = "vlan_syn_pass"
	caseHintedSYN     = "tcp_syn_pass_hinted"
	caseBlocked       = "blocked"
	caseRateLimited   = "rate_limited"
	baselineDrop      = "xdp_drop"
	baselinePass      = "xdp_pass"
	baselineXDPFilter = "xdp_filter"
)

// Names of the new-source cases (stable JSON keys).
const (
	newSourcePass    = "syn_pass"
	newSourceBlocked = "blocked"
	// The pass frames split by whether the source's hint slot is marked:
	// unhinted sources cost the cache miss and the rate-table insert,
	// hinted ones a trie walk on top.
	newSourcePassUnhinted = "syn_pass_unhinted"
	newSourcePassHinted   = "syn_pass_hinted"
)

// XDPOptions sizes `rampart bench xdp`.
type XDPOptions struct {
	// Rounds of the interleaved measurement (each round times every case
	// once); medians are over rounds.
	Rounds int
	// Repeat is the BPF_PROG_TEST_RUN repeat count of one timing.
	Repeat int
	// Live adds the veth measurement (root only; skipped otherwise).
	Live bool
	// LiveFrames is the size of one bounded flood.
	LiveFrames int
	// NewSources is how many frames from never-seen sources each round
	// times once per case (0 skips that measurement).
	NewSources int
	// Seed makes the generated blocklist reproducible.
	Seed   uint64
	Logger *slog.Logger
}

// DefaultXDPOptions are what `rampart bench xdp` runs without flags.
func DefaultXDPOptions() XDPOptions {
	return XDPOptions{Rounds: 5, Repeat: 2_000_000, NewSources: 4096, Live: true, LiveFrames: 1_000_000, Seed: 1}
}

// XDPResult is the outcome of the XDP benchmark. Field names are stable:
// scripts read them.
type XDPResult struct {
	Name string `json:"name"`
	// BaselineNs: bare XDP_DROP and XDP_PASS, and xdp-filter on the IPv4
	// SYN, per packet.
	BaselineNs map[string]float64 `json:"baseline_ns"`
	// XDPFilterNs is xdp-filter on each legitimate packet kind.
	XDPFilterNs map[string]float64 `json:"xdp_filter_ns"`
	// FilterNs is Rampart's filter on every case.
	FilterNs map[string]float64 `json:"filter_ns"`
	// RatioPassVsXDPFilter is the worst, over the legitimate pass cases,
	// of Rampart's cost over xdp-filter's on the same frame (each ratio a
	// median of per-round ratios); RatioPassCase names that case.
	RatioPassVsXDPFilter float64            `json:"ratio_pass_vs_xdp_filter"`
	RatioPassCase        string             `json:"ratio_pass_case"`
	RatiosVsXDPFilter    map[string]float64 `json:"ratios_vs_xdp_filter"`
	// RatioBlockedVsPass is blocked over tcp_syn_pass: below 1 means
	// dropping a blocked source is cheaper than passing a legitimate one.
	RatioBlockedVsPass float64 `json:"ratio_blocked_vs_pass"`
	// FilterNewSourceNs is Rampart on frames whose every source is new to
	// it (a spoofed-source flood: each packet misses the per-CPU source
	// cache and takes the hint, trie and rate-table path), timed once per
	// frame; XDPFilterNewSourceNs is xdp-filter on the same pass frames.
	FilterNewSourceNs             map[string]float64 `json:"filter_new_source_ns,omitempty"`
	XDPFilterNewSourceNs          map[string]float64 `json:"xdp_filter_new_source_ns,omitempty"`
	RatioNewSourcePassVsXDPFilter float64            `json:"ratio_new_source_pass_vs_xdp_filter,omitempty"`
	NewSources                    int                `json:"new_sources_per_round"`
	// SamplesNs holds every round's figure per case, for spread.
	SamplesNs map[string][]float64 `json:"samples_ns"`
	Rounds    int                  `json:"rounds"`
	Repeat    int                  `json:"repeat"`
	// TestRunCPU is the CPU the timings ran on, -1 when not pinned.
	TestRunCPU  int         `json:"test_run_cpu"`
	Profile     ProfileInfo `json:"profile"`
	Live        *LiveResult `json:"live,omitempty"`
	LiveSkipped string      `json:"live_skipped,omitempty"`
	Machine     Machine     `json:"machine"`
}

// WriteTable prints the result for a person.
func (r *XDPResult) WriteTable(w io.Writer) error {
	pin := "not pinned"
	if r.TestRunCPU >= 0 {
		pin = fmt.Sprintf("on CPU %d", r.TestRunCPU)
	}
	fmt.Fprintf(w, "XDP per-packet cost: BPF_PROG_TEST_RUN x %d, median of %d interleaved rounds, %s\n\n",
		r.Repeat, r.Rounds, pin)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\trampart ns\txdp-filter ns\tratio\tmin..max ns\t")
	names := make([]string, 0, len(r.FilterNs))
	for n := range r.FilterNs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return caseOrder(a) - caseOrder(b) })
	for _, n := range names {
		xf, ratio := "-", "-"
		if v, ok := r.XDPFilterNs[n]; ok {
			xf = fmt.Sprintf("%.1f", v)
			ratio = fmt.Sprintf("%.2fx", r.RatiosVsXDPFilter[n])
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t\n", n, r.FilterNs[n], xf, ratio, spread(r.SamplesNs["rampart/"+n]))
	}
	fmt.Fprintf(tw, "baseline %s\t%.1f\t\t\t%s\t\n", baselineDrop, r.BaselineNs[baselineDrop], spread(r.SamplesNs[baselineDrop]))
	fmt.Fprintf(tw, "baseline %s\t%.1f\t\t\t%s\t\n", baselinePass, r.BaselineNs[baselinePass], spread(r.SamplesNs[baselinePass]))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nworst legitimate pass path vs xdp-filter: %.2fx (%s; target <= 1.5x)\n", r.RatioPassVsXDPFilter, r.RatioPassCase)
	fmt.Fprintf(w, "blocked vs tcp_syn_pass: %.2fx (target < 1)\n", r.RatioBlockedVsPass)
	if r.FilterNewSourceNs != nil {
		fmt.Fprintf(w, "\nNew sources (spoofed-source flood: every frame from a source never seen, so the per-CPU source cache misses;\n")
		fmt.Fprintf(w, "%d frames per round, each run once; bare XDP_DROP on the same frames subtracted, its repeat-run cost added back)\n", r.NewSources)
		fmt.Fprintf(w, "  syn_pass: rampart %.1f ns, xdp-filter %.1f ns, ratio %.2fx (%s)\n", r.FilterNewSourceNs[newSourcePass],
			r.XDPFilterNewSourceNs[newSourcePass], r.RatioNewSourcePassVsXDPFilter, spread(r.SamplesNs["rampart_new_source/"+newSourcePass]))
		fmt.Fprintf(w, "    of which sources in an unmarked hint slot (cache miss + rate-table insert): %.1f ns; in a marked slot (+ trie walk): %.1f ns\n",
			r.FilterNewSourceNs[newSourcePassUnhinted], r.FilterNewSourceNs[newSourcePassHinted])
		fmt.Fprintf(w, "  blocked:  rampart %.1f ns (%s; cache miss + trie walk to a hit, no rate table)\n",
			r.FilterNewSourceNs[newSourceBlocked], spread(r.SamplesNs["rampart_new_source/"+newSourceBlocked]))
	}
	p := r.Profile
	fmt.Fprintf(w, "profile: %s + %d blocked prefixes (%d IPv6), %d services, %d allowed; hinted slots v4 %.1f%%, v6 %.1f%%; %s\n",
		p.Base, p.BlockedPrefixes, p.BlockedV6, p.Services, p.AllowPrefixes, p.HintedV4SlotsPct, p.HintedV6SlotsPct, p.RateLimit)
	if r.Live != nil {
		fmt.Fprintln(w)
		r.Live.writeTable(w)
	} else if r.LiveSkipped != "" {
		fmt.Fprintf(w, "\nlive veth measurement skipped: %s\n", r.LiveSkipped)
	}
	m := r.Machine
	_, err := fmt.Fprintf(w, "\nmachine: %s, %d cores, kernel %s, %s\n", m.CPU, m.Cores, m.Kernel, m.Go)
	return err
}

func spread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f..%.0f", slices.Min(xs), slices.Max(xs))
}

func caseOrder(name string) int {
	order := []string{caseTCPSYN, caseUDP, caseIPv6SYN, caseVLANSYN, caseHintedSYN, caseBlocked, caseRateLimited}
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return len(order)
}
