package zone

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// refTable is a simple reference for Lookup, written with strings and
// net/netip, and a linear scan for wildcards.
type refTable struct {
	exact, wild map[string]string // host or wildcard suffix → zone name
	ips         map[netip.Addr]string
}

func newRefTable(c Config) *refTable {
	r := &refTable{exact: map[string]string{}, wild: map[string]string{}, ips: map[netip.Addr]string{}}
	for _, z := range c.Zones {
		for _, h := range z.Hosts {
			if a, err := netip.ParseAddr(h); err == nil {
				r.ips[a] = z.Name
			} else if suffix, ok := strings.CutPrefix(h, "*."); ok {
				r.wild[suffix] = z.Name
			} else {
				r.exact[h] = z.Name
			}
		}
	}
	return r
}

var (
	refPort = regexp.MustCompile(`^(:[0-9]{0,5})?$`)
	refName = regexp.MustCompile(`^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$`)
)

func (r *refTable) lookup(host string) string {
	if len(host) > hostBufLen || strings.ContainsFunc(host, func(c rune) bool { return c >= 0x80 }) {
		return ""
	}
	h := strings.ToLower(host)
	ip6 := func(s string) string {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return ""
		}
		return r.ips[a]
	}
	if strings.HasPrefix(h, "[") {
		end := strings.Index(h, "]")
		if end < 0 || !refPort.MatchString(h[end+1:]) {
			return ""
		}
		return ip6(h[1:end])
	}
	if strings.Count(h, ":") > 1 {
		return ip6(h)
	}
	if i := strings.Index(h, ":"); i >= 0 {
		if !refPort.MatchString(h[i:]) {
			return ""
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return r.ips[a]
	}
	if len(h) > maxNameLen || !refName.MatchString(h) {
		return ""
	}
	if z, ok := r.exact[h]; ok {
		return z
	}
	best, bestLen := "", -1
	for suffix, z := range r.wild {
		if strings.HasSuffix(h, "."+suffix) && len(suffix) > bestLen {
			best, bestLen = z, len(suffix)
		}
	}
	return best
}

// FuzzLookup checks that Lookup never panics and agrees with refTable on
// every input, and that the allocation-free address parsers agree with
// net/netip.
func FuzzLookup(f *testing.F) {
	for _, tc := range lookupTests {
		f.Add(tc.host)
	}
	for _, s := range []string{
		"[::]", "::", "[::1]:", "1::", "::1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "1:2:3:4:5:6::1.2.3.4",
		"1:2:3:4:5:6:7:1.2.3.4", "[1::2::3]", "[12345::]", "[::1.2.3]", "0.0.0.0", "255.255.255.255", "256.0.0.1",
		"1.2.3.4.5", "a.b.eu.example.com.:", "*.example.com", "x.example.com:0", "\xff.example.com", "K.example.com",
		"\u212a.example.com", "[::ffff:192.0.2.9]:443", "1.2.3.4:", "[2001:db8::1]:65535", "-.example.com",
	} {
		f.Add(s)
	}
	cfg := lookupConfig()
	tb := build(cfg)
	ref := newRefTable(cfg)
	f.Fuzz(func(t *testing.T, host string) {
		got := ""
		if z := tb.Lookup([]byte(host)); z != nil {
			got = z.Name
		}
		if z := tb.LookupString(host); (z == nil && got != "") || (z != nil && z.Name != got) {
			t.Fatalf("Lookup and LookupString disagree on %q", host)
		}
		if want := ref.lookup(host); got != want {
			t.Fatalf("Lookup(%q) = %q, reference says %q", host, got, want)
		}

		a, err := netip.ParseAddr(host)
		if got, ok := parseIPv4([]byte(host)); ok != (err == nil && a.Is4()) || ok && got != a {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", host, got, ok, a, err)
		}
		if got, ok := parseIPv6([]byte(host)); ok != (err == nil && a.Is6() && a.Zone() == "") || ok && got != a {
			t.Fatalf("parseIPv6(%q) = %v, %v; netip: %v, %v", host, got, ok, a, err)
		}
	})
}
