package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/bench"
	"github.com/rampart-edge/rampart/profiles"
)

func newBenchHTTPCmd(f *benchFlags) *cobra.Command {
	opts := bench.DefaultHTTPOptions()
	depth := 16
	steering := "off"
	cmd := &cobra.Command{
		Use:   "http [--json] [--rounds N] [--duration 5s] [--connections N]",
		Short: "Rampart vs nginx vs HAProxy as reverse proxies: requests/s, CPU per request, p99",
		Long: `Starts one origin (nginx, one worker, fixed body) and three reverse proxies
in front of it on loopback: Rampart (this binary, "rampart run" with one
event loop and no XDP filter), nginx (one worker) and HAProxy (one
thread), each with configuration files of its own in a temporary folder.
Each proxy is pinned to the proxy CPU; wrk and the origin to the load CPU.
Every round runs wrk (keep-alive connections, fixed duration) against
each proxy in rotating order; figures are medians over rounds. CPU per
request is the proxy's process-tree utime+stime over the wrk run divided
by the requests served: on a 2-core machine the load side saturates
first, so requests/s compares the whole set-up and CPU per request
compares the proxies. Every daemon is stopped by PID at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "rampart-bench-http-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			opts.Rounds = f.rounds
			opts.Logger = logger(cmd)
			opts.Rampart = func(listen, origin netip.AddrPort) *exec.Cmd {
				profile := filepath.Join(dir, "rampart-bench.yaml")
				if err := writeBenchProfile(profile, listen, origin, depth, steering); err != nil {
					// The harness reports the exit and this log line.
					return exec.Command("/bin/sh", "-c", "echo "+fmt.Sprintf("%q", err.Error())+" >&2; exit 1")
				}
				return exec.Command(self, "run", "--profile", profile, "--admin", "")
			}
			res, err := bench.RunHTTP(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("bench http: %w", err)
			}
			return printBench(cmd, f, res)
		},
	}
	cmd.Flags().DurationVar(&opts.Duration, "duration", opts.Duration, "load per proxy per round (whole seconds)")
	cmd.Flags().IntVar(&opts.Connections, "connections", opts.Connections, "wrk keep-alive connections")
	cmd.Flags().IntVar(&opts.ProxyCPU, "proxy-cpu", opts.ProxyCPU, "CPU the proxies are pinned to")
	cmd.Flags().IntVar(&opts.LoadCPU, "load-cpu", opts.LoadCPU, "CPU wrk and the origin are pinned to")
	cmd.Flags().StringVar(&steering, "steering", steering, "Rampart's pipeline steering: hash pins the loop thread, off leaves it to the harness's pinning of the process")
	cmd.Flags().IntVar(&depth, "pipeline-depth", depth, "Rampart's pipeline_depth toward the origin (1: one request per connection at a time)")
	return cmd
}

// writeBenchProfile derives the benchmark's profile from the default one:
// the same filter and tables, plus a one-loop pipeline and one zone.
//
// Steering is off by default: the harness pins the whole process, and a
// loop thread locked for pinning pays, after every poll that finds
// nothing, gnet's runtime.Gosched as two thread hand-offs (futex wake-ups
// and context switches): 10 % more CPU per request measured here (0.90x
// nginx with hash, 0.80x with off). pipeline_depth 16 lets requests
// that arrive while the origin works share one write to it.
func writeBenchProfile(path string, listen, origin netip.AddrPort, depth int, steering string) error {
	base, err := profiles.Source(profiles.DefaultName)
	if err != nil {
		return err
	}
	extra := fmt.Sprintf(`
pipeline:
  listeners: [%q]
  loops: 1
  steering: %s
  tick: 100ms
zones:
  - name: bench
    hosts: ["127.0.0.1", "localhost"]
    origins: [%q]
    max_conns_per_origin: 1024
    max_idle_per_origin: 1024
    pipeline_depth: %d
`, listen.String(), steering, origin.String(), depth)
	data := append(append([]byte{}, base...), extra...)
	if _, err := profiles.Parse(path, data); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
