package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/xdp"
)

// newListCmd builds "block" or "allow": add, del and list against the
// pinned tries.
func (a *app) newListCmd(l xdp.List) *cobra.Command {
	name, verb, what := "block", "blocked", "dropped until the entry expires"
	if l == xdp.Allowlist {
		name, verb, what = "allow", "allowed", "passed without any other check"
	}
	cmd := &cobra.Command{
		Use:   name,
		Short: fmt.Sprintf("Manage the %s (sources %s)", l, what),
	}

	var ttl time.Duration
	add := &cobra.Command{
		Use:   "add PREFIX",
		Short: fmt.Sprintf("Put a prefix on the %s (a bare address means /32 or /128)", l),
		Example: fmt.Sprintf("  rampartctl %s add 198.51.100.0/24 --ttl 10m\n  rampartctl %s add 2001:db8:bad::1",
			name, name),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePrefix(args[0])
			if err != nil {
				return err
			}
			if ttl < 0 {
				return fmt.Errorf("invalid --ttl %s: must be positive, or 0 for no expiry", ttl)
			}
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Add(l, p, ttl); err != nil {
				return err
			}
			if ttl == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s (no expiry)\n", verb, p)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s for %s (until %s)\n", verb, p, ttl,
					time.Now().Add(ttl).Format(time.RFC3339))
			}
			return nil
		},
	}
	add.Flags().DurationVar(&ttl, "ttl", 0, "remove the entry after this long (0: never)")

	del := &cobra.Command{
		Use:     "del PREFIX",
		Aliases: []string{"delete", "rm"},
		Short:   fmt.Sprintf("Take a prefix off the %s", l),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePrefix(args[0])
			if err != nil {
				return err
			}
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Delete(l, p); err != nil {
				if errors.Is(err, xdp.ErrNotListed) {
					return fmt.Errorf("%s is not on the %s (list shows what is)", p, l)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from the %s\n", p, l)
			return nil
		},
	}

	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   fmt.Sprintf("Show the %s: prefix, added, expires, remaining", l),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			entries, err := m.Entries(l)
			if err != nil {
				return err
			}
			if asJSON {
				return writeEntriesJSON(cmd.OutOrStdout(), entries, time.Now())
			}
			if len(entries) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "the %s is empty\n", l)
				return nil
			}
			return writeEntries(cmd.OutOrStdout(), entries, time.Now())
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")

	cmd.AddCommand(add, del, list)
	return cmd
}

// remaining is the entry's time left as the table shows it.
func remaining(e xdp.ListEntry, now time.Time) string {
	switch {
	case e.Expires.IsZero():
		return "-"
	case !e.Expires.After(now):
		return "expired (until swept)"
	}
	return e.Expires.Sub(now).Round(time.Second).String()
}

func writeEntries(w io.Writer, entries []xdp.ListEntry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tADDED\tEXPIRES\tREMAINING")
	for _, e := range entries {
		expires := "never"
		if !e.Expires.IsZero() {
			expires = e.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Prefix, e.Added.Format(time.RFC3339), expires, remaining(e, now))
	}
	return tw.Flush()
}

type entryJSON struct {
	Prefix  string     `json:"prefix"`
	Added   time.Time  `json:"added"`
	Expires *time.Time `json:"expires"` // null: never
	// RemainingSeconds is null for entries that never expire and 0 for
	// expired ones the sweeper has not removed yet.
	RemainingSeconds *float64 `json:"remaining_seconds"`
}

func writeEntriesJSON(w io.Writer, entries []xdp.ListEntry, now time.Time) error {
	out := make([]entryJSON, 0, len(entries))
	for _, e := range entries {
		j := entryJSON{Prefix: e.Prefix.String(), Added: e.Added.Round(time.Millisecond)}
		if !e.Expires.IsZero() {
			exp := e.Expires.Round(time.Millisecond)
			left := max(0, e.Expires.Sub(now).Seconds())
			j.Expires, j.RemainingSeconds = &exp, &left
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	return enc.Encode(out)
}
