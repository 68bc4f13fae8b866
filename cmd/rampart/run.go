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
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/admin"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

func newRunCmd() *cobra.Command {
	var profile, iface, admin, pinDir string
	cmd := &cobra.Command{
		Use:   "run [--iface IFACE] [--profile NAME|FILE]",
		Short: "Run the edge: the XDP filter and the HTTP pipeline, until stopped",
		Long: `Run loads the profile, attaches the XDP filter to the interface given with
--iface (native mode, generic when the driver lacks it), keeps its maps pinned under
/sys/fs/bpf/rampart/IFACE so a restart keeps the blocklist, sweeps expired
list entries, keeps the flow and visitor tables (expiring idle entries),
runs the HTTP pipeline of the profile's pipeline section (zones, origins),
and serves on the admin listener Prometheus metrics (/metrics) and the
tables as JSON lines (/flows, /visitors: see rampartctl flows).
Without --iface no filter is attached (a pipeline-only edge, for tests and
benchmarks). SIGHUP reloads the profile; a bad profile is rejected and the
old one keeps running. SIGINT/SIGTERM finish in-flight requests (up to
pipeline.shutdown_timeout), detach the filter and exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pinDir == "" && iface != "" {
				pinDir = xdp.PinDir(iface)
			}
			return runEdge(cmd.Context(), logger(cmd), profile, iface, admin, pinDir)
		},
	}
	cmd.Flags().StringVar(&profile, "profile", profiles.DefaultName, "embedded profile name or profile file")
	cmd.Flags().StringVar(&iface, "iface", "", "interface facing the Internet; without it no XDP filter is attached")
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:9180", "admin listener for /metrics, /flows and /visitors (localhost or unix:/path; empty for none)")
	cmd.Flags().StringVar(&pinDir, "pin-dir", "", "bpffs folder for the filter's maps (default /sys/fs/bpf/rampart/IFACE)")
	return cmd
}

func runEdge(ctx context.Context, log *slog.Logger, profile, iface, adminAddr, pinDir string) error {
	spec, err := profiles.Load(profile)
	if err != nil {
		return err
	}
	if iface == "" && spec.Pipeline == nil {
		return errors.New("nothing to run: no --iface for the XDP filter and no pipeline section in the profile")
	}
	// The tables before the filter: failing to map them must not leave a
	// filter attached.
	tables, err := flowtable.NewTables(spec.FlowTable)
	if err != nil {
		return fmt.Errorf("flow tables: %w", err)
	}
	defer tables.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(flowtable.NewCollector(tables))

	var f *xdp.Filter
	if iface != "" {
		f, err = xdp.Load(xdp.LoadOptions{PinDir: pinDir, Capacity: spec.XDP.Capacity, Logger: log})
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
		reg.MustRegister(xdp.NewCollector(f.Maps()))
	} else {
		log.Warn("no --iface: the XDP filter is not attached")
	}
	reloadOK := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rampart_config_last_reload_successful",
		Help: "1 when the last profile (re)load succeeded, 0 when it was rejected and the previous one kept running."})
	swept := prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_xdp_list_expired_total",
		Help: "Allow and block list entries removed by the sweeper after they expired."})
	reg.MustRegister(reloadOK, swept)
	reloadOK.Set(1)

	if adminAddr != "" {
		adm, err := serveAdmin(adminAddr, reg, tables, log)
		if err != nil {
			return err
		}
		defer adm.stop() // before tables.Close, deferred earlier
	}

	var pl *edgePipeline
	if spec.Pipeline != nil {
		pl, err = startPipeline(spec, tables, reg, log)
		if err != nil {
			return err
		}
		// Deferred after the tables' Close: runs before it.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), spec.Pipeline.ShutdownTimeout+10*time.Second)
			defer cancel()
			if err := pl.shutdown(sctx); err != nil {
				log.Error("pipeline shutdown", "err", err)
			}
		}()
	}
	mode := "none"
	if f != nil {
		mode = f.Mode()
	}
	log.Info("edge running", "profile", spec.Name, "iface", iface, "mode", mode, "admin", adminAddr)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sweep := time.NewTicker(spec.XDP.SweepInterval)
	defer sweep.Stop()
	expire := time.NewTicker(spec.FlowTable.ExpireInterval)
	defer expire.Stop()
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
			if err == nil && (next.FlowTable.Flows != spec.FlowTable.Flows || next.FlowTable.Visitors != spec.FlowTable.Visitors) {
				err = flowtable.ErrResize
			}
			if err == nil && pl != nil {
				err = pl.checkReload(next)
			}
			if err == nil && f != nil {
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
			if err := tables.Reconfigure(next.FlowTable); err != nil {
				// Checked above, so only a bug gets here: the filter runs
				// the new profile, the tables keep the old timeouts.
				reloadOK.Set(0)
				log.Error("flow table reconfiguration failed after the filter took the new profile", "err", err)
				continue
			}
			if pl != nil {
				if err := pl.reload(next); err != nil {
					reloadOK.Set(0)
					log.Error("zone reload failed after the filter took the new profile", "err", err)
					continue
				}
			}
			spec = next
			sweep.Reset(spec.XDP.SweepInterval)
			expire.Reset(spec.FlowTable.ExpireInterval)
			reloadOK.Set(1)
			log.Info("profile reloaded", "profile", spec.Name)
		case <-sweep.C:
			if f == nil {
				continue
			}
			n, err := f.Maps().Sweep()
			if err != nil {
				log.Warn("sweep of expired list entries failed", "err", err)
			}
			swept.Add(float64(n))
		case <-expire.C:
			// Walks both tables whole (under a second at ten million
			// entries); counted in rampart_flowtable_expired_total.
			tables.ExpireIdle(time.Now())
		}
	}
}

// adminServer is the admin listener. Its table handlers read memory that
// Tables.Close unmaps, so stop waits for them to return before the
// tables may close.
type adminServer struct {
	srv    *http.Server
	cancel context.CancelFunc // ends every request's context: dumps stop at their next check
	mu     sync.RWMutex       // held shared by each table request, exclusively by stop
	closed bool
}

// serveAdmin serves /metrics, /flows and /visitors on a TCP address or
// "unix:/path".
func serveAdmin(addr string, reg *prometheus.Registry, tables *flowtable.Tables, log *slog.Logger) (*adminServer, error) {
	network, address := "tcp", addr
	if len(addr) > 5 && addr[:5] == "unix:" {
		network, address = "unix", addr[5:]
		_ = os.Remove(address)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	a := &adminServer{cancel: cancel}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Default bounds: 10 000 lines unless limit= says otherwise (limit=0
	// streams a whole table), top= at most 100 000.
	mux.Handle("GET /flows", a.guard(admin.Flows(tables.Flows, admin.Options{})))
	mux.Handle("GET /visitors", a.guard(admin.Visitors(tables.Visitors, admin.Options{})))
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	return a, nil
}

// guard runs h only while the tables are open.
func (a *adminServer) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.RLock()
		defer a.mu.RUnlock()
		if a.closed {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// stop closes the listener and its connections (which unblocks a dump
// writing to a slow client) and returns once no table handler runs.
func (a *adminServer) stop() {
	a.cancel()
	a.srv.Close()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
}
