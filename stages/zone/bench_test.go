package zone

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// benchConfig has 100,000 hosts: 25,000 zones, each with an apex, a www
// name, a wildcard and a name in another domain.
func benchConfig() Config {
	const zones = 25_000
	c := Config{Zones: make([]Spec, zones)}
	for i := range zones {
		c.Zones[i] = Spec{
			Name: fmt.Sprintf("site%d", i),
			Hosts: []string{fmt.Sprintf("site%d.com", i), fmt.Sprintf("www.site%d.com", i),
				fmt.Sprintf("*.site%d.com", i), fmt.Sprintf("api.site%d.net", i)},
			Origins: []string{fmt.Sprintf("10.%d.%d.1:80", i>>8&255, i&255)},
		}
	}
	c.Zones[0].Hosts = append(c.Zones[0].Hosts, "2001:db8::1")
	return c
}

// BenchmarkLookup compares Lookup with its floor, a bare map index of the
// same (already lowercase) exact name. Each case cycles through 1,024
// different hosts of the 100,000.
func BenchmarkLookup(b *testing.B) {
	tb, err := NewTable(benchConfig())
	if err != nil {
		b.Fatal(err)
	}
	hosts := func(format string) [][]byte {
		out := make([][]byte, 1024)
		for i := range out {
			out[i] = []byte(fmt.Sprintf(format, i*24%25_000))
		}
		return out
	}
	run := func(name string, hs [][]byte, want bool, lookup func([]byte) *Zone) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if (lookup(hs[i&1023]) != nil) != want {
					b.Fatalf("lookup of %q", hs[i&1023])
				}
				i++
			}
		})
	}
	exact := hosts("www.site%d.com")
	run("baseline-map-index", exact, true, func(h []byte) *Zone { return tb.exact[string(h)] })
	run("exact", exact, true, tb.Lookup)
	run("exact-case-port", hosts("WWW.Site%d.com:443"), true, tb.Lookup)
	run("wildcard", hosts("img.site%d.com"), true, tb.Lookup)
	run("wildcard-depth-4", hosts("a.b.c.img.site%d.com"), true, tb.Lookup)
	run("miss", hosts("www.nosite%d.org"), false, tb.Lookup)
	run("ipv6", hosts("[2001:db8::1]:%d"), true, tb.Lookup)
	long := hosts(strings.Repeat("label.", 30) + "site%d.com")
	run("wildcard-depth-31", long, true, tb.Lookup)
}

// BenchmarkNewTable validates and builds 100,000 hosts, reporting the
// table's heap per host.
func BenchmarkNewTable(b *testing.B) {
	c := benchConfig()
	b.ReportAllocs()
	var tb *Table
	var before, after runtime.MemStats
	for b.Loop() {
		tb = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		if tb, err = NewTable(c); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(tb.Hosts()), "heap-B/host")
}
