package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Replaced by the real demo (internal/demo) in this change series.
func newDemoCmd() *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "Run the netns demo", RunE: func(*cobra.Command, []string) error {
		return errors.New("demo: not built yet")
	}}
}
