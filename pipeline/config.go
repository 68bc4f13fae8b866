package pipeline

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rampart-edge/rampart/internal/check"
	"github.com/rampart-edge/rampart/internal/http1"
)

// Config is the profile's pipeline section.
type Config struct {
	// Listeners are the TCP addresses served, "ip:port" ("0.0.0.0:80",
	// "[::]:80" or a service address of the XDP filter).
	Listeners []string `yaml:"listeners"`
	// Loops is the number of event loops; 0 means one per CPU.
	Loops int `yaml:"loops"`
	// Steering picks the loop of a new connection. "cpu" (the default)
	// pins loop i's thread to CPU i and hands each connection to the loop
	// on the CPU that received it (SO_ATTACH_REUSEPORT_CBPF); "hash" pins
	// the loops but leaves the choice to the kernel's SO_REUSEPORT hash;
	// "off" neither pins nor steers.
	Steering string `yaml:"steering"`
	// Tick is the timer wheel's resolution and the longest a paused
	// connection waits for its peer to drain before it is looked at again.
	Tick time.Duration `yaml:"tick"`

	HeaderTimeout   time.Duration `yaml:"header_timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	MaxConnsPerListener int `yaml:"max_conns_per_listener"`
	MaxConnsPerSource   int `yaml:"max_conns_per_source"`
	// MaxBufferedBytes bounds what one connection holds in each direction
	// before reading from its peer (or from itself) stops.
	MaxBufferedBytes int `yaml:"max_buffered_bytes"`

	MaxRequestLine int   `yaml:"max_request_line"`
	MaxHeaderBytes int   `yaml:"max_header_bytes"`
	MaxHeaders     int   `yaml:"max_headers"`
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`
}

// DefaultConfig is what an operator gets without a pipeline section.
func DefaultConfig() Config {
	return Config{
		Listeners:           []string{"0.0.0.0:80"},
		Steering:            "cpu",
		Tick:                10 * time.Millisecond,
		HeaderTimeout:       10 * time.Second,
		IdleTimeout:         60 * time.Second,
		ShutdownTimeout:     15 * time.Second,
		MaxConnsPerListener: 100000,
		MaxConnsPerSource:   256,
		MaxBufferedBytes:    256 << 10,
		MaxRequestLine:      http1.DefaultLimits.MaxRequestLine,
		MaxHeaderBytes:      http1.DefaultLimits.MaxHeaderBytes,
		MaxHeaders:          http1.DefaultLimits.MaxHeaders,
		MaxBodyBytes:        100 << 20,
	}
}

// WithDefaults fills every field left out of a profile from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if len(c.Listeners) == 0 {
		c.Listeners = d.Listeners
	}
	if c.Steering == "" {
		c.Steering = d.Steering
	}
	if c.Tick == 0 {
		c.Tick = d.Tick
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = d.HeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.MaxConnsPerListener == 0 {
		c.MaxConnsPerListener = d.MaxConnsPerListener
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = d.MaxConnsPerSource
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = d.MaxBufferedBytes
	}
	if c.MaxRequestLine == 0 {
		c.MaxRequestLine = d.MaxRequestLine
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxHeaders == 0 {
		c.MaxHeaders = d.MaxHeaders
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	return c
}

// Limits are the HTTP/1.1 codec limits of the section.
func (c *Config) Limits() http1.Limits {
	return http1.Limits{MaxRequestLine: c.MaxRequestLine, MaxHeaderBytes: c.MaxHeaderBytes, MaxHeaders: c.MaxHeaders}
}

// ListenAddrs parses Listeners.
func (c *Config) ListenAddrs() ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(c.Listeners))
	for i, l := range c.Listeners {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			return nil, fmt.Errorf("listeners[%d]: %q is not ip:port", i, l)
		}
		out = append(out, ap)
	}
	return out, nil
}

// Validate reports every problem of the section at once.
func (c *Config) Validate() error {
	p := check.New("")
	if len(c.Listeners) == 0 {
		p.Addf("listeners", "at least one ip:port is needed")
	}
	seen := map[netip.AddrPort]bool{}
	for i, l := range c.Listeners {
		ap, err := netip.ParseAddrPort(l)
		field := fmt.Sprintf("listeners[%d]", i)
		switch {
		case err != nil:
			p.Addf(field, "must be ip:port with a literal address, got %q", l)
		case ap.Port() == 0:
			p.Addf(field, "port must not be 0")
		case seen[ap]:
			p.Addf(field, "%s listed twice", ap)
		}
		seen[ap] = true
	}
	check.Range(p, "loops", c.Loops, 0, 1024)
	if c.Steering != "cpu" && c.Steering != "hash" && c.Steering != "off" {
		p.Addf("steering", `must be "cpu", "hash" or "off", got %q`, c.Steering)
	}
	dur := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			p.Addf(field, "must be in %s..%s, got %s", lo, hi, d)
		}
	}
	dur("tick", c.Tick, time.Millisecond, time.Second)
	dur("header_timeout", c.HeaderTimeout, 100*time.Millisecond, 10*time.Minute)
	dur("idle_timeout", c.IdleTimeout, 100*time.Millisecond, time.Hour)
	dur("shutdown_timeout", c.ShutdownTimeout, 0, 10*time.Minute)
	check.Range(p, "max_conns_per_listener", c.MaxConnsPerListener, 1, 1<<24)
	check.Range(p, "max_conns_per_source", c.MaxConnsPerSource, 1, 1<<20)
	check.Range(p, "max_buffered_bytes", c.MaxBufferedBytes, 4<<10, 64<<20)
	check.Range(p, "max_body_bytes", c.MaxBodyBytes, 0, 1<<40)
	if err := c.Limits().Validate(); err != nil {
		p.Merge("", err)
	}
	return p.Err()
}
