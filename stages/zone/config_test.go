package zone

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func validConfig() Config {
	return Config{
		Zones: []Spec{
			{
				Name:    "shop",
				Hosts:   []string{"shop.example.com", "*.shop.example.com"},
				Origins: []string{"192.0.2.10:8080", "[2001:db8::10]:8080"},
			},
			{
				Name:    "blog",
				Hosts:   []string{"blog.example.org", "*.example.org", "198.51.100.7", "2001:db8::7", "xn--bcher-kva.example.org"},
				Origins: []string{"192.0.2.20:80"},
				Settings: Settings{
					MaxConnsPerOrigin: 10,
					Health:            Health{Path: "/healthz?full=1", Interval: time.Second},
				},
			},
		},
	}
}

func TestConfigValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr []string // every problem, in order
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "empty section", mutate: func(c *Config) { *c = Config{} }},
		{name: "every setting at its limits", mutate: func(c *Config) {
			c.Zones[0].Settings = Settings{ConnectTimeout: 10 * time.Millisecond, ResponseTimeout: time.Hour,
				MaxConnsPerOrigin: 65536, MaxIdlePerOrigin: 65536, IdleTimeout: time.Second,
				Health: Health{Path: "/", Interval: time.Hour, Timeout: time.Minute, Fall: 100, Rise: 1}}
			c.UnknownHost = UnknownHost{Status: 404, Body: strings.Repeat("x", MaxBodyBytes)}
		}},
		{name: "status 403", mutate: func(c *Config) { c.UnknownHost.Status = 403 }},

		{name: "zone name", mutate: func(c *Config) { c.Zones[0].Name = "Shop" },
			wantErr: []string{`zones[0].name: must be 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit, got "Shop"`}},
		{name: "empty zone name", mutate: func(c *Config) { c.Zones[0].Name = "" },
			wantErr: []string{`zones[0].name: must be 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit, got ""`}},
		{name: "duplicate zone name", mutate: func(c *Config) { c.Zones[1].Name = "shop" },
			wantErr: []string{`zones[1].name: zone name "shop" is also used by zones[0]`}},

		{name: "no hosts", mutate: func(c *Config) { c.Zones[0].Hosts = nil },
			wantErr: []string{`zones[0].hosts: at least one host is required`}},
		{name: "too many hosts", mutate: func(c *Config) {
			c.Zones[0].Hosts = make([]string, MaxHostsPerZone+1)
			for i := range c.Zones[0].Hosts {
				c.Zones[0].Hosts[i] = "h" + strconv.Itoa(i) + ".example.com"
			}
		}, wantErr: []string{`zones[0].hosts: must have at most 65536 hosts, got 65537`}},
		{name: "host errors", mutate: func(c *Config) {
			c.Zones[0].Hosts = []string{
				"",
				"[2001:db8::1]",
				"2001:db8::zz",
				"fe80::1%eth0",
				"2001:DB8::1",
				"2001:db8:0::2",
				"WWW.example.com",
				"bücher.example.com",
				"www.example.com.",
				strings.Repeat("abcdefg.", 32) + "com",
				long + ".example.com",
				"a..example.com",
				"-a.example.com",
				"a-.example.com",
				"under_score.example.com",
				"xn--.example.com",
				"xn--a-.example.com",
				"01.2.3.4",
				"host.123",
				"www.*.example.com",
				"*example.com",
				"*",
				"*.",
				"*.com",
				"*.*.example.com",
				"localhost",
			}
		}, wantErr: []string{
			`zones[0].hosts[0]: must not be empty`,
			`zones[0].hosts[1]: write IPv6 addresses without brackets, got "[2001:db8::1]"`,
			`zones[0].hosts[2]: is neither a host name nor an IP address, got "2001:db8::zz"`,
			`zones[0].hosts[3]: must not have an IPv6 zone, got "fe80::1%eth0"`,
			`zones[0].hosts[4]: write the address in canonical form "2001:db8::1", got "2001:DB8::1"`,
			`zones[0].hosts[5]: write the address in canonical form "2001:db8::2", got "2001:db8:0::2"`,
			`zones[0].hosts[6]: "WWW.example.com": must be lowercase`,
			`zones[0].hosts[7]: "bücher.example.com": must be ASCII: write internationalized names as IDNA A-labels (xn--…)`,
			`zones[0].hosts[8]: "www.example.com.": must not end with a dot`,
			`zones[0].hosts[9]: "` + strings.Repeat("abcdefg.", 32) + `com": must be at most 253 bytes`,
			`zones[0].hosts[10]: "` + long + `.example.com": label "` + long + `" is longer than 63 bytes`,
			`zones[0].hosts[11]: "a..example.com": has an empty label`,
			`zones[0].hosts[12]: "-a.example.com": label "-a" must not start or end with a dash`,
			`zones[0].hosts[13]: "a-.example.com": label "a-" must not start or end with a dash`,
			`zones[0].hosts[14]: "under_score.example.com": label "under_score" may hold only letters, digits and dashes`,
			`zones[0].hosts[15]: "xn--.example.com": label "xn--" must not start or end with a dash`,
			`zones[0].hosts[16]: "xn--a-.example.com": label "xn--a-" must not start or end with a dash`,
			`zones[0].hosts[17]: "01.2.3.4": the last label must not be all digits (IP addresses are written as addresses)`,
			`zones[0].hosts[18]: "host.123": the last label must not be all digits (IP addresses are written as addresses)`,
			`zones[0].hosts[19]: a wildcard must be the whole leftmost label, like *.example.com, got "www.*.example.com"`,
			`zones[0].hosts[20]: a wildcard must be the whole leftmost label, like *.example.com, got "*example.com"`,
			`zones[0].hosts[21]: a wildcard must be the whole leftmost label, like *.example.com, got "*"`,
			`zones[0].hosts[22]: "*.": has an empty label`,
			`zones[0].hosts[23]: a wildcard needs at least two labels after "*.", like *.example.com, got "*.com"`,
			`zones[0].hosts[24]: a wildcard must be the whole leftmost label, like *.example.com, got "*.*.example.com"`,
		}},
		{name: "bad punycode", mutate: func(c *Config) {
			c.Zones[0].Hosts = []string{"xn--zz.example.com", "xn--99999999999.example.com", "xn--bcher-kva.example.com"}
		}, wantErr: []string{
			`zones[0].hosts[0]: "xn--zz.example.com": label "xn--zz" is not a valid IDNA A-label (punycode)`,
			`zones[0].hosts[1]: "xn--99999999999.example.com": label "xn--99999999999" is not a valid IDNA A-label (punycode)`,
		}},
		{name: "host twice in one zone", mutate: func(c *Config) {
			c.Zones[0].Hosts = append(c.Zones[0].Hosts, "shop.example.com", "*.shop.example.com")
		}, wantErr: []string{
			`zones[0].hosts[2]: "shop.example.com" is listed twice (also hosts[0])`,
			`zones[0].hosts[3]: "*.shop.example.com" is listed twice (also hosts[1])`,
		}},
		{name: "host claimed by two zones", mutate: func(c *Config) {
			c.Zones[1].Hosts = append(c.Zones[1].Hosts, "*.shop.example.com", "shop.example.com")
		}, wantErr: []string{
			`zones[1].hosts[5]: "*.shop.example.com" of zone "blog" is already claimed by zone "shop" (zones[0].hosts[1]): a host belongs to one zone`,
			`zones[1].hosts[6]: "shop.example.com" of zone "blog" is already claimed by zone "shop" (zones[0].hosts[0]): a host belongs to one zone`,
		}},
		{name: "address claimed by two zones", mutate: func(c *Config) {
			c.Zones[0].Hosts = append(c.Zones[0].Hosts, "2001:db8::7")
		}, wantErr: []string{
			`zones[1].hosts[3]: "2001:db8::7" of zone "blog" is already claimed by zone "shop" (zones[0].hosts[2]): a host belongs to one zone`,
		}},
		{name: "exact name under another zone's wildcard", mutate: func(c *Config) {
			c.Zones[0].Hosts = append(c.Zones[0].Hosts, "www.example.org", "example.org")
		}},

		{name: "no origins", mutate: func(c *Config) { c.Zones[1].Origins = nil },
			wantErr: []string{`zones[1].origins: at least one origin is required`}},
		{name: "too many origins", mutate: func(c *Config) {
			c.Zones[1].Origins = nil
			for i := range MaxOriginsPerZone + 1 {
				c.Zones[1].Origins = append(c.Zones[1].Origins, "192.0.2."+strconv.Itoa(i+1)+":80")
			}
		}, wantErr: []string{`zones[1].origins: must have at most 64 origins, got 65`}},
		{name: "origin errors", mutate: func(c *Config) {
			c.Zones[1].Origins = []string{
				"origin.example.com:80",
				"192.0.2.1",
				"2001:db8::1:80",
				"[fe80::1%eth0]:80",
				"192.0.2.1:0",
				"0.0.0.0:80",
				"[::]:80",
				"224.0.0.1:80",
				"192.0.2.1:65536",
				"192.0.2.20:80",
				"192.0.2.20:80",
			}
		}, wantErr: []string{
			`zones[1].origins[0]: must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 (origins are never resolved through DNS on the data path), got "origin.example.com:80"`,
			`zones[1].origins[1]: must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 (origins are never resolved through DNS on the data path), got "192.0.2.1"`,
			`zones[1].origins[2]: must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 (origins are never resolved through DNS on the data path), got "2001:db8::1:80"`,
			`zones[1].origins[3]: must not have an IPv6 zone, got "[fe80::1%eth0]:80"`,
			`zones[1].origins[4]: port must be in 1..65535, got "192.0.2.1:0"`,
			`zones[1].origins[5]: must be a unicast address, got "0.0.0.0:80"`,
			`zones[1].origins[6]: must be a unicast address, got "[::]:80"`,
			`zones[1].origins[7]: must be a unicast address, got "224.0.0.1:80"`,
			`zones[1].origins[8]: must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 (origins are never resolved through DNS on the data path), got "192.0.2.1:65536"`,
			`zones[1].origins[10]: "192.0.2.20:80" is listed twice (also origins[9])`,
		}},

		{name: "settings too small", mutate: func(c *Config) {
			c.Zones[0].Settings = Settings{ConnectTimeout: time.Millisecond, ResponseTimeout: time.Millisecond,
				MaxConnsPerOrigin: -1, MaxIdlePerOrigin: -1, IdleTimeout: time.Millisecond,
				Health: Health{Interval: time.Millisecond, Timeout: time.Millisecond, Fall: -1, Rise: -1}}
		}, wantErr: []string{
			`zones[0].connect_timeout: must be in 10ms..1m0s, got 1ms`,
			`zones[0].response_timeout: must be in 100ms..1h0m0s, got 1ms`,
			`zones[0].idle_timeout: must be in 1s..1h0m0s, got 1ms`,
			`zones[0].max_conns_per_origin: must be in 1..65536, got -1`,
			`zones[0].health.interval: must be in 1s..1h0m0s, got 1ms`,
			`zones[0].health.timeout: must be in 10ms..1m0s, got 1ms`,
			`zones[0].health.fall: must be in 1..100, got -1`,
			`zones[0].health.rise: must be in 1..100, got -1`,
		}},
		{name: "settings too large", mutate: func(c *Config) {
			c.Zones[0].Settings = Settings{ConnectTimeout: 2 * time.Minute, ResponseTimeout: 2 * time.Hour,
				MaxConnsPerOrigin: 65537, MaxIdlePerOrigin: 65537, IdleTimeout: 2 * time.Hour,
				Health: Health{Interval: 2 * time.Hour, Timeout: 2 * time.Minute, Fall: 101, Rise: 101}}
		}, wantErr: []string{
			`zones[0].connect_timeout: must be in 10ms..1m0s, got 2m0s`,
			`zones[0].response_timeout: must be in 100ms..1h0m0s, got 2h0m0s`,
			`zones[0].idle_timeout: must be in 1s..1h0m0s, got 2h0m0s`,
			`zones[0].max_conns_per_origin: must be in 1..65536, got 65537`,
			`zones[0].max_idle_per_origin: must be in 1..65536, got 65537`,
			`zones[0].health.interval: must be in 1s..1h0m0s, got 2h0m0s`,
			`zones[0].health.timeout: must be in 10ms..1m0s, got 2m0s`,
			`zones[0].health.fall: must be in 1..100, got 101`,
			`zones[0].health.rise: must be in 1..100, got 101`,
		}},
		{name: "idle above conns", mutate: func(c *Config) { c.Zones[1].MaxIdlePerOrigin = 11 },
			wantErr: []string{`zones[1].max_idle_per_origin: must be in 1..10, got 11`}},
		{name: "health timeout above interval", mutate: func(c *Config) { c.Zones[1].Health.Timeout = 1500 * time.Millisecond },
			wantErr: []string{`zones[1].health.timeout: must be at most the interval (1s), got 1.5s`}},
		{name: "health paths", mutate: func(c *Config) {
			c.Zones[0].Health.Path = "healthz"
			c.Zones[1].Health.Path = "/health check"
			c.Zones = append(c.Zones,
				Spec{Name: "z2", Hosts: []string{"z2.example"}, Origins: []string{"192.0.2.1:80"}, Settings: Settings{Health: Health{Path: "/a#b"}}},
				Spec{Name: "z3", Hosts: []string{"z3.example"}, Origins: []string{"192.0.2.1:80"}, Settings: Settings{Health: Health{Path: "/%zz"}}},
				Spec{Name: "z4", Hosts: []string{"z4.example"}, Origins: []string{"192.0.2.1:80"}, Settings: Settings{Health: Health{Path: "/" + strings.Repeat("a", 1024)}}},
				Spec{Name: "z5", Hosts: []string{"z5.example"}, Origins: []string{"192.0.2.1:80"}, Settings: Settings{Health: Health{Path: "/é"}}},
			)
		}, wantErr: []string{
			`zones[0].health.path: must start with / (or be empty to turn health checks off), got "healthz"`,
			`zones[1].health.path: must be printable ASCII without spaces or #, got "/health check"`,
			`zones[2].health.path: must be printable ASCII without spaces or #, got "/a#b"`,
			`zones[3].health.path: is not a valid request path: parse "/%zz": invalid URL escape "%zz"`,
			`zones[4].health.path: must be at most 1024 bytes, got 1025`,
			`zones[5].health.path: must be printable ASCII without spaces or #, got "/é"`,
		}},

		{name: "unknown host", mutate: func(c *Config) { c.UnknownHost = UnknownHost{Status: 500, Body: "\xff"} },
			wantErr: []string{`unknown_host.status: must be 403, 404 or 421, got 500`, `unknown_host.body: must be UTF-8 text`}},
		{name: "unknown host body too long", mutate: func(c *Config) { c.UnknownHost.Body = strings.Repeat("x", MaxBodyBytes+1) },
			wantErr: []string{`unknown_host.body: must be at most 4096 bytes, got 4097`}},

		{name: "every problem at once", mutate: func(c *Config) {
			c.Zones[0].Name = "blog"
			c.Zones[0].Origins = []string{"shop-origin:80"}
			c.Zones[1].Hosts[0] = "shop.example.com"
			c.Zones[1].Health.Fall = 1000
			c.UnknownHost.Status = 200
		}, wantErr: []string{
			`zones[0].origins[0]: must be a literal IP address and port, like 192.0.2.10:8080 or [2001:db8::10]:8080 (origins are never resolved through DNS on the data path), got "shop-origin:80"`,
			`zones[1].name: zone name "blog" is also used by zones[0]`,
			`zones[1].hosts[0]: "shop.example.com" of zone "blog" is already claimed by zone "blog" (zones[0].hosts[0]): a host belongs to one zone`,
			`zones[1].health.fall: must be in 1..100, got 1000`,
			`unknown_host.status: must be 403, 404 or 421, got 200`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := NewTable(c); err != nil {
					t.Fatalf("NewTable: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.wantErr)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.wantErr, "\n") {
				t.Errorf("Validate:\n got %q\nwant %q", got, tc.wantErr)
			}
			if _, err := NewTable(c); err == nil {
				t.Error("NewTable built an invalid configuration")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := validConfig()
	d := c.WithDefaults()
	if got := d.Zones[0].Settings; got != DefaultSettings {
		t.Errorf("zone with no settings: got %+v, want the defaults %+v", got, DefaultSettings)
	}
	want := DefaultSettings
	want.MaxConnsPerOrigin, want.MaxIdlePerOrigin = 10, 10 // idle capped by conns
	want.Health = Health{Path: "/healthz?full=1", Interval: time.Second, Timeout: time.Second, Fall: 3, Rise: 2}
	if got := d.Zones[1].Settings; got != want {
		t.Errorf("zone with some settings:\n got %+v\nwant %+v", got, want)
	}
	if got := d.UnknownHost; got != (UnknownHost{Status: 421, Body: "Misdirected Request\n"}) {
		t.Errorf("unknown host: got %+v", got)
	}
	if c.Zones[0].Settings != (Settings{}) {
		t.Error("WithDefaults changed its receiver")
	}
	tb, err := NewTable(c)
	if err != nil {
		t.Fatal(err)
	}
	if tb.ByName("blog").Settings != want || tb.UnknownHost() != d.UnknownHost {
		t.Error("the table does not use the settings in force")
	}
}

// TestYAML decodes the section the way profiles.Parse does: strictly,
// inline in the profile's Spec.
func TestYAML(t *testing.T) {
	type spec struct {
		Name  string `yaml:"name"`
		Zones Config `yaml:",inline"`
	}
	decode := func(doc string) (spec, error) {
		var s spec
		dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.KnownFields(true)
		err := dec.Decode(&s)
		return s, err
	}
	s, err := decode(exampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Zones.Validate(); err != nil {
		t.Fatal(err)
	}
	z := s.Zones.Zones[1]
	if z.Name != "blog" || z.ConnectTimeout != 2*time.Second || z.Health.Path != "/healthz" || z.Health.Interval != 10*time.Second ||
		len(z.Origins) != 2 || z.Origins[1] != "[2001:db8::21]:8080" || s.Zones.UnknownHost.Status != 404 {
		t.Errorf("decoded %+v", s)
	}
	if _, err := decode("zones:\n  - name: a\n    connect_timeuot: 1s\n"); err == nil || !strings.Contains(err.Error(), "field connect_timeuot not found") {
		t.Errorf("misspelt key in a zone: %v", err)
	}
	if _, err := decode("zones:\n  - name: a\n    health: {pth: /}\n"); err == nil || !strings.Contains(err.Error(), "field pth not found") {
		t.Errorf("misspelt key in health: %v", err)
	}
	if _, err := decode("unknown_host: {status: 404, text: x}\n"); err == nil {
		t.Error("misspelt key in unknown_host: no error")
	}
}

// exampleYAML is the section as a profile writes it (see the report).
const exampleYAML = `
name: edge-default
zones:
  - name: shop
    hosts: [shop.example.com, "*.shop.example.com"]
    origins: ["192.0.2.10:8080", "192.0.2.11:8080"]
  - name: blog
    hosts:
      - blog.example.org
      - "*.example.org"
      - xn--bcher-kva.example.org
      - 198.51.100.7
    origins:
      - 192.0.2.20:8080
      - "[2001:db8::21]:8080"
    connect_timeout: 2s
    response_timeout: 60s
    max_conns_per_origin: 512
    max_idle_per_origin: 128
    idle_timeout: 90s
    health:
      path: /healthz
      interval: 10s
      timeout: 2s
      fall: 3
      rise: 2
unknown_host:
  status: 404
  body: "no site here\n"
`
