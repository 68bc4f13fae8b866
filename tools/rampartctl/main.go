package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/internal/buildinfo"
	"github.com/rampart-edge/rampart/xdp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(xdp.PinRoot).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rampartctl:", err)
		os.Exit(1)
	}
}

// app is the state shared by the subcommands of one root command: the
// global flags and where pin folders live. Tests build their own with a
// private pin root.
type app struct {
	pinRoot string // xdp.PinRoot outside tests
	iface   string // --iface
	pinDir  string // --pin-dir
}

func newRootCmd(pinRoot string) *cobra.Command {
	a := &app{pinRoot: pinRoot}
	root := &cobra.Command{
		Use:   "rampartctl",
		Short: "Operate a Rampart edge: XDP stats, block and allow lists, attack mode, drop capture, replay, flows",
		Long: `rampartctl works on the XDP filter's maps pinned under ` + pinRoot + `/IFACE,
so it keeps working while the daemon is down. With one interface there,
--iface may be left out. flows and visitors read the daemon's tables
through its admin listener instead (flows --bpf reads the maps).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.iface, "iface", "",
		"interface whose filter to use (default: the only one under "+pinRoot+")")
	root.PersistentFlags().StringVar(&a.pinDir, "pin-dir", "",
		"folder of the filter's pinned maps (overrides --iface)")
	root.AddCommand(
		&cobra.Command{
			Use:   "version",
			Short: "Print the build's version and commit",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("rampartctl"))
			},
		},
		a.newXDPCmd(),
		a.newListCmd(xdp.Blocklist),
		a.newListCmd(xdp.Allowlist),
		a.newAttackCmd(),
		a.newServicesCmd(),
		a.newDropsCmd(),
		a.newReplayCmd(),
		a.newFlowsCmd(),
		a.newVisitorsCmd(),
	)
	return root
}

// errNoState says that no filter has pinned its maps yet; replay offers
// --profile instead.
var errNoState = errors.New("no filter state")

// resolvePinDir finds the pin folder: --pin-dir, else --iface, else the
// only interface folder under the pin root.
func (a *app) resolvePinDir() (dir, iface string, err error) {
	switch {
	case a.pinDir != "":
		if _, err := os.Stat(a.pinDir); err != nil {
			return "", "", stateError(a.pinDir, err)
		}
		return a.pinDir, filepath.Base(a.pinDir), nil
	case a.iface != "":
		if strings.ContainsAny(a.iface, "/\x00") || a.iface == "." || a.iface == ".." {
			return "", "", fmt.Errorf("invalid interface name %q", a.iface)
		}
		dir := filepath.Join(a.pinRoot, a.iface)
		if _, err := os.Stat(dir); err != nil {
			return "", "", stateError(dir, err)
		}
		return dir, a.iface, nil
	}
	entries, err := os.ReadDir(a.pinRoot)
	if errors.Is(err, fs.ErrNotExist) {
		entries, err = nil, nil
	}
	if err != nil {
		return "", "", stateError(a.pinRoot, err)
	}
	var ifaces []string
	for _, e := range entries {
		if e.IsDir() {
			ifaces = append(ifaces, e.Name())
		}
	}
	slices.Sort(ifaces)
	switch len(ifaces) {
	case 0:
		return "", "", fmt.Errorf("%w under %s: is rampart running? (rampart run --iface IFACE)", errNoState, a.pinRoot)
	case 1:
		return filepath.Join(a.pinRoot, ifaces[0]), ifaces[0], nil
	}
	return "", "", fmt.Errorf("filters on several interfaces under %s (%s): pick one with --iface",
		a.pinRoot, strings.Join(ifaces, ", "))
}

// stateError explains why a pin folder cannot be used.
func stateError(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s: is rampart running on that interface? (rampart run --iface IFACE)", errNoState, dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("read %s: permission denied: run rampartctl as root (it needs CAP_BPF and access to /sys/fs/bpf)", dir)
	}
	return fmt.Errorf("read %s: %w", dir, err)
}

// openMaps opens the pinned maps of the selected filter. The caller closes
// them.
func (a *app) openMaps() (*xdp.Maps, string, error) {
	dir, iface, err := a.resolvePinDir()
	if err != nil {
		return nil, "", err
	}
	m, err := xdp.OpenPinned(dir)
	if err != nil {
		return nil, "", err
	}
	return m, iface, nil
}

// logger writes the xdp package's warnings to the command's stderr; stdout
// stays clean for results (--json).
func logger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
