// Command rampart is the edge daemon and its subcommands: run, demo, bench,
// version.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rampart:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rampart",
		Short:         "Rampart edge server: XDP DoS filter in front of a gnet proxy pipeline",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		&cobra.Command{
			Use:   "version",
			Short: "Print the build's version and commit",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("rampart"))
			},
		},
		newRunCmd(),
		newDemoCmd(),
		newBenchCmd(),
	)
	return root
}

// logger builds the process logger from --log-level; logs go to stderr so
// that stdout stays clean for results (--json).
func logger(cmd *cobra.Command) *slog.Logger {
	lvl, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(lvl)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
