package zone

import (
	"strings"
	"testing"
)

// lookupConfig has a zone per kind of host, so that a lookup's result
// names the entry that matched.
func lookupConfig() Config {
	zone := func(name string, hosts ...string) Spec {
		return Spec{Name: name, Hosts: hosts, Origins: []string{"192.0.2.1:80"}}
	}
	return Config{Zones: []Spec{
		zone("apex", "example.com"),
		zone("www", "www.example.com"),
		zone("wild", "*.example.com"),
		zone("eu", "*.eu.example.com"),
		zone("api", "api.eu.example.com"),
		zone("net", "*.example.net"),
		zone("idn", "xn--bcher-kva.example.org"),
		zone("ip4", "192.0.2.1"),
		zone("ip6", "2001:db8::1", "::ffff:192.0.2.9"),
		zone("digits", "123.example.io", "*.9.example.io"),
	}}
}

var lookupTests = []struct {
	name, host, want string // want "" for nil
}{
	{"apex", "example.com", "apex"},
	{"exact", "www.example.com", "www"},
	{"wildcard", "a.example.com", "wild"},
	{"wildcard depth 3", "a.b.c.example.com", "wild"},
	{"wildcard not apex", "example.net", ""},
	{"wildcard of other apex", "shop.example.net", "net"},
	{"exact beats wildcard", "api.eu.example.com", "api"},
	{"longest wildcard", "x.eu.example.com", "eu"},
	{"longest wildcard depth", "a.b.eu.example.com", "eu"},
	{"below exact under wildcard", "v1.api.eu.example.com", "eu"},
	{"apex of inner wildcard falls to outer", "eu.example.com", "wild"},
	{"suffix without dot", "notexample.com", ""},
	{"suffix without dot under wildcard", "xeu.example.com", "wild"},
	{"tld", "com", ""},
	{"uppercase", "WWW.Example.COM", "www"},
	{"uppercase wildcard", "A.EU.EXAMPLE.COM", "eu"},
	{"port", "www.example.com:443", "www"},
	{"empty port", "www.example.com:", "www"},
	{"trailing dot", "www.example.com.", "www"},
	{"trailing dot and port", "Www.Example.Com.:8443", "www"},
	{"wildcard with port", "a.example.com:80", "wild"},
	{"underscore under wildcard", "my_site.example.com", "wild"},
	{"digit labels", "123.example.io", "digits"},
	{"digit labels wildcard", "1.2.9.example.io", "digits"},
	{"A-label", "xn--bcher-kva.example.org", "idn"},
	{"A-label uppercase", "XN--BCHER-KVA.EXAMPLE.ORG", "idn"},
	{"U-label", "bücher.example.org", ""},
	{"ipv4", "192.0.2.1", "ip4"},
	{"ipv4 port", "192.0.2.1:8080", "ip4"},
	{"ipv4 trailing dot", "192.0.2.1.", "ip4"},
	{"ipv4 unknown", "192.0.2.2", ""},
	{"ipv4 leading zero", "192.0.2.01", ""},
	{"ipv4 bracketed", "[192.0.2.1]", ""},
	{"ipv6 bracketed", "[2001:db8::1]", "ip6"},
	{"ipv6 port", "[2001:db8::1]:443", "ip6"},
	{"ipv6 long uppercase", "[2001:DB8:0:0:0:0:0:1]:443", "ip6"},
	{"ipv6 bare", "2001:db8::1", "ip6"},
	{"ipv6 mapped", "[::ffff:192.0.2.9]", "ip6"},
	{"ipv4 is not mapped", "192.0.2.9", ""},
	{"ipv6 unknown", "[2001:db8::2]", ""},
	{"ipv6 unclosed", "[2001:db8::1", ""},
	{"ipv6 garbage after", "[2001:db8::1]x", ""},
	{"ipv6 zone", "[fe80::1%25eth0]", ""},
	{"ipv6 empty", "[]", ""},
	{"empty", "", ""},
	{"only port", ":80", ""},
	{"only dot", ".", ""},
	{"bad port", "www.example.com:https", ""},
	{"long port", "www.example.com:123456", ""},
	{"two trailing dots", "www.example.com..", ""},
	{"empty label", "a..example.com", ""},
	{"leading dot", ".example.com", ""},
	{"space", "www.example.com ", ""},
	{"slash", "a/b.example.com", ""},
	{"label of 63", strings.Repeat("a", 63) + ".example.com", "wild"},
	{"label of 64", strings.Repeat("a", 64) + ".example.com", ""},
	{"name of 253", strings.Repeat("a.", 121) + "example.com", "wild"},
	{"name of 254", "b" + strings.Repeat("a.", 121) + "example.com", ""},
	{"name of 253 with dot and port", strings.Repeat("a.", 121) + "example.com.:65535", "wild"},
	{"name of 253 with dot and long port", strings.Repeat("a.", 121) + "example.com.:655350", ""},
	{"too long", strings.Repeat("a", 300), ""},
}

func TestLookup(t *testing.T) {
	tb, err := NewTable(lookupConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range lookupTests {
		t.Run(tc.name, func(t *testing.T) {
			for _, z := range []*Zone{tb.Lookup([]byte(tc.host)), tb.LookupString(tc.host)} {
				got := ""
				if z != nil {
					got = z.Name
				}
				if got != tc.want {
					t.Errorf("Lookup(%q) = %q, want %q", tc.host, got, tc.want)
				}
			}
		})
	}
}

func TestLookupDoesNotModifyInput(t *testing.T) {
	tb := build(lookupConfig())
	host := []byte("WWW.EXAMPLE.COM:80")
	tb.Lookup(host)
	if string(host) != "WWW.EXAMPLE.COM:80" {
		t.Errorf("Lookup changed its input to %q", host)
	}
}

func TestLookupAllocs(t *testing.T) {
	tb := build(lookupConfig())
	hosts := make([][]byte, len(lookupTests))
	for i, tc := range lookupTests {
		hosts[i] = []byte(tc.host)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i, h := range hosts {
			tb.Lookup(h)
			tb.LookupString(lookupTests[i].host)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run of %d hosts, want 0", allocs, len(hosts))
	}
}

func TestTable(t *testing.T) {
	tb, err := NewTable(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Zones()) != 2 || tb.Hosts() != 7 {
		t.Errorf("%d zones, %d hosts; want 2 and 7", len(tb.Zones()), tb.Hosts())
	}
	for i, z := range tb.Zones() {
		if z.Index != i || tb.ByName(z.Name) != z {
			t.Errorf("zone %d: index %d, ByName %p", i, z.Index, tb.ByName(z.Name))
		}
		for _, o := range z.Origins {
			if o.Zone != z || !o.Healthy() || o.String() != o.Addr.String() {
				t.Errorf("origin %v of %s: zone %p, healthy %v", o, z.Name, o.Zone, o.Healthy())
			}
		}
	}
	shop := tb.ByName("shop")
	if got := shop.Origins[1].String(); got != "[2001:db8::10]:8080" {
		t.Errorf("origin address %q", got)
	}
	if shop.healthHost != "shop.example.com" || tb.ByName("blog").healthHost != "blog.example.org" {
		t.Errorf("health check hosts %q, %q", shop.healthHost, tb.ByName("blog").healthHost)
	}
	if tb.ByName("nope") != nil {
		t.Error("ByName of an unknown zone")
	}
}

func TestIsALabel(t *testing.T) {
	for _, s := range []string{"bcher-kva", "ls8h", "mnchen-3ya", "fiqs8s", "80ak6aa92e", "p1ai", "wgv71a119e"} {
		if !isALabel(s) {
			t.Errorf("xn--%s is a valid A-label", s)
		}
	}
	for _, s := range []string{"", "abc-", "zz", "99999999999", "bcher-kv!", "bcher-k"} {
		if isALabel(s) {
			t.Errorf("xn--%s is not a valid A-label", s)
		}
	}
}
