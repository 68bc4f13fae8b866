package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/bench"
)

// benchFlags are shared by every `rampart bench` subcommand.
type benchFlags struct {
	json   bool
	rounds int
}

// newBenchCmd groups the benchmarks. Each one is a subcommand built by a
// newBench<Name>Cmd that runs a bench.Run<Name> and hands the result to
// printBench, so adding `bench flowtable`, `bench http` or `bench keyless`
// is one constructor and one line in AddCommand.
func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Rampart against baselines on this machine",
		Long: `Each benchmark measures Rampart and its baselines in the same run, in
interleaved rounds, and reports medians and ratios (see shared/BENCH.md).
The default output is a table; --json prints one JSON object as the last
line of stdout. Progress logs go to stderr.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print one JSON object on stdout instead of a table")
	cmd.PersistentFlags().IntVar(&f.rounds, "rounds", 5, "interleaved rounds; figures are medians over rounds")
	cmd.AddCommand(newBenchXDPCmd(&f), newBenchFlowtableCmd(&f), newBenchHTTPCmd(&f), newBenchKeylessCmd(&f))
	return cmd
}

func newBenchXDPCmd(f *benchFlags) *cobra.Command {
	opts := bench.DefaultXDPOptions()
	var noLive bool
	cmd := &cobra.Command{
		Use:   "xdp [--json] [--rounds N] [--repeat N] [--no-live]",
		Short: "Per-packet cost of the XDP filter vs bare XDP and xdp-filter; live drop cost on veth vs nftables",
		Long: `Loads the filter with a realistic profile (edge-default plus 10,000
blocked prefixes, 1,000 served services, rate limits on) and times it with
BPF_PROG_TEST_RUN on legitimate, blocked and rate-limited packets, beside
bare XDP_DROP and XDP_PASS programs and xdp-tools' xdp-filter (package
xdp-tools) on the same frames, on CPU 1.

Then, as root and unless --no-live, floods a veth in namespaces it creates
(sender pinned to CPU 0, where veth runs the receive path) and compares the
CPU time per dropped frame of the filter in native mode, an nftables
netdev-ingress drop rule and a bare XDP_DROP, while a third namespace keeps
opening TCP connections through the filter. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Rounds = f.rounds
			opts.Live = !noLive
			opts.Logger = logger(cmd)
			res, err := bench.RunXDP(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("bench xdp: %w", err)
			}
			return printBench(cmd, f, res)
		},
	}
	cmd.Flags().IntVar(&opts.Repeat, "repeat", opts.Repeat, "BPF_PROG_TEST_RUN repeat count per timing")
	cmd.Flags().BoolVar(&noLive, "no-live", false, "skip the live veth measurement")
	cmd.Flags().IntVar(&opts.LiveFrames, "live-frames", opts.LiveFrames, "frames per live flood")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", opts.Seed, "seed of the generated blocklist")
	return cmd
}

func newBenchFlowtableCmd(f *benchFlags) *cobra.Command {
	opts := bench.DefaultFlowtableOptions()
	var noMem bool
	cmd := &cobra.Command{
		Use:   "flowtable [--json] [--rounds N] [--ops N] [--keys N] [--no-mem]",
		Short: "Flow table throughput vs sync.Map and a map behind a sync.RWMutex; bytes per flow",
		Long: `Prefills Rampart's flow table (capacity twice --keys), a sync.Map and a
map behind a sync.RWMutex with the same 5-tuple keys (IPv4 and IPv6) and
64-byte values, then runs the same pre-generated operation streams on each,
in interleaved rounds: a mixed workload (45 % get, 45 % update, 5 % insert,
5 % delete, size kept stable) and a read-only one, with 1, 2 and 4
goroutines pinned to CPUs (listed in the output). The headline figures are
the mixed workload with 2 goroutines.

Then, unless --no-mem, fills each with --mem-flows flows (48-byte
flowtable.Flow values), one after the other, and reports bytes per flow:
the table's mapped memory and resident-set growth, and the Go structures'
live-heap and resident-set growth. At 10 million flows this needs about
3 GB of memory for a short while.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Rounds = f.rounds
			opts.Memory = !noMem
			opts.Logger = logger(cmd)
			res, err := bench.RunFlowtable(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("bench flowtable: %w", err)
			}
			return printBench(cmd, f, res)
		},
	}
	cmd.Flags().IntVar(&opts.Ops, "ops", opts.Ops, "operations per timed run, split among its goroutines")
	cmd.Flags().IntVar(&opts.Keys, "keys", opts.Keys, "prefilled keys; the table's capacity is twice this")
	cmd.Flags().BoolVar(&noMem, "no-mem", false, "skip the bytes-per-flow measurement")
	cmd.Flags().IntVar(&opts.MemFlows, "mem-flows", opts.MemFlows, "flows of the bytes-per-flow measurement")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", opts.Seed, "seed of the generated keys and operations")
	return cmd
}

func printBench(cmd *cobra.Command, f *benchFlags, res bench.Result) error {
	if f.json {
		return bench.WriteJSON(cmd.OutOrStdout(), res)
	}
	return res.WriteTable(cmd.OutOrStdout())
}
