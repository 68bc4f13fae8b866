package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Server is one key server the client may send requests to.
type Server struct {
	// Name labels the server in metrics and logs; it must come from a
	// small fixed set (a site or role name), never an address. Empty means
	// its index in Config.Servers ("0", "1", …).
	Name string
	// Addr is host:port; the spec's default port is 2407.
	Addr string
	// ServerName is the name the key server's certificate is verified
	// against; empty means Config.TLS.ServerName, or else the host of
	// Addr.
	ServerName string
}

// Config sizes and tunes a Client. Zero fields take the defaults named on
// each; New validates the result and reports every problem at once.
type Config struct {
	// Servers lists the key servers; requests go to the one with the
	// lowest latency-times-load score among those that are up (see doc.go).
	Servers []Server

	// TLS holds the client certificate (Certificates or
	// GetClientCertificate) and RootCAs that verify the key servers. The
	// client clones it and enforces TLS 1.2 at least, with TLS 1.2 limited
	// to ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384 as the spec's peers use.
	TLS *tls.Config

	// Dial opens the TCP connection; nil means a net.Dialer. It is the
	// seam tests use to put a slow or broken network in between.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// ConnsPerServer is how many connections the client keeps open to
	// each key server (default 2).
	ConnsPerServer int
	// MaxInFlightPerConn bounds the requests sent on one connection and
	// not yet answered (default 256; the established server reads up to
	// 1024 at once per connection).
	MaxInFlightPerConn int
	// QueueLen bounds the requests waiting for a connection slot, per key
	// server (default 1024). When the queues of all usable servers are
	// full, a request fails at once with ErrOverloaded.
	QueueLen int

	// RequestTimeout is how long a request may take from submission to
	// answer, queueing, one retry and all (default 10s, as the spec's
	// client). A late answer is dropped.
	RequestTimeout time.Duration
	// DialTimeout bounds connecting: TCP, TLS handshake and the first
	// ping (default 5s).
	DialTimeout time.Duration
	// WriteTimeout bounds one write of a batch of requests (default 5s).
	WriteTimeout time.Duration

	// PingInterval is the first health ping interval of a connection; it
	// doubles after each ping up to PingIntervalMax (defaults 1s and 15s;
	// the maximum must stay under the key server's 30s idle timeout).
	PingInterval    time.Duration
	PingIntervalMax time.Duration
	// PingTimeout fails a ping, and with it the connection (default 2s).
	PingTimeout time.Duration

	// BreakerFailures is how many consecutive failures (lost connections,
	// failed dials or pings, request timeouts) open a server's circuit
	// breaker (default 5).
	BreakerFailures int
	// BreakerCooldown is how long an open breaker waits before it probes
	// the server; each failed probe doubles the wait up to
	// BreakerCooldownMax (defaults 1s and 30s).
	BreakerCooldown    time.Duration
	BreakerCooldownMax time.Duration
	// BreakerHalfOpenSuccesses is how many answered requests close a
	// half-open breaker (default 3).
	BreakerHalfOpenSuccesses int

	Logger  *slog.Logger
	Metrics *Metrics // nil: series that are not registered anywhere
}

// Defaults for the zero fields of Config.
const (
	DefaultConnsPerServer     = 2
	DefaultMaxInFlightPerConn = 256
	DefaultQueueLen           = 1024
	DefaultRequestTimeout     = 10 * time.Second
	DefaultDialTimeout        = 5 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultPingInterval       = time.Second
	DefaultPingIntervalMax    = 15 * time.Second
	DefaultPingTimeout        = 2 * time.Second
	DefaultBreakerFailures    = 5
	DefaultBreakerCooldown    = time.Second
	DefaultBreakerCooldownMax = 30 * time.Second
	DefaultHalfOpenSuccesses  = 3
)

// Upper bounds of the capacities, so a typo cannot ask for gigabytes.
const (
	maxConnsPerServer = 64
	maxInFlightCap    = 1 << 16
	maxQueueLen       = 1 << 20
	maxServers        = 64
)

func (c Config) withDefaults() Config {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.ConnsPerServer, DefaultConnsPerServer)
	set(&c.MaxInFlightPerConn, DefaultMaxInFlightPerConn)
	set(&c.QueueLen, DefaultQueueLen)
	setD(&c.RequestTimeout, DefaultRequestTimeout)
	setD(&c.DialTimeout, DefaultDialTimeout)
	setD(&c.WriteTimeout, DefaultWriteTimeout)
	setD(&c.PingInterval, DefaultPingInterval)
	setD(&c.PingIntervalMax, DefaultPingIntervalMax)
	setD(&c.PingTimeout, DefaultPingTimeout)
	set(&c.BreakerFailures, DefaultBreakerFailures)
	setD(&c.BreakerCooldown, DefaultBreakerCooldown)
	setD(&c.BreakerCooldownMax, DefaultBreakerCooldownMax)
	set(&c.BreakerHalfOpenSuccesses, DefaultHalfOpenSuccesses)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Servers) == 0 {
		bad("servers: at least one key server is needed")
	}
	if len(c.Servers) > maxServers {
		bad("servers: at most %d, got %d", maxServers, len(c.Servers))
	}
	names := map[string]int{}
	for i, s := range c.Servers {
		name := s.Name
		if name == "" {
			name = strconv.Itoa(i)
		}
		if j, dup := names[name]; dup {
			bad("servers[%d].name: %q already names servers[%d]", i, name, j)
		}
		names[name] = i
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			bad("servers[%d].addr: %w", i, err)
		}
	}
	if c.TLS == nil {
		bad("tls: a client certificate and the key servers' CA are needed")
	} else if len(c.TLS.Certificates) == 0 && c.TLS.GetClientCertificate == nil {
		bad("tls: no client certificate; key servers require one")
	}
	rng := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s: must be in %d..%d, got %d", field, lo, hi, v)
		}
	}
	rng("conns_per_server", c.ConnsPerServer, 1, maxConnsPerServer)
	rng("max_in_flight_per_conn", c.MaxInFlightPerConn, 1, maxInFlightCap)
	rng("queue_len", c.QueueLen, 1, maxQueueLen)
	rng("breaker_failures", c.BreakerFailures, 1, 1<<20)
	rng("breaker_half_open_successes", c.BreakerHalfOpenSuccesses, 1, 1<<20)
	pos := func(field string, d time.Duration) {
		if d <= 0 {
			bad("%s: must be positive, got %v", field, d)
		}
	}
	pos("request_timeout", c.RequestTimeout)
	pos("dial_timeout", c.DialTimeout)
	pos("write_timeout", c.WriteTimeout)
	pos("ping_interval", c.PingInterval)
	pos("ping_timeout", c.PingTimeout)
	pos("breaker_cooldown", c.BreakerCooldown)
	if c.PingIntervalMax < c.PingInterval {
		bad("ping_interval_max: must be at least ping_interval (%v), got %v", c.PingInterval, c.PingIntervalMax)
	}
	if c.PingIntervalMax >= 30*time.Second {
		bad("ping_interval_max: must stay under the key server's 30s idle timeout, got %v", c.PingIntervalMax)
	}
	if c.BreakerCooldownMax < c.BreakerCooldown {
		bad("breaker_cooldown_max: must be at least breaker_cooldown (%v), got %v", c.BreakerCooldown, c.BreakerCooldownMax)
	}
	return errors.Join(errs...)
}

// tlsConfig is the configuration of connections to s.
func (c *Config) tlsConfig(s Server) *tls.Config {
	t := c.TLS.Clone()
	if t.MinVersion < tls.VersionTLS12 {
		t.MinVersion = tls.VersionTLS12
	}
	// TLS 1.3 suites are not configurable (all are AES-GCM or ChaCha);
	// for TLS 1.2 offer exactly what the established peers accept.
	t.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
	switch {
	case s.ServerName != "":
		t.ServerName = s.ServerName
	case t.ServerName == "":
		host, _, _ := net.SplitHostPort(s.Addr)
		t.ServerName = host
	}
	return t
}
