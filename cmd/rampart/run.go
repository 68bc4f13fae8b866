package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

func newRunCmd() *cobra.Command {
	var profile, iface, admin, pinDir string
	cmd := &cobra.Command{
		Use:   "run --iface IFACE [--profile NAME|FILE]",
		Short: "Run the edge: attach the XDP filter and serve metrics until stopped",
		Long: `Run loads the profile, attaches the XDP filter to the interface (native
mode, generic when the driver lacks it), keeps its maps pinned under
/sys/fs/bpf/rampart/IFACE so a restart keeps the blocklist, sweeps expired
list entries, and serves Prometheus metrics on the admin listener.
SIGHUP reloads the profile; a bad profile is rejected and the old one keeps
running. SIGINT/SIGTERM detach the filter and exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pinDir == "" {
				pinDir = xdp.PinDir(iface)
			}
			return runEdge(cmd.Context(), logger(cmd), profile, iface, admin, pinDir)
		},
	}
	cmd.Flags().StringVar(&profile, "profile", profiles.DefaultName, "embedded profile name or profile file")
	cmd.Flags().StringVar(&iface, "iface", "", "interface facing the Internet (required)")
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:9180", "admin listener for /metrics (localhost or unix:/path)")
	cmd.Flags().StringVar(&pinDir, "pin-dir", "", "bpffs folder for the filter's maps (default /sys/fs/bpf/rampart/IFACE)")
	_ = cmd.MarkFlagRequired("iface")
	return cmd
}

func runEdge(ctx context.Context, log *slog.Logger, profile, iface, admin, pinDir string) error {
	spec, err := profiles.Load(profile)
	if err != nil {
		return err
	}
	f, err := xdp.Load(xdp.LoadOptions{PinDir: pinDir, Capacity: spec.XDP.Capacity, Logger: log})
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Configure(spec.XDP); err != nil {
		return fmt.Errorf("configure filter: %w", err)
	}
	if err := f.Attach(iface); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(xdp.NewCollector(f.Maps()))
	reloadOK := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rampart_config_last_reload_successful",
		Help: "1 when the last profile (re)load succeeded, 0 when it was rejected and the previous one kept running."})
	swept := prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_xdp_list_expired_total",
		Help: "Allow and block list entries removed by the sweeper after they expired."})
	reg.MustRegister(reloadOK, swept)
	reloadOK.Set(1)

	srv, err := serveAdmin(admin, reg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Info("edge running", "profile", spec.Name, "iface", iface, "mode", f.Mode(), "admin", admin)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sweep := time.NewTicker(spec.XDP.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case <-hup:
			next, err := profiles.Load(profile)
			if err == nil && next.XDP.Capacity != spec.XDP.Capacity {
				err = errors.New("capacity changes need a restart (maps are sized at load)")
			}
			if err == nil {
				if err = f.Configure(next.XDP); err != nil {
					// Configure may have applied part of the new profile
					// before failing (a list full, say): put the old back.
					if rerr := f.Configure(spec.XDP); rerr != nil {
						reloadOK.Set(0)
						log.Error("profile reload failed part way and the previous profile could not be restored: the filter runs a mix of both",
							"err", err, "restore_err", rerr)
						continue
					}
				}
			}
			if err != nil {
				reloadOK.Set(0)
				log.Error("profile reload rejected, previous profile keeps running", "err", err)
				continue
			}
			spec = next
			sweep.Reset(spec.XDP.SweepInterval)
			reloadOK.Set(1)
			log.Info("profile reloaded", "profile", spec.Name)
		case <-sweep.C:
			n, err := f.Maps().Sweep()
			if err != nil {
				log.Warn("sweep of expired list entries failed", "err", err)
			}
			swept.Add(float64(n))
		}
	}
}

// serveAdmin serves /metrics on a TCP address or "unix:/path".
func serveAdmin(addr string, reg *prometheus.Registry, log *slog.Logger) (*http.Server, error) {
	network, address := "tcp", addr
	if len(addr) > 5 && addr[:5] == "unix:" {
		network, address = "unix", addr[5:]
		_ = os.Remove(address)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	return srv, nil
}
