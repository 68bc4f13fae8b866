package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/xdp"
)

func TestStats(t *testing.T) {
	f, root, _ := pinnedFilter(t, nil)
	syn := packets.MustBuild(packets.Spec{Src: client, Dst: edge, Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})
	null := packets.MustBuild(packets.Spec{Src: client, Dst: edge, Proto: packets.TCP, SrcPort: 40000, DstPort: 443})
	for _, fr := range [][]byte{syn, null, null} {
		if _, err := f.Run(fr); err != nil {
			t.Fatal(err)
		}
	}

	out := mustRun(t, root, "xdp", "stats")
	for _, want := range []string{
		"filter on test0: filter_services=on fragments=drop rate_limit=on allow_icmp=on sampling=1 in 64 drops attack_addrs=0",
		"pass pass 1 " + itoa(len(syn)),
		"tcp_flags drop 2 " + itoa(2*len(null)),
		"total drop 2 ",
		"total all 3 ",
	} {
		if !strings.Contains(squash(out), want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}

	var r report
	if err := json.Unmarshal([]byte(mustRun(t, root, "xdp", "stats", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Reasons) != 2 || r.Reasons[1].Reason != "tcp_flags" || r.Reasons[1].Packets != 2 ||
		r.Totals[2].Packets != 3 || !r.Settings.FilterServices || r.Settings.SampleEvery != 64 || r.Iface != "test0" {
		t.Errorf("stats --json = %+v", r)
	}
	if err := json.Unmarshal([]byte(mustRun(t, root, "xdp", "stats", "--json", "--all")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Reasons) != len(xdp.Reasons()) {
		t.Errorf("--all shows %d reasons, want %d", len(r.Reasons), len(xdp.Reasons()))
	}

	// Watch while frames keep arriving: each interval's rates are nonzero.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := f.Run(null); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	out = mustRun(t, root, "xdp", "stats", "--watch", "--interval", "100ms", "--count", "2", "--json")
	cancel()
	wg.Wait()
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); lines++ {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.IntervalSeconds < 0.05 || len(r.Reasons) != 1 || r.Reasons[0].Reason != "tcp_flags" ||
			*r.Reasons[0].PacketsPerSecond <= 0 || *r.Totals[1].PacketsPerSecond != *r.Reasons[0].PacketsPerSecond {
			t.Errorf("watch line: %s", sc.Text())
		}
	}
	if lines != 2 {
		t.Errorf("--count 2 printed %d lines:\n%s", lines, out)
	}
	out = mustRun(t, root, "xdp", "stats", "-w", "--interval", "20ms", "--count", "1")
	if !strings.Contains(out, "PKTS/S") || !strings.Contains(out, "total") {
		t.Errorf("watch table:\n%s", out)
	}
	if _, _, err := rampartctl(t, root, "xdp", "stats", "--watch", "--interval", "1ms"); err == nil {
		t.Error("an interval of 1ms was accepted")
	}
}

// TestBuildReport checks rates, totals and row selection without a
// kernel.
func TestBuildReport(t *testing.T) {
	n := len(xdp.Reasons())
	counters := func(set map[xdp.Reason]xdp.Counter) []xdp.Counter {
		c := make([]xdp.Counter, n)
		for r, v := range set {
			c[r] = v
		}
		return c
	}
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name      string
		prev      *statsSample
		cur       statsSample
		all       bool
		wantRows  []string
		wantRates map[string]float64 // packets per second by reason
		wantTotal [3]uint64          // packets: pass, drop, all
	}{
		{name: "totals only", cur: statsSample{t0, counters(map[xdp.Reason]xdp.Counter{
			xdp.ReasonPass: ctr(10, 600), xdp.ReasonBlocklist: ctr(5, 300)})},
			wantRows: []string{"pass", "blocklist"}, wantTotal: [3]uint64{10, 5, 15}},
		{name: "all rows", cur: statsSample{t0, counters(nil)}, all: true, wantTotal: [3]uint64{0, 0, 0}},
		{name: "rates over two seconds",
			prev: &statsSample{t0, counters(map[xdp.Reason]xdp.Counter{xdp.ReasonPass: ctr(10, 600), xdp.ReasonTCPFlags: ctr(4, 160)})},
			cur: statsSample{t0.Add(2 * time.Second), counters(map[xdp.Reason]xdp.Counter{
				xdp.ReasonPass: ctr(30, 1800), xdp.ReasonTCPFlags: ctr(4, 160), xdp.ReasonRateSYN: ctr(8, 480)})},
			wantRows:  []string{"pass", "rate_syn"},
			wantRates: map[string]float64{"pass": 10, "rate_syn": 4},
			wantTotal: [3]uint64{30, 12, 42}},
		{name: "counter reset counts as new",
			prev:      &statsSample{t0, counters(map[xdp.Reason]xdp.Counter{xdp.ReasonPass: ctr(1000, 60000)})},
			cur:       statsSample{t0.Add(time.Second), counters(map[xdp.Reason]xdp.Counter{xdp.ReasonPass: ctr(7, 420)})},
			wantRows:  []string{"pass"},
			wantRates: map[string]float64{"pass": 7},
			wantTotal: [3]uint64{7, 0, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := buildReport("eth0", xdp.Settings{}, tc.prev, tc.cur, tc.all)
			if tc.all {
				if len(r.Reasons) != n {
					t.Errorf("%d rows, want %d", len(r.Reasons), n)
				}
			} else {
				var got []string
				for _, x := range r.Reasons {
					got = append(got, x.Reason)
					if want, ok := tc.wantRates[x.Reason]; ok && *x.PacketsPerSecond != want {
						t.Errorf("%s: %v pkts/s, want %v", x.Reason, *x.PacketsPerSecond, want)
					}
				}
				if strings.Join(got, ",") != strings.Join(tc.wantRows, ",") {
					t.Errorf("rows %v, want %v", got, tc.wantRows)
				}
			}
			for i, want := range tc.wantTotal {
				if r.Totals[i].Packets != want {
					t.Errorf("total %s = %d, want %d", r.Totals[i].Verdict, r.Totals[i].Packets, want)
				}
			}
			if (tc.prev == nil) != (r.Totals[0].PacketsPerSecond == nil) {
				t.Errorf("rates present = %v with prev = %v", r.Totals[0].PacketsPerSecond != nil, tc.prev != nil)
			}
		})
	}
}

func squash(s string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		b.WriteString(strings.Join(strings.Fields(l), " "))
		b.WriteString(" \n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func ctr(packets, bytes uint64) xdp.Counter { return xdp.Counter{Packets: packets, Bytes: bytes} }
