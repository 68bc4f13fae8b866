package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampart-edge/rampart/xdp"
)

func TestMedianAndRatios(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{name: "empty", xs: nil, want: 0},
		{name: "one", xs: []float64{7}, want: 7},
		{name: "odd", xs: []float64{9, 1, 5}, want: 5},
		{name: "even", xs: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.xs); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
	// Per-round ratios skip rounds without a denominator.
	got := ratios([]float64{2, 6, 9}, []float64{1, 0, 3})
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("ratios = %v, want [2 3]", got)
	}
}

func TestBlocklist(t *testing.T) {
	a, b := blocklist(1), blocklist(1)
	if len(a) != blockedPrefixes {
		t.Fatalf("%d prefixes, want %d", len(a), blockedPrefixes)
	}
	seen := map[netip.Prefix]bool{}
	v6, short := 0, 0
	for i, p := range a {
		if p != b[i] {
			t.Fatalf("prefix %d differs between two runs with one seed: %s vs %s", i, p, b[i])
		}
		if seen[p] {
			t.Fatalf("duplicate prefix %s", p)
		}
		seen[p] = true
		if p != p.Masked() {
			t.Errorf("prefix %s is not masked", p)
		}
		for _, legit := range []netip.Addr{legitV4, legitV6, hintedSource, rateSource, servedV4, servedV6} {
			if p.Contains(legit) {
				t.Errorf("prefix %s blocks legitimate source %s", p, legit)
			}
		}
		if p.Addr().Is6() {
			v6++
			if p.Bits() < 32 {
				t.Errorf("IPv6 prefix %s shorter than /32", p)
			}
			if xdp.HintSlot(p.Addr()) == xdp.HintSlot(legitV6) {
				t.Errorf("IPv6 prefix %s shares the legitimate IPv6 source's hint slot", p)
			}
		} else if p.Bits() < 16 {
			short++
		}
	}
	if v6 != int(blockedPrefixes*blockedV6Share) {
		t.Errorf("%d IPv6 prefixes, want %d", v6, int(blockedPrefixes*blockedV6Share))
	}
	if short == 0 || short > blockedPrefixes/20 {
		t.Errorf("%d IPv4 prefixes shorter than /16: want some, but few", short)
	}
	for _, src := range []netip.Addr{blockedSource, floodSource} {
		found := false
		for _, p := range a {
			if p.Contains(src) && p.Bits() == 24 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not inside a blocked /24", src)
		}
	}
	if c := blocklist(2); c[len(deliberateBlocks)] == a[len(deliberateBlocks)] {
		t.Error("another seed gave the same first generated prefix")
	}
}

func TestBuildProfile(t *testing.T) {
	ps, err := buildProfile(1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range ps.Config.Services {
		n += len(s.Addrs) * (len(s.TCP) + len(s.UDP))
	}
	if n != servedEntries {
		t.Errorf("%d served entries, want %d", n, servedEntries)
	}
	if !serves(ps.Config.Services, attackDst, 443) {
		t.Errorf("attack destination %s is not served", attackDst)
	}
	if got := hintedPct(ps.Block, false); got <= 0 || got >= 100 {
		t.Errorf("hinted IPv4 slots %.1f%%, want within (0, 100)", got)
	}
}

func TestParseCPUBusy(t *testing.T) {
	const stat = "cpu  7090 0 5793 193605 350 0 73 9 0 0\ncpu0 3203 0 2880 97278 38 4 21 3 0 0\ncpu1 3887 0 2912 96326 311 0 51 5 0 0\nintr 1\n"
	tests := []struct {
		name    string
		stat    string
		cpu     int
		want    uint64
		wantErr bool
	}{
		{name: "cpu0", stat: stat, cpu: 0, want: 2880 + 4 + 21},
		{name: "cpu1", stat: stat, cpu: 1, want: 2912 + 0 + 51},
		{name: "missing-cpu", stat: stat, cpu: 2, wantErr: true},
		{name: "negative-cpu", stat: stat, cpu: -1, wantErr: true},
		{name: "short-line", stat: "cpu0 1 2 3\n", cpu: 0, wantErr: true},
		{name: "not-a-number", stat: "cpu0 1 2 x 4 5 6 7 8\n", cpu: 0, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUBusy(strings.NewReader(tc.stat), tc.cpu)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseTaskTicks(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{name: "ksoftirqd", stat: "15 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 12 345 0 0 20 0 1 0 3 0 0", want: 357},
		{name: "spaces-in-name", stat: "99 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0", want: 15},
		{name: "no-name", stat: "15 S 2 0 0", wantErr: true},
		{name: "short", stat: "15 (x) S 2 0 0", wantErr: true},
		{name: "bad-utime", stat: "15 (x) S 2 0 0 0 -1 0 0 0 0 0 u 8 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTaskTicks(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzProcStat checks both /proc parsers: an error or a result, never a
// panic, and a result never exceeding what the text could hold.
func FuzzProcStat(f *testing.F) {
	f.Add("cpu0 3203 0 2880 97278 38 4 21 3 0 0\n", 0)
	f.Add("cpu  1 2 3 4 5 6 7\ncpu1 1 2 3 4 5 6 7 8\n", 1)
	f.Add("15 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 12 345 0 0 20 0 1 0 3 0 0", 0)
	f.Add("cpu0 18446744073709551615 0 18446744073709551615 0 0 1 1\n", 0)
	f.Fuzz(func(t *testing.T, text string, cpu int) {
		if v, err := parseCPUBusy(strings.NewReader(text), cpu); err != nil && v != 0 {
			t.Errorf("parseCPUBusy returned %d with error %v", v, err)
		}
		if v, err := parseTaskTicks(text); err != nil && v != 0 {
			t.Errorf("parseTaskTicks returned %d with error %v", v, err)
		}
	})
}

func TestResultJSONWithoutLive(t *testing.T) {
	r := &XDPResult{Name: "xdp", BaselineNs: map[string]float64{baselineDrop: 4}, LiveSkipped: "--no-live"}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["live"]; ok {
		t.Error(`"live" present in a result without a live measurement`)
	}
	if got["name"] != "xdp" || !strings.HasSuffix(buf.String(), "}\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("not one line of JSON named xdp: %q", buf.String())
	}
	if err := r.WriteTable(&buf); err != nil || math.IsNaN(r.RatioPassVsXDPFilter) {
		t.Errorf("table: %v", err)
	}
}
