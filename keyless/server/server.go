package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is a keyless key server. Create it with New, serve listeners
// with Serve and ServeUnix, stop it with Close.
type Server struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics
	loader *storeLoader
	limit  *logLimiter

	// storeMu orders the swap of store against requests taking a
	// reference to it (see keyStore); it is never held across a key
	// operation.
	storeMu sync.RWMutex
	store   *keyStore

	tlsConfig atomic.Pointer[tls.Config] // nil when no certificates are configured
	reloadMu  sync.Mutex

	jobs      chan *request
	workersWG sync.WaitGroup

	mu        sync.Mutex
	closing   bool
	done      chan struct{} // closed when Close starts
	listeners map[net.Listener]struct{}
	raw       map[net.Conn]struct{} // accepted, not yet served (handshaking)
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New applies cfg's defaults, validates it, loads the key store and the
// TLS certificates, and starts the worker pool. logger may be nil (no
// logs); reg may be nil (metrics are kept but not registered).
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keyserver config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "keyless/server")
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	s := &Server{
		cfg:       cfg,
		logger:    logger,
		m:         newMetrics(reg),
		limit:     newLogLimiter(10, time.Second),
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		raw:       make(map[net.Conn]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	s.loader = &storeLoader{logger: logger, p11: newPKCS11Modules(logger, cfg.Workers)}
	if cfg.CertFile != "" {
		tc, err := loadTLSConfig(cfg)
		if err != nil {
			s.loader.p11.close()
			return nil, err
		}
		s.tlsConfig.Store(tc)
	}
	st, err := s.loader.load(cfg.Keys)
	if err != nil {
		s.loader.p11.close()
		return nil, fmt.Errorf("load keys: %w", err)
	}
	s.store = st
	s.m.reloadOK.Set(1)
	s.setKeyMetrics(st)
	s.logKeys(st)

	// The queue lets readers hand over a burst without waiting for a
	// worker; past it, readers block and so stop reading.
	s.jobs = make(chan *request, 16*cfg.Workers)
	s.m.workers.Set(float64(cfg.Workers))
	for range cfg.Workers {
		s.workersWG.Add(1)
		go s.worker()
	}
	return s, nil
}

// Config returns the configuration in force, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Keys lists the keys of the active store, for tools and tests.
func (s *Server) Keys() []*Key {
	st := s.acquireStore()
	defer st.release()
	return st.sortedKeys()
}

// loadTLSConfig builds the server's mutual-TLS configuration: the
// established server's TLS 1.2 suites, and TLS 1.3.
func loadTLSConfig(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("client CA %s: no PEM certificate in it", cfg.CAFile)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2 suites of the established server; TLS 1.3 suites are
		// not configurable in Go and are all AEADs.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// serverTLS returns the config handed to tls.Server: it defers to the
// current one at each handshake, so Reload can replace certificates.
func (s *Server) serverTLS() (*tls.Config, error) {
	cur := s.tlsConfig.Load()
	if cur == nil {
		return nil, errors.New("keyserver: no TLS certificates configured (cert_file, key_file, ca_file)")
	}
	return &tls.Config{
		MinVersion: cur.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.tlsConfig.Load(), nil
		},
	}, nil
}

// Reload builds a new key store from the configured sources, and reloads
// the TLS certificate and CA, then swaps both in. Connections and
// in-flight requests are not disturbed. On any error nothing changes, the
// old store keeps serving, and the error is returned (and counted).
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	if err != nil {
		s.m.reloads.WithLabelValues("error").Inc()
		s.m.reloadOK.Set(0)
		return err
	}
	s.m.reloads.WithLabelValues("ok").Inc()
	s.m.reloadOK.Set(1)
	return nil
}

func (s *Server) reload() error {
	var tc *tls.Config
	if s.cfg.CertFile != "" {
		var err error
		if tc, err = loadTLSConfig(s.cfg); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	}
	st, err := s.loader.load(s.cfg.Keys)
	if err != nil {
		return fmt.Errorf("reload keys: %w", err)
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		st.close()
		return errors.New("reload: server is closing")
	}
	if tc != nil {
		s.tlsConfig.Store(tc)
	}
	s.storeMu.Lock()
	old := s.store
	s.store = st
	old.inflight.Add(1) // hold it until retire below, whatever releases race
	s.storeMu.Unlock()
	old.retire()
	old.release()
	s.setKeyMetrics(st)
	s.logKeys(st)
	return nil
}

// acquireStore returns the active store with a reference the caller
// releases.
func (s *Server) acquireStore() *keyStore {
	s.storeMu.RLock()
	st := s.store
	st.inflight.Add(1)
	s.storeMu.RUnlock()
	return st
}

func (s *Server) setKeyMetrics(st *keyStore) {
	for typ, n := range st.counts() {
		s.m.keys.WithLabelValues(typ).Set(float64(n))
	}
}

func (s *Server) logKeys(st *keyStore) {
	n := st.counts()
	s.logger.Info("key store loaded", slog.Int("keys", len(st.keys)), slog.Int("rsa", n["rsa"]),
		slog.Int("ecdsa", n["ecdsa"]), slog.Int("ed25519", n["ed25519"]))
	if s.logger.Enabled(context.Background(), slog.LevelDebug) {
		for _, k := range st.sortedKeys() {
			s.logger.Debug("key", slog.String("ski", k.SKI.String()), slog.String("type", k.Type()),
				slog.String("source", k.Source))
		}
	}
}

// Serve accepts mutual-TLS connections on ln (a TCP listener; Serve does
// the TLS itself) until Close, and then returns nil. It returns an error
// when no TLS certificates are configured or ln fails.
func (s *Server) Serve(ln net.Listener) error {
	tc, err := s.serverTLS()
	if err != nil {
		return err
	}
	return s.serve(ln, listenerTCP, tc, s.cfg.IdleTimeout)
}

// ServeUnix accepts connections on a unix socket listener until Close,
// and then returns nil. Its peers are trusted local processes: no TLS,
// unless Config.UnixTLS asks for mutual TLS as on TCP. Connections idle
// for UnixIdleTimeout are closed.
func (s *Server) ServeUnix(ln net.Listener) error {
	var tc *tls.Config
	if s.cfg.UnixTLS {
		var err error
		if tc, err = s.serverTLS(); err != nil {
			return err
		}
	}
	return s.serve(ln, listenerUnix, tc, s.cfg.UnixIdleTimeout)
}

const (
	listenerTCP  = "tcp"
	listenerUnix = "unix"
)

func (s *Server) serve(ln net.Listener, kind string, tc *tls.Config, idle time.Duration) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.logger.Info("listening", slog.String("listener", kind), slog.String("addr", ln.Addr().String()),
		slog.Bool("tls", tc != nil))

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of descriptors or a transient error: wait and retry,
				// as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed; retrying", slog.String("listener", kind), slog.Any("err", err),
					slog.Duration("backoff", backoff))
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			s.mu.Lock()
			delete(s.listeners, ln)
			s.mu.Unlock()
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		s.m.accepted.WithLabelValues(kind).Inc()
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.raw[nc] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go s.handle(nc, kind, tc, idle)
	}
}

// Close stops accepting, stops reading every connection, lets requests
// already read finish and be answered for up to ShutdownTimeout, then
// closes every connection, stops the workers and releases the key store.
// It returns once all of that is done. Serve and ServeUnix return nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.done)
		var errs []error
		for ln := range s.listeners {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		for nc := range s.raw {
			nc.Close() // handshakes in progress: nothing to finish
		}
		for c := range s.conns {
			c.stopReading()
		}
		s.mu.Unlock()

		finished := make(chan struct{})
		go func() {
			s.connWG.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.mu.Lock()
			n := len(s.conns)
			for c := range s.conns {
				c.raw.Close()
			}
			s.mu.Unlock()
			s.logger.Warn("shutdown timeout; closing connections with requests in flight", slog.Int("connections", n))
			<-finished
		}
		close(s.jobs)
		s.workersWG.Wait()
		s.reloadMu.Lock() // a reload in progress finishes (and sees closing) first
		defer s.reloadMu.Unlock()
		s.storeMu.Lock()
		st := s.store
		s.storeMu.Unlock()
		st.retire()
		s.loader.p11.close()
		s.closeErr = errors.Join(errs...)
		s.logger.Info("closed")
	})
	return s.closeErr
}
