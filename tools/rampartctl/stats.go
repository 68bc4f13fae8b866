package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/xdp"
)

func (a *app) newXDPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xdp",
		Short: "Inspect the XDP filter",
	}
	cmd.AddCommand(a.newStatsCmd())
	return cmd
}

func (a *app) newStatsCmd() *cobra.Command {
	var (
		watch, asJSON, all bool
		interval           time.Duration
		count              int
	)
	cmd := &cobra.Command{
		Use:   "stats [--watch] [--interval 1s] [--json]",
		Short: "Show the filter's counters per verdict and reason, and its settings",
		Long: `Without --watch, print the counters since the maps were created (they
survive daemon restarts). With --watch, print every interval the packets and
bytes per second of each reason that saw traffic, plus totals per verdict.
--json prints one JSON object per line instead.`,
		Example: "  rampartctl xdp stats\n  rampartctl xdp stats --watch --interval 2s\n  rampartctl xdp stats --json | jq .totals",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch && interval < 10*time.Millisecond {
				return fmt.Errorf("invalid --interval %s: must be at least 10ms", interval)
			}
			if count < 0 {
				return fmt.Errorf("invalid --count %d: must be 0 (until interrupted) or more", count)
			}
			m, iface, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			w := cmd.OutOrStdout()
			read := func() (statsSample, xdp.Settings, error) {
				c, err := m.Stats()
				if err != nil {
					return statsSample{}, xdp.Settings{}, err
				}
				s, err := m.Settings()
				return statsSample{at: time.Now(), counters: c}, s, err
			}
			cur, settings, err := read()
			if err != nil {
				return err
			}
			if !watch {
				r := buildReport(iface, settings, nil, cur, all)
				if asJSON {
					return json.NewEncoder(w).Encode(r)
				}
				fmt.Fprintln(w, settingsLine(iface, settings))
				return writeReport(w, r)
			}
			if !asJSON {
				fmt.Fprintln(w, settingsLine(iface, settings))
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := 0; count == 0 || n < count; n++ {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-tick.C:
				}
				prev := cur
				if cur, settings, err = read(); err != nil {
					return err
				}
				r := buildReport(iface, settings, &prev, cur, all)
				if asJSON {
					if err := json.NewEncoder(w).Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(w, "\n%s  %s  over %.2fs\n", r.Time.Format(time.RFC3339), iface, r.IntervalSeconds)
				if err := writeReport(w, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print rates every interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between samples with --watch")
	cmd.Flags().IntVar(&count, "count", 0, "with --watch, stop after this many tables (0: until interrupted)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	cmd.Flags().BoolVar(&all, "all", false, "show every reason, not only those with traffic")
	return cmd
}

// statsSample is one read of the counters.
type statsSample struct {
	at       time.Time
	counters []xdp.Counter // indexed by xdp.Reason
}

// row is one line of the table: a reason or a verdict's total. Rates are
// nil without a previous sample.
type row struct {
	Reason           string   `json:"reason,omitempty"`
	Verdict          string   `json:"verdict"`
	Packets          uint64   `json:"packets"`
	Bytes            uint64   `json:"bytes"`
	PacketsPerSecond *float64 `json:"packets_per_second,omitempty"`
	BytesPerSecond   *float64 `json:"bytes_per_second,omitempty"`
}

type settingsJSON struct {
	FilterServices bool   `json:"filter_services"`
	DropFragments  bool   `json:"drop_fragments"`
	RateLimit      bool   `json:"rate_limit"`
	AllowICMP      bool   `json:"allow_icmp"`
	SampleEvery    uint32 `json:"sample_every"`
	AttackAddrs    uint32 `json:"attack_addrs"`
}

type report struct {
	Time            time.Time    `json:"time"`
	Iface           string       `json:"iface"`
	IntervalSeconds float64      `json:"interval_seconds,omitempty"`
	Settings        settingsJSON `json:"settings"`
	Reasons         []row        `json:"reasons"`
	// Totals are "pass", "drop" and "all", in that order.
	Totals []row `json:"totals"`
}

// buildReport turns one or two samples into a report. With prev, rows are
// the reasons whose counters moved, with their rates; without, the reasons
// with any traffic. all keeps every reason.
func buildReport(iface string, s xdp.Settings, prev *statsSample, cur statsSample, all bool) report {
	r := report{
		Time:  cur.at.Round(time.Millisecond),
		Iface: iface,
		Settings: settingsJSON{FilterServices: s.FilterServices, DropFragments: s.DropFragments,
			RateLimit: s.RateLimit, AllowICMP: s.AllowICMP, SampleEvery: s.SampleEvery, AttackAddrs: s.AttackEntries},
		Reasons: []row{},
	}
	var secs float64
	if prev != nil {
		secs = cur.at.Sub(prev.at).Seconds()
		r.IntervalSeconds = secs
	}
	totals := []row{{Verdict: "pass"}, {Verdict: "drop"}, {Verdict: "all"}}
	var dTotals [3]xdp.Counter
	for i, c := range cur.counters {
		reason := xdp.Reason(i)
		line := row{Reason: reason.String(), Verdict: reason.Verdict(), Packets: c.Packets, Bytes: c.Bytes}
		v := 0
		if reason.Dropped() {
			v = 1
		}
		for _, t := range []int{v, 2} {
			totals[t].Packets += c.Packets
			totals[t].Bytes += c.Bytes
		}
		moved := c.Packets != 0
		if prev != nil {
			d := delta(prev.counters, i, c)
			for _, t := range []int{v, 2} {
				dTotals[t].Packets += d.Packets
				dTotals[t].Bytes += d.Bytes
			}
			line.PacketsPerSecond, line.BytesPerSecond = rate(d.Packets, secs), rate(d.Bytes, secs)
			moved = d.Packets != 0
		}
		if moved || all {
			r.Reasons = append(r.Reasons, line)
		}
	}
	if prev != nil {
		for t := range totals {
			totals[t].PacketsPerSecond, totals[t].BytesPerSecond = rate(dTotals[t].Packets, secs), rate(dTotals[t].Bytes, secs)
		}
	}
	r.Totals = totals
	return r
}

// delta is how much a counter grew since prev. A counter that went down
// was recreated (maps removed and the daemon restarted): all of its value
// is new.
func delta(prev []xdp.Counter, i int, cur xdp.Counter) xdp.Counter {
	if i >= len(prev) || cur.Packets < prev[i].Packets || cur.Bytes < prev[i].Bytes {
		return cur
	}
	return xdp.Counter{Packets: cur.Packets - prev[i].Packets, Bytes: cur.Bytes - prev[i].Bytes}
}

func rate(n uint64, secs float64) *float64 {
	v := 0.0
	if secs > 0 {
		v = float64(n) / secs
	}
	return &v
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func settingsLine(iface string, s xdp.Settings) string {
	frag := "pass"
	if s.DropFragments {
		frag = "drop"
	}
	sample := "off"
	if s.SampleEvery == 1 {
		sample = "every drop"
	} else if s.SampleEvery > 1 {
		sample = fmt.Sprintf("1 in %d drops", s.SampleEvery)
	}
	return fmt.Sprintf("filter on %s: filter_services=%s fragments=%s rate_limit=%s allow_icmp=%s sampling=%s attack_addrs=%d",
		iface, onOff(s.FilterServices), frag, onOff(s.RateLimit), onOff(s.AllowICMP), sample, s.AttackEntries)
}

func writeReport(w io.Writer, r report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rates := r.IntervalSeconds > 0
	if rates {
		fmt.Fprintln(tw, "REASON\tVERDICT\tPKTS/S\tBYTES/S\tPACKETS\tBYTES")
	} else {
		fmt.Fprintln(tw, "REASON\tVERDICT\tPACKETS\tBYTES")
	}
	line := func(reason string, x row) {
		if rates {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%d\t%d\n", reason, x.Verdict, *x.PacketsPerSecond, *x.BytesPerSecond, x.Packets, x.Bytes)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", reason, x.Verdict, x.Packets, x.Bytes)
		}
	}
	for _, x := range r.Reasons {
		line(x.Reason, x)
	}
	for _, x := range r.Totals {
		line("total", x)
	}
	return tw.Flush()
}
