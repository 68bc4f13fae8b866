package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show the XDP filter stopping floods between network namespaces (root)",
		Long: `Demo builds an edge, a client, an attacker and an origin as network
namespaces on one bridge (198.18.0.0/24). The origin runs an HTTP server;
the edge runs Rampart's HTTP pipeline ("rampart run", this binary, with a
profile derived from edge-default) in front of it, behind the XDP filter,
which the demo attaches to the edge's interface with the profile's settings
(plus the origin on the allow list, so its replies get in). For a few
seconds the client makes HTTP requests through the edge to the origin while
the attacker floods the edge: a SYN flood from one source, UDP reflection,
spoofed sources from a blocked prefix and malformed frames. It prints how
many requests the origin served, their latency and statuses, and the
filter's counters by reason, then stops the pipeline and removes everything
it created.

It needs root: it creates network namespaces and loads an XDP program.
Nothing leaves the namespaces it creates. Flood sizes are packet counts;
-1 turns a flood off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return demo.ErrNeedsRoot
			}
			_, err := demo.Run(cmd.Context(), cmd.OutOrStdout(), logger(cmd), opts)
			if errors.Is(err, cmd.Context().Err()) && cmd.Context().Err() != nil {
				return fmt.Errorf("demo interrupted (everything it created was removed): %w", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Profile, "profile", "edge-default", "embedded profile name or profile file for the filter (the pipeline runs edge-default's)")
	f.IntVar(&opts.SYNFlood, "syn-flood", demo.DefaultSYNFlood, "SYN packets from one source (over its SYN rate limit)")
	f.IntVar(&opts.Reflection, "reflection", demo.DefaultReflection, "UDP reflection packets (amplification source ports)")
	f.IntVar(&opts.Blocked, "blocked", demo.DefaultBlocked, "packets from spoofed sources in the blocked prefix")
	f.IntVar(&opts.Malformed, "malformed", demo.DefaultMalformed, "malformed packets (bad TCP flags, bad IHL, fragments)")
	f.IntVar(&opts.Requests, "requests", demo.DefaultRequests, "legitimate HTTP requests during the floods, one connection each")
	f.DurationVar(&opts.Duration, "duration", demo.DefaultDuration, "how long the floods and the requests last")
	f.DurationVar(&opts.Timeout, "timeout", demo.DefaultTimeout, "bound on the whole demo, set-up and clean-up included")
	return cmd
}
