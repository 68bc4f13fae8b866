package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/internal/admin"
)

func (a *app) newVisitorsCmd() *cobra.Command {
	var f tableFlags
	cmd := &cobra.Command{
		Use:   "visitors [--src PREFIX] [--min-score N] [--top N --by rate|errors|blocks|score] [--limit N] [--json]",
		Short: "Show the daemon's visitor table: behaviour per source address (IPv6 per /64)",
		Long: `visitors reads the running daemon's visitor table through its admin
listener (--admin, default ` + defaultAdmin + `): one row per source (an IPv4
address or an IPv6 /64) with its request rate over the last seconds,
errors, blocks, connections, threat score and verdict. --src selects the
visitors overlapping a prefix (an IPv6 address selects its /64); --top N
ranks by rate (default), errors, blocks or score.`,
		Example: `  rampartctl visitors --top 20 --by rate
  rampartctl visitors --src 2001:db8::/32 --min-score 70 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch f.by {
			case "", "rate", "errors", "blocks", "score":
			default:
				return fmt.Errorf("invalid --by %q: visitors rank by rate, errors, blocks or score", f.by)
			}
			q, err := f.query(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			var t *table
			if !f.asJSON {
				t = newTable(cmd.OutOrStdout(), []column{{"PREFIX", 18}, {"AGE", 6}, {"IDLE", 6}, {"RATE/S", 7},
					{"REQS", 6}, {"ERRORS", 0}, {"BLOCKS", 0}, {"CONNS", 0}, {"SCORE", 0}, {"VERDICT", 0}})
			}
			rows, hdr, err := fetchLines(cmd, f.admin, "/visitors", q, func(line []byte) error {
				if t == nil {
					_, err := cmd.OutOrStdout().Write(line)
					return err
				}
				var r admin.VisitorRecord
				if err := json.Unmarshal(line, &r); err != nil {
					return fmt.Errorf("daemon sent a malformed visitor: %w", err)
				}
				t.row(r.Prefix, since(now, r.FirstSeen), since(now, r.LastSeen), strconv.FormatFloat(r.Rate, 'f', 2, 64),
					strconv.FormatUint(r.RequestsWindow, 10), strconv.FormatUint(uint64(r.Errors), 10),
					strconv.FormatUint(uint64(r.Blocks), 10), strconv.FormatUint(uint64(r.Connections), 10),
					strconv.Itoa(int(r.Score)), r.Verdict)
				return t.err
			})
			if err != nil {
				return err
			}
			return summarise(cmd, t, rows, hdr, "visitor", f.top > 0)
		},
	}
	f.register(cmd, "rate (default), errors, blocks or score", false)
	return cmd
}
