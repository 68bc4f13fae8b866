package zone

import (
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rampart-edge/rampart/internal/check"
)

// Config is the zones part of a profile: the profile's top-level `zones:`
// and `unknown_host:` keys. It is plain data: Validate checks it without
// touching the machine; NewTable builds from it.
//
// profiles.Spec embeds it inline, so that the keys stay at the top level
// and problem paths read "zones[2].origins[0]":
//
//	Zones zone.Config `yaml:",inline"`
//	...
//	p.Merge("", s.Zones.Validate())
//
// A profile without zones is valid: every request is then answered with
// the unknown_host response.
type Config struct {
	Zones       []Spec      `yaml:"zones"`
	UnknownHost UnknownHost `yaml:"unknown_host"`
}

// Spec is one zone as the profile declares it: one customer's site.
type Spec struct {
	// Name identifies the zone in logs and metrics: 1-63 lowercase
	// letters, digits, dots, dashes or underscores, unique.
	Name string `yaml:"name"`
	// Hosts are the host names the zone serves: exact names
	// ("www.example.com"), wildcards ("*.example.com": any name below
	// example.com, at any depth, but not example.com itself) and literal
	// IP addresses ("192.0.2.1", "2001:db8::1", canonical form, no
	// brackets), which match only themselves. Lowercase ASCII;
	// internationalized names as IDNA A-labels ("xn--bcher-kva.example").
	// A host belongs to one zone only.
	Hosts []string `yaml:"hosts"`
	// Origins are "ip:port" or "[ipv6]:port": literal addresses only,
	// because nothing on the data path resolves names.
	Origins []string `yaml:"origins"`
	// Settings apply to every origin of the zone; omitted (zero) fields
	// take the defaults in DefaultSettings.
	Settings `yaml:",inline"`
}

// Settings are a zone's per-origin connection limits and health checks.
// A zero field means "the default" (see DefaultSettings and WithDefaults):
// zero is never a useful value for any of them.
type Settings struct {
	// ConnectTimeout bounds the TCP connect to an origin.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseTimeout bounds the wait for an origin's response head
	// after the request was sent.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// MaxConnsPerOrigin caps the connections, busy or idle, to one origin.
	MaxConnsPerOrigin int `yaml:"max_conns_per_origin"`
	// MaxIdlePerOrigin caps the idle connections kept for reuse to one
	// origin; at most MaxConnsPerOrigin. Its default is the smaller of 64
	// and MaxConnsPerOrigin.
	MaxIdlePerOrigin int `yaml:"max_idle_per_origin"`
	// IdleTimeout closes an idle origin connection unused for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PipelineDepth is how many GET and HEAD requests without a body one
	// origin connection may carry at once (HTTP/1.1 pipelining); 1, the
	// default, sends the next request only after the previous response.
	// Requests that arrive while a connection has one outstanding are
	// written together when its responses come back: fewer writes and
	// fewer segments per request, for origins known to pipeline
	// correctly. A response that a connection cannot deliver (the origin
	// closed it, or said "Connection: close") sends the requests behind it
	// to another connection: they are idempotent and nothing of theirs
	// came back.
	PipelineDepth int    `yaml:"pipeline_depth"`
	Health        Health `yaml:"health"`
}

// Health is how a zone's origins are judged up or down.
//
// With a Path, a Checker sends "GET Path" to every origin each Interval;
// a 2xx or 3xx answer within Timeout is a success. Fall consecutive
// failures (active, or connect failures the proxy reports with
// MarkFailure) take an origin down; Rise consecutive successful checks
// bring it back.
//
// Without a Path (the default: an edge must not probe a path the customer
// did not name), only the proxy's reports count: Fall consecutive
// failures take an origin down, and after Interval the Checker readmits
// it on probation, where one more failure takes it down again.
type Health struct {
	Path     string        `yaml:"path"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Fall     int           `yaml:"fall"`
	Rise     int           `yaml:"rise"`
}

// UnknownHost is the response to a request whose host no zone serves.
type UnknownHost struct {
	// Status is 421 (Misdirected Request, the default), 404 or 403.
	Status int `yaml:"status"`
	// Body is sent as text/plain; empty means the status text.
	Body string `yaml:"body"`
}

// DefaultSettings are the values of a zone's omitted settings. The idle
// connection cap and the health timeout are further capped by the
// connection cap and the interval in force (see WithDefaults).
var DefaultSettings = Settings{
	ConnectTimeout:    3 * time.Second,
	ResponseTimeout:   30 * time.Second,
	MaxConnsPerOrigin: 256,
	MaxIdlePerOrigin:  64,
	IdleTimeout:       60 * time.Second,
	PipelineDepth:     1,
	Health: Health{
		Interval: 5 * time.Second,
		Timeout:  2 * time.Second,
		Fall:     3,
		Rise:     2,
	},
}

// Limits of the section. Hosts are bounded in total because every one is
// a map entry of the Table; origins per zone because selection scans them.
const (
	MaxZones          = 1 << 18
	MaxHosts          = 1 << 20
	MaxHostsPerZone   = 1 << 16
	MaxOriginsPerZone = 64
	MaxBodyBytes      = 4096
	MaxPipelineDepth  = 64
	maxPathBytes      = 1024
	maxFallRise       = 100
)

// WithDefaults returns s with every zero field replaced by its default.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings
	or := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	or(&s.ConnectTimeout, d.ConnectTimeout)
	or(&s.ResponseTimeout, d.ResponseTimeout)
	or(&s.IdleTimeout, d.IdleTimeout)
	if s.MaxConnsPerOrigin == 0 {
		s.MaxConnsPerOrigin = d.MaxConnsPerOrigin
	}
	if s.MaxIdlePerOrigin == 0 {
		s.MaxIdlePerOrigin = min(d.MaxIdlePerOrigin, max(s.MaxConnsPerOrigin, 1))
	}
	if s.PipelineDepth == 0 {
		s.PipelineDepth = d.PipelineDepth
	}
	h := &s.Health
	or(&h.Interval, d.Health.Interval)
	if h.Timeout == 0 {
		h.Timeout = d.Health.Timeout
		if h.Interval >= time.Second {
			h.Timeout = min(h.Timeout, h.Interval)
		}
	}
	if h.Fall == 0 {
		h.Fall = d.Health.Fall
	}
	if h.Rise == 0 {
		h.Rise = d.Health.Rise
	}
	return s
}

// WithDefaults returns u with the default status and body filled in.
func (u UnknownHost) WithDefaults() UnknownHost {
	if u.Status == 0 {
		u.Status = http.StatusMisdirectedRequest
	}
	if u.Body == "" {
		u.Body = http.StatusText(u.Status) + "\n"
	}
	return u
}

// WithDefaults returns a copy of c with every default filled in: the
// configuration in force, as NewTable builds it.
func (c *Config) WithDefaults() Config {
	out := Config{UnknownHost: c.UnknownHost.WithDefaults(), Zones: make([]Spec, len(c.Zones))}
	for i, z := range c.Zones {
		z.Settings = z.Settings.WithDefaults()
		out.Zones[i] = z
	}
	return out
}

var zoneName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate returns every problem in the section, each with its field path
// ("zones[2].origins[0]"), all at once.
func (c *Config) Validate() error {
	p := check.New("")
	if len(c.Zones) > MaxZones {
		p.Addf("zones", "must have at most %d zones, got %d", MaxZones, len(c.Zones))
	}
	type claim struct{ zone, host int }
	names := make(map[string]int, len(c.Zones))
	claims := make(map[string]claim)
	total := 0
	for i := range c.Zones {
		z := &c.Zones[i]
		zp := p.In("zones[" + strconv.Itoa(i) + "]")
		switch prev, dup := names[z.Name]; {
		case !zoneName.MatchString(z.Name):
			zp.Addf("name", "must be 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit, got %q", z.Name)
		case dup:
			zp.Addf("name", "zone name %q is also used by zones[%d]", z.Name, prev)
		default:
			names[z.Name] = i
		}

		switch n := len(z.Hosts); {
		case n == 0:
			zp.Addf("hosts", "at least one host is required")
		case n > MaxHostsPerZone:
			zp.Addf("hosts", "must have at most %d hosts, got %d", MaxHostsPerZone, n)
		}
		total += len(z.Hosts)
		for j, h := range z.Hosts {
			field := "hosts[" + strconv.Itoa(j) + "]"
			kind, key, msg := parseHost(h)
			if kind == hostInvalid {
				zp.Addf(field, "%s", msg)
				continue
			}
			prev, dup := claims[key]
			switch {
			case !dup:
				claims[key] = claim{i, j}
			case prev.zone == i:
				zp.Addf(field, "%q is listed twice (also hosts[%d])", h, prev.host)
			default:
				zp.Addf(field, "%q of zone %q is already claimed by zone %q (zones[%d].hosts[%d]): a host belongs to one zone",
					h, z.Name, c.Zones[prev.zone].Name, prev.zone, prev.host)
			}
		}

		switch n := len(z.Origins); {
		case n == 0:
			zp.Addf("origins", "at least one origin is required")
		case n > MaxOriginsPerZone:
			zp.Addf("origins", "must have at most %d origins, got %d", MaxOriginsPerZone, n)
		}
		seen := make(map[netip.AddrPort]int, len(z.Origins))
		for j, o := range z.Origins {
			field := "origins[" + strconv.Itoa(j) + "]"
			ap, msg := parseOrigin(o)
			if msg != "" {
				zp.Addf(field, "%s", msg)
				continue
			}
			if prev, dup := seen[ap]; dup {
				zp.Addf(field, "%q is listed twice (also origins[%d])", o, prev)
				continue
			}
			seen[ap] = j
		}
		z.Settings.validate(zp)
	}
	if total > MaxHosts {
		p.Addf("zones", "must have at most %d hosts in all, got %d", MaxHosts, total)
	}

	u := c.UnknownHost
	up := p.In("unknown_host")
	switch u.Status {
	case 0, http.StatusForbidden, http.StatusNotFound, http.StatusMisdirectedRequest:
	default:
		up.Addf("status", "must be 403, 404 or 421, got %d", u.Status)
	}
	if len(u.Body) > MaxBodyBytes {
		up.Addf("body", "must be at most %d bytes, got %d", MaxBodyBytes, len(u.Body))
	} else if !utf8.ValidString(u.Body) {
		up.Addf("body", "must be UTF-8 text")
	}
	return p.Err()
}

// validate checks the settings in force (defaults filled in). A default
// is always in range, so every problem names a value the profile set.
func (s Settings) validate(p check.Problems) {
	s = s.WithDefaults()
	duration := func(field string, d, lo, hi time.Duration) bool {
		if d < lo || d > hi {
			p.Addf(field, "must be in %s..%s, got %s", lo, hi, d)
			return false
		}
		return true
	}
	duration("connect_timeout", s.ConnectTimeout, 10*time.Millisecond, time.Minute)
	duration("response_timeout", s.ResponseTimeout, 100*time.Millisecond, time.Hour)
	duration("idle_timeout", s.IdleTimeout, time.Second, time.Hour)
	check.Range(p, "max_conns_per_origin", s.MaxConnsPerOrigin, 1, 65536)
	if s.MaxConnsPerOrigin >= 1 {
		check.Range(p, "max_idle_per_origin", s.MaxIdlePerOrigin, 1, min(s.MaxConnsPerOrigin, 65536))
	}
	check.Range(p, "pipeline_depth", s.PipelineDepth, 1, MaxPipelineDepth)

	h := s.Health
	hp := p.In("health")
	if h.Path != "" {
		if msg := checkPath(h.Path); msg != "" {
			hp.Addf("path", "%s", msg)
		}
	}
	intervalOK := duration("health.interval", h.Interval, time.Second, time.Hour)
	if h.Timeout < 10*time.Millisecond || h.Timeout > time.Minute {
		hp.Addf("timeout", "must be in %s..%s, got %s", 10*time.Millisecond, time.Minute, h.Timeout)
	} else if intervalOK && h.Timeout > h.Interval {
		hp.Addf("timeout", "must be at most the interval (%s), got %s", h.Interval, h.Timeout)
	}
	check.Range(hp, "fall", h.Fall, 1, maxFallRise)
	check.Range(hp, "rise", h.Rise, 1, maxFallRise)
}

// checkPath returns why path is not a usable health-check request target,
// or "".
func checkPath(path string) string {
	if len(path) > maxPathBytes {
		return "must be at most " + strconv.Itoa(maxPathBytes) + " bytes, got " + strconv.Itoa(len(path))
	}
	if path[0] != '/' {
		return "must start with / (or be empty to turn health checks off), got " + strconv.Quote(path)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return "must be printable ASCII without spaces or #, got " + strconv.Quote(path)
		}
	}
	if _, err := url.ParseRequestURI(path); err != nil {
		return "is not a valid request path: " + err.Error()
	}
	return ""
}

// parseOrigin parses "ip:port", returning a problem message or "".
func parseOrigin(s string) (netip.AddrPort, string) {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return ap, "must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 " +
			"(origins are never resolved through DNS on the data path), got " + strconv.Quote(s)
	case ap.Addr().Zone() != "":
		return ap, "must not have an IPv6 zone, got " + strconv.Quote(s)
	case ap.Port() == 0:
		return ap, "port must be in 1..65535, got " + strconv.Quote(s)
	case ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
		return ap, "must be a unicast address, got " + strconv.Quote(s)
	}
	return ap, ""
}
