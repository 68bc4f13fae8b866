package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/bench"
)

func newBenchKeylessCmd(f *benchFlags) *cobra.Command {
	opts := bench.DefaultKeylessOptions()
	cmd := &cobra.Command{
		Use:   "keyless [--json] [--rounds N] [--duration 1s]",
		Short: "Signatures per second through the keyless client and key server vs signing in process",
		Long: `Starts a key server (mutual TLS on loopback, generated PKI, ECDSA P-256 and
RSA-2048 keys) and a keyless client in this process, then measures in
interleaved rounds signatures per second and p50/p99 latency through the
client and server with 1, 16 and 256 requests in flight, against signing
with the same keys in process. The headline ratio is ECDSA P-256 remote
over local at the best depth. Client, server and local signers share the
machine's CPUs (not pinned); the output says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Rounds = f.rounds
			opts.Logger = logger(cmd)
			res, err := bench.RunKeyless(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("bench keyless: %w", err)
			}
			return printBench(cmd, f, res)
		},
	}
	cmd.Flags().DurationVar(&opts.Duration, "duration", opts.Duration, "one timed run per depth, key type and side")
	cmd.Flags().IntSliceVar(&opts.Depths, "depths", opts.Depths, "requests in flight to measure")
	return cmd
}
