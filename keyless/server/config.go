package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampart-edge/rampart/internal/check"
)

// Defaults, from the established key server where KEYLESS.md gives them.
const (
	DefaultListen            = ":2407"
	DefaultMetricsAddr       = "127.0.0.1:2406"
	DefaultMaxPendingPerConn = 1024
	DefaultIdleTimeout       = 30 * time.Second
	DefaultUnixIdleTimeout   = time.Hour
	DefaultDrainTimeout      = 5 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second

	// ListenNone as Config.Listen turns the TCP listener off; as
	// Config.MetricsAddr, the metrics listener.
	ListenNone = "none"
)

// Config is the key server's configuration, as read from YAML by
// LoadConfig. A zero field takes its default (WithDefaults); New applies
// the defaults and validates, so a Config built in code needs only what
// differs.
type Config struct {
	// Listen is the TCP address of the mutual-TLS listener the binary
	// opens, or ListenNone for a unix socket only. Serve itself takes any
	// listener.
	Listen string `yaml:"listen"`
	// UnixSocket is the path of the optional unix socket listener; empty
	// means none.
	UnixSocket string `yaml:"unix_socket"`
	// UnixTLS runs mutual TLS on the unix socket too, as the established
	// server does. Off by default: a unix socket's peers are local and
	// trusted through the socket file's permissions.
	UnixTLS bool `yaml:"unix_tls"`

	// CAFile holds the PEM certificates client certificates must chain to.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the server's own certificate chain and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// Keys lists where the private keys come from: a directory (every
	// *.key, *.pem and *.der file in it), a single file, or a pkcs11: URI.
	Keys []string `yaml:"keys"`

	// MetricsAddr is where the binary serves /metrics, or ListenNone.
	MetricsAddr string `yaml:"metrics_addr"`

	// Workers is the number of goroutines that sign and decrypt, shared by
	// all connections; 0 means one per CPU (GOMAXPROCS).
	Workers int `yaml:"workers"`
	// MaxPendingPerConn bounds the requests of one connection read but not
	// yet answered; when full, the server stops reading that connection.
	MaxPendingPerConn int `yaml:"max_pending_per_conn"`

	// IdleTimeout closes a TCP connection that sends nothing for this long
	// (30s in the established server); it is also each write's deadline.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// UnixIdleTimeout is the same for unix socket connections (1h).
	UnixIdleTimeout time.Duration `yaml:"unix_idle_timeout"`
	// DrainTimeout is how long an idle connection waits for its
	// outstanding requests before it is closed (5s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// HandshakeTimeout bounds a TLS handshake.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// WithDefaults returns c with every zero field set to its default.
// Workers stays 0 (one per CPU, decided when the server starts).
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.MaxPendingPerConn == 0 {
		c.MaxPendingPerConn = DefaultMaxPendingPerConn
	}
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.UnixIdleTimeout, DefaultUnixIdleTimeout)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	return c
}

// Validate reports every problem of c (after WithDefaults), each a
// *check.Problem naming the YAML field.
func (c Config) Validate() error {
	p := check.New("")
	check.Range(p, "workers", c.Workers, 0, 4096)
	check.Range(p, "max_pending_per_conn", c.MaxPendingPerConn, 1, 1<<20)
	dur := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			p.Addf(field, "must be in %v..%v, got %v", lo, hi, d)
		}
	}
	dur("idle_timeout", c.IdleTimeout, time.Second, 24*time.Hour)
	dur("unix_idle_timeout", c.UnixIdleTimeout, time.Second, 24*time.Hour)
	dur("drain_timeout", c.DrainTimeout, 0, 10*time.Minute)
	dur("handshake_timeout", c.HandshakeTimeout, 100*time.Millisecond, 10*time.Minute)
	dur("shutdown_timeout", c.ShutdownTimeout, 0, 10*time.Minute)
	if c.Listen == ListenNone && c.UnixSocket == "" {
		p.Addf("listen", "%q needs a unix_socket, or the server listens nowhere", ListenNone)
	}
	if c.Listen != ListenNone || c.UnixTLS {
		for _, f := range []struct{ field, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
			if f.v == "" {
				p.Addf(f.field, "required for mutual TLS")
			}
		}
	}
	if len(c.Keys) == 0 {
		p.Addf("keys", "no key store: name at least one directory, file or pkcs11: URI")
	}
	for i, k := range c.Keys {
		if strings.TrimSpace(k) == "" {
			p.Addf("keys["+strconv.Itoa(i)+"]", "empty")
		}
	}
	return p.Err()
}

// ConfigError is one problem of a configuration file, positioned at the
// field at fault (or the nearest line yaml.v3 reports).
type ConfigError struct {
	File         string
	Line, Column int
	Path         string // dotted YAML field, when known
	Msg          string
}

func (e *ConfigError) Error() string {
	pos := fmt.Sprintf("%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Path != "" {
		return pos + e.Path + ": " + e.Msg
	}
	return pos + e.Msg
}

// LoadConfig reads, strictly decodes (unknown fields are errors) and
// validates a YAML configuration file, applying defaults. Relative paths
// in it (certificates, keys, the unix socket) are taken relative to the
// file's directory. Errors are *ConfigError values, joined when there are
// several.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(path, data)
	if err != nil {
		return nil, err
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// ParseConfig decodes and validates a configuration; file names it in
// errors. Paths are left as written.
func ParseConfig(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	var c Config
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return nil, yamlError(file, err)
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); err != io.EOF {
			return nil, &ConfigError{File: file, Line: extra.Line, Column: extra.Column, Msg: "a configuration is one YAML document"}
		}
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, positioned(file, &root, err)
	}
	return &c, nil
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.CAFile)
	abs(&c.CertFile)
	abs(&c.KeyFile)
	abs(&c.UnixSocket)
	for i := range c.Keys {
		if !isPKCS11URI(c.Keys[i]) {
			abs(&c.Keys[i])
		}
	}
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's "line N: msg" errors into ConfigErrors.
func yamlError(file string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := 1
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
		}
		out = append(out, &ConfigError{File: file, Line: line, Column: 1, Msg: m})
	}
	return errors.Join(out...)
}

// positioned gives each validation problem the position of its field, or
// of the document when the field is absent.
func positioned(file string, root *yaml.Node, err error) error {
	var problems []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	} else {
		problems = []error{err}
	}
	var out []error
	for _, e := range problems {
		var p *check.Problem
		if !errors.As(e, &p) {
			out = append(out, &ConfigError{File: file, Line: 1, Column: 1, Msg: e.Error()})
			continue
		}
		n := check.YAMLNode(root, p.Path)
		out = append(out, &ConfigError{File: file, Line: max(n.Line, 1), Column: max(n.Column, 1), Path: p.Path, Msg: p.Msg})
	}
	return errors.Join(out...)
}
