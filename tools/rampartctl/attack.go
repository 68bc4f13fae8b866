package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// newAttackCmd switches destinations into and out of attack mode, where
// the profile's stricter per-source limits apply to traffic toward them.
func (a *app) newAttackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attack",
		Short: "Switch attack mode (stricter per-source limits) per destination address",
	}
	set := func(on bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			addr, err := parseAddr(args[0])
			if err != nil {
				return err
			}
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.SetAttack(addr, on); err != nil {
				return err
			}
			if on {
				fmt.Fprintf(cmd.OutOrStdout(), "attack mode on for %s: attack limits apply to traffic toward it\n", addr)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "attack mode off for %s: normal limits apply\n", addr)
			}
			return nil
		}
	}
	on := &cobra.Command{Use: "on ADDR", Short: "Apply the attack limits to traffic toward ADDR",
		Args: cobra.ExactArgs(1), RunE: set(true)}
	off := &cobra.Command{Use: "off ADDR", Short: "Return ADDR to the normal limits",
		Args: cobra.ExactArgs(1), RunE: set(false)}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show the addresses in attack mode",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			addrs, err := m.AttackAddrs()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				out := make([]string, 0, len(addrs))
				for _, a := range addrs {
					out = append(out, a.String())
				}
				return json.NewEncoder(w).Encode(out)
			}
			if len(addrs) == 0 {
				fmt.Fprintln(w, "no address is in attack mode")
			}
			for _, a := range addrs {
				fmt.Fprintln(w, a)
			}
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.AddCommand(on, off, list)
	return cmd
}

// newServicesCmd lists what the filter serves: with service filtering on,
// everything else is dropped as not_served.
func (a *app) newServicesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List the served (address, protocol, port) entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			svcs, err := m.Services()
			if err != nil {
				return err
			}
			settings, err := m.Settings()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				type svc struct {
					Addr  string `json:"addr"`
					Proto string `json:"proto"`
					Port  uint16 `json:"port"`
				}
				out := struct {
					FilterServices bool  `json:"filter_services"`
					Services       []svc `json:"services"`
				}{FilterServices: settings.FilterServices, Services: []svc{}}
				for _, s := range svcs {
					out.Services = append(out.Services, svc{s.Addr.String(), protoName(s.Proto), s.Port})
				}
				return json.NewEncoder(w).Encode(out)
			}
			if !settings.FilterServices {
				fmt.Fprintln(w, "service filtering is off: traffic to other ports is not dropped")
			}
			if len(svcs) == 0 {
				fmt.Fprintln(w, "no services configured")
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDR\tPROTO\tPORT")
			for _, s := range svcs {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", s.Addr, protoName(s.Proto), s.Port)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	}
	return fmt.Sprintf("proto_%d", p)
}
