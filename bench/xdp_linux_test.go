package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rampart-edge/rampart/internal/testnet"
)

// TestRunXDP runs the whole harness with tiny counts (CI runs it in a few
// seconds) and checks the JSON a script would read.
func TestRunXDP(t *testing.T) {
	testnet.RequireRoot(t, "load BPF programs and build network namespaces")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunXDP(ctx, XDPOptions{Rounds: 1, Repeat: 1000, NewSources: 64, Live: true, LiveFrames: 20_000, Seed: 1,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("progress noise\n")
	if err := WriteJSON(&out, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not JSON: %v", err)
	}
	if got["name"] != "xdp" {
		t.Errorf("name = %v, want xdp", got["name"])
	}
	positive := func(path ...string) {
		t.Helper()
		var v any = got
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Errorf("%s: no object at %q", strings.Join(path, "."), k)
				return
			}
			v = m[k]
		}
		if f, ok := v.(float64); !ok || f <= 0 {
			t.Errorf("%s = %v, want a number > 0", strings.Join(path, "."), v)
		}
	}
	for _, k := range []string{baselineDrop, baselinePass, baselineXDPFilter} {
		positive("baseline_ns", k)
	}
	for _, k := range []string{caseTCPSYN, caseUDP, caseIPv6SYN, caseVLANSYN, caseBlocked, caseRateLimited} {
		positive("filter_ns", k)
	}
	positive("ratio_pass_vs_xdp_filter")
	positive("filter_new_source_ns", newSourcePass)
	positive("filter_new_source_ns", newSourceBlocked)
	// Floods this short last tens of ms: /proc/stat's 10 ms ticks make
	// those figures coarse (even negative after the idle correction), so
	// only their presence is checked; the thread times are exact.
	for _, k := range []string{"xdp_ns_per_drop", "nftables_ns_per_drop", "xdp_drop_floor_ns_per_drop", "ratio_nftables_vs_xdp"} {
		if _, ok := got["live"].(map[string]any)[k].(float64); !ok {
			t.Errorf("live.%s missing", k)
		}
	}
	for _, k := range []string{liveRampart, liveNftables, liveFloor} {
		positive("live", "thread_ns_per_drop", k)
	}
	positive("live", "ratio_nftables_vs_xdp_thread")
	for _, k := range []string{"cpu", "kernel", "go"} {
		if s, _ := got["machine"].(map[string]any)[k].(string); s == "" {
			t.Errorf("machine.%s is empty", k)
		}
	}
	positive("machine", "cores")
	if c := res.Live.LegitConnects[liveRampart]; c.Failed > 0 {
		t.Errorf("legitimate connections failed through the filter during the flood: %+v", c)
	}
	if res.Live.DropShare[liveRampart] < 0.99 || res.Live.DropShare[liveNftables] < 0.99 {
		t.Errorf("droppers missed frames: %v", res.Live.DropShare)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tcp_syn_pass", "xdp-filter", "nftables", "machine:"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestRigRejectsWrongPath proves a case is never timed on a path it does
// not name.
func TestRigRejectsWrongPath(t *testing.T) {
	testnet.RequireRoot(t, "load BPF programs")
	rig, err := newXDPRig(1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	c := rig.cases[0]
	c.want = rig.cases[len(rig.cases)-2].want // a pass frame claimed to be blocked
	if err := rig.prepare(c); err == nil {
		t.Error("prepare accepted a frame that reaches another reason")
	}
}

// BenchmarkFilter times Rampart's filter on every case beside the bare
// programs and xdp-filter, with BPF_PROG_TEST_RUN on CPU 1. Compare runs
// with -count=10 and benchstat on the ns/pkt metric.
func BenchmarkFilter(b *testing.B) {
	testnet.RequireRoot(b, "load BPF programs")
	rig, err := newXDPRig(1, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer rig.Close()
	ref := rig.cases[0].frame
	b.Run("baseline-xdp-drop", func(b *testing.B) { benchProg(b, rig.drop, ref, actionDrop) })
	b.Run("baseline-xdp-pass", func(b *testing.B) { benchProg(b, rig.pass, ref, actionPass) })
	for _, c := range rig.cases {
		if c.compare {
			b.Run("xdp-filter/"+c.name, func(b *testing.B) { benchProg(b, rig.xf.Program(), c.frame, actionPass) })
		}
	}
	for _, c := range rig.cases {
		b.Run("rampart/"+c.name, func(b *testing.B) {
			if err := rig.prepare(c); err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := rig.unprepare(c); err != nil {
					b.Error(err)
				}
			}()
			benchProg(b, rig.filter.Program(), c.frame, wantAction(c))
		})
	}
}

// benchProg reports the kernel's time per packet (ns/pkt). One op is one
// BPF_PROG_TEST_RUN of benchRepeat runs; ns/op is mostly not the program:
// for a repeat above 1 the kernel swaps the program into the XDP
// dispatcher and back around each call (tens of ms on a VM), outside the
// time it reports.
func benchProg(b *testing.B, prog *ebpf.Program, frame []byte, action uint32) {
	const benchRepeat = 100_000
	restore, _, err := pinThread(testRunCPU)
	if err != nil {
		b.Fatal(err)
	}
	defer restore()
	b.ReportAllocs()
	var total float64
	var runs int
	for b.Loop() {
		ns, err := timeProg(prog, frame, benchRepeat, action)
		if err != nil {
			b.Fatal(err)
		}
		total += ns * benchRepeat
		runs += benchRepeat
	}
	b.ReportMetric(total/float64(runs), "ns/pkt")
}
