// Command rampart-keyserver is Rampart's keyless key server: it holds the
// private keys and signs for the edge over mutually authenticated TLS
// (port 2407), and optionally a local unix socket. See docs/keyserver.md.
//
// Signals: SIGHUP reloads the key store (and the TLS certificates) without
// dropping connections; SIGINT and SIGTERM stop it gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/rampart-edge/rampart/internal/buildinfo"
	"github.com/rampart-edge/rampart/keyless/server"
)

func main() {
	if err := newRootCmd(os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rampart-keyserver:", err)
		os.Exit(1)
	}
}

func newRootCmd(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rampart-keyserver",
		Short: "Keyless SSL key server: signs for the edge with keys it never hands out",
		Long: `rampart-keyserver holds private keys and answers the edge's keyless signing and
decryption requests over mutual TLS (default port 2407) and an optional unix socket.

Settings come from --config (YAML) and the flags below; a flag that is set wins.
SIGHUP reloads the key store and certificates; SIGINT/SIGTERM stop gracefully.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := buildConfig(cmd)
			if err != nil {
				return err
			}
			level, _ := cmd.Flags().GetString("log-level")
			format, _ := cmd.Flags().GetString("log-format")
			logger, err := newLogger(stderr, level, format)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return run(ctx, cfg, logger, hup, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringP("config", "c", "", "YAML configuration file")
	fl.String("listen", "", `mutual-TLS listen address (default ":2407"; "none" for a unix socket only)`)
	fl.String("unix-socket", "", "unix socket path (none by default)")
	fl.String("ca-file", "", "PEM CA certificates that client certificates must chain to")
	fl.String("cert-file", "", "PEM server certificate chain")
	fl.String("key-file", "", "PEM server certificate key")
	fl.StringArray("keys", nil, "a key store: directory, key file or pkcs11: URI (repeat for several)")
	fl.String("metrics-addr", "", `address of the /metrics listener (default "`+server.DefaultMetricsAddr+`"; "none" to disable)`)
	fl.Int("workers", 0, "signing goroutines (default: one per CPU)")
	fl.Int("max-pending-per-conn", 0, fmt.Sprintf("requests pending per connection before reading pauses (default %d)", server.DefaultMaxPendingPerConn))
	fl.String("log-level", "info", "log level: debug, info, warn, error")
	fl.String("log-format", "text", "log format: text or json")
	cmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the build's version, commit, crypto backend and PKCS#11 support",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "%s crypto=%s pkcs11=%v\n",
				buildinfo.String("rampart-keyserver"), server.CryptoBackend(), server.PKCS11Available())
		},
	})
	return cmd
}

// buildConfig reads --config, if any, and applies the flags that were set.
func buildConfig(cmd *cobra.Command) (server.Config, error) {
	fl := cmd.Flags()
	var cfg server.Config
	if path, _ := fl.GetString("config"); path != "" {
		c, err := server.LoadConfig(path)
		if err != nil {
			return cfg, err
		}
		cfg = *c
	}
	str := func(name string, dst *string) {
		if fl.Changed(name) {
			*dst, _ = fl.GetString(name)
		}
	}
	num := func(name string, dst *int) {
		if fl.Changed(name) {
			*dst, _ = fl.GetInt(name)
		}
	}
	str("listen", &cfg.Listen)
	str("unix-socket", &cfg.UnixSocket)
	str("ca-file", &cfg.CAFile)
	str("cert-file", &cfg.CertFile)
	str("key-file", &cfg.KeyFile)
	str("metrics-addr", &cfg.MetricsAddr)
	if fl.Changed("keys") {
		cfg.Keys, _ = fl.GetStringArray("keys")
	}
	num("workers", &cfg.Workers)
	num("max-pending-per-conn", &cfg.MaxPendingPerConn)
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// ready, when not nil, receives the bound addresses once serving (tests).
type addrs struct {
	tcp, unix, metrics string
}

// run serves until ctx ends, reloading on each value from hup.
func run(ctx context.Context, cfg server.Config, logger *slog.Logger, hup <-chan os.Signal, ready chan<- addrs) error {
	log := logger.With("component", "cmd/rampart-keyserver")
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := server.New(cfg, logger, reg)
	if err != nil {
		return err
	}
	cfg = srv.Config()
	log.Info("starting", slog.String("version", buildinfo.String("rampart-keyserver")),
		slog.String("crypto", server.CryptoBackend()), slog.Int("workers", cfg.Workers),
		slog.Int("max_pending_per_conn", cfg.MaxPendingPerConn))

	var got addrs
	errc := make(chan error, 3)
	serving := 0
	if cfg.Listen != server.ListenNone {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("listen: %w", err)
		}
		got.tcp = ln.Addr().String()
		serving++
		go func() { errc <- srv.Serve(ln) }()
	}
	if cfg.UnixSocket != "" {
		ln, err := listenUnix(cfg.UnixSocket)
		if err != nil {
			srv.Close()
			return err
		}
		got.unix = cfg.UnixSocket
		serving++
		go func() { errc <- srv.ServeUnix(ln) }()
	}
	var metricsSrv *http.Server
	if cfg.MetricsAddr != server.ListenNone {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		got.metrics = ln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", slog.Any("err", err))
			}
		}()
		log.Info("serving metrics", slog.String("addr", got.metrics))
	}
	if ready != nil {
		ready <- got
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			break loop
		case <-hup:
			if err := srv.Reload(); err != nil {
				log.Error("reload failed; the previous keys keep serving", slog.Any("err", err))
			} else {
				log.Info("reloaded")
			}
		case err := <-errc:
			serving--
			if err != nil {
				runErr = err
				log.Error("listener failed; stopping", slog.Any("err", err))
				break loop
			}
		}
	}
	if err := srv.Close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	for ; serving > 0; serving-- {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		metricsSrv.Shutdown(sctx)
		cancel()
	}
	if cfg.UnixSocket != "" {
		os.Remove(cfg.UnixSocket)
	}
	return runErr
}

// listenUnix listens on path, replacing a stale socket file left by a
// previous run (never any other kind of file), and restricts it to the
// owner and group: the plain socket trusts whoever can connect.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("unix socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("unix socket %s: another server is listening on it", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}
