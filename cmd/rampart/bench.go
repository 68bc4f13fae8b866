package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Replaced by the real benchmarks (bench/) in this change series.
func newBenchCmd() *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Run benchmarks", RunE: func(*cobra.Command, []string) error {
		return errors.New("bench: not built yet")
	}}
}
