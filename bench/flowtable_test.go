package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestRunFlowtable runs the whole harness at tiny sizes and checks the
// JSON that scripts read.
func TestRunFlowtable(t *testing.T) {
	opts := FlowtableOptions{Rounds: 2, Ops: 3000, Keys: 1000, Memory: true, MemFlows: 4000, Seed: 7}
	res, err := RunFlowtable(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "}\n") {
		t.Fatalf("not one line of JSON: %q", buf.String())
	}
	var got struct {
		Name              string             `json:"name"`
		OpsPerS           map[string]float64 `json:"ops_per_s"`
		RatioVsSyncMap    *float64           `json:"ratio_vs_sync_map"`
		RatioVsRWMutexMap *float64           `json:"ratio_vs_rwmutex_map"`
		BytesPerFlow      *float64           `json:"bytes_per_flow"`
		AllocsPerOp       *float64           `json:"allocs_per_op"`
		Workloads         map[string]map[string]struct {
			Goroutines     int                  `json:"goroutines"`
			OpsPerS        map[string]float64   `json:"ops_per_s"`
			RatioVsSyncMap float64              `json:"ratio_vs_sync_map"`
			AllocsPerOp    map[string]float64   `json:"allocs_per_op"`
			Samples        map[string][]float64 `json:"samples_ops_per_s"`
		} `json:"workloads"`
		Memory *struct {
			Flows   int               `json:"flows"`
			Rampart FlowMemoryFigures `json:"rampart"`
			GoMap   FlowMemoryFigures `json:"go_map"`
			SyncMap FlowMemoryFigures `json:"sync_map"`
		} `json:"memory"`
		WorkerCPUs map[string][]int `json:"worker_cpus"`
		Machine    *Machine         `json:"machine"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "flowtable" {
		t.Errorf("name %q, want flowtable", got.Name)
	}
	for _, s := range flowStoreNames {
		if got.OpsPerS[s] <= 0 {
			t.Errorf("ops_per_s[%q] = %v, want > 0", s, got.OpsPerS[s])
		}
	}
	if got.RatioVsSyncMap == nil || *got.RatioVsSyncMap <= 0 || got.RatioVsRWMutexMap == nil || *got.RatioVsRWMutexMap <= 0 {
		t.Errorf("ratios missing or not positive: %s", buf.String())
	}
	// The count is the process's mallocs over the run divided by its
	// operations: goroutines other tests of this package left winding down
	// (servers, clients) can add a few. One per op would read 1.
	if got.AllocsPerOp == nil || *got.AllocsPerOp > 0.01 {
		t.Errorf("allocs_per_op missing or above 0.01 for the table: %s", buf.String())
	}
	if got.BytesPerFlow == nil || *got.BytesPerFlow <= 0 {
		t.Errorf("bytes_per_flow missing or not positive")
	}
	for _, wl := range []string{workloadMixed, workloadReadOnly} {
		for _, g := range flowGoroutines {
			run, ok := got.Workloads[wl][gName(g)]
			if !ok {
				t.Errorf("no workloads.%s.%s", wl, gName(g))
				continue
			}
			if run.Goroutines != g || run.RatioVsSyncMap <= 0 || len(run.AllocsPerOp) != len(flowStoreNames) {
				t.Errorf("workloads.%s.%s incomplete: %+v", wl, gName(g), run)
			}
			for _, s := range flowStoreNames {
				if run.OpsPerS[s] <= 0 || len(run.Samples[s]) != opts.Rounds {
					t.Errorf("workloads.%s.%s: %s has %v ops/s from %d samples", wl, gName(g), s, run.OpsPerS[s], len(run.Samples[s]))
				}
			}
		}
		if got.Workloads[wl][gName(headlineGoroutines)].OpsPerS[storeRampart] != got.OpsPerS[storeRampart] && wl == workloadMixed {
			t.Errorf("top-level ops_per_s is not the mixed workload with %d goroutines", headlineGoroutines)
		}
	}
	if m := got.Memory; m == nil || m.Flows != opts.MemFlows || m.Rampart.TotalBytes <= 0 || m.GoMap.BytesPerFlow <= 0 ||
		m.SyncMap.BytesPerFlow <= 0 || m.GoMap.Entries != opts.MemFlows || m.SyncMap.Entries != opts.MemFlows {
		t.Errorf("memory figures incomplete: %+v", got.Memory)
	}
	if len(got.WorkerCPUs[gName(4)]) != 4 {
		t.Errorf("worker_cpus.g4 = %v, want 4 CPUs", got.WorkerCPUs[gName(4)])
	}
	if got.Machine == nil || got.Machine.Cores < 1 || got.Machine.Go == "" {
		t.Errorf("machine incomplete: %+v", got.Machine)
	}
	if err := res.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestRunFlowtableRejects(t *testing.T) {
	tests := []struct {
		name string
		opts FlowtableOptions
	}{
		{name: "no-rounds", opts: FlowtableOptions{Ops: 10, Keys: 100}},
		{name: "no-ops", opts: FlowtableOptions{Rounds: 1, Keys: 100}},
		{name: "few-keys", opts: FlowtableOptions{Rounds: 1, Ops: 10, Keys: 8}},
		{name: "few-memory-flows", opts: FlowtableOptions{Rounds: 1, Ops: 10, Keys: 100, Memory: true, MemFlows: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RunFlowtable(t.Context(), tc.opts); err == nil {
				t.Error("no error")
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := RunFlowtable(ctx, FlowtableOptions{Rounds: 1, Ops: 10, Keys: 100}); err == nil {
		t.Error("no error from a cancelled run")
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "status", status: "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    1234 kB\nRssAnon:\t 1 kB\n", want: 1234 << 10},
		{name: "zero", status: "VmRSS:\t0 kB\n", want: 0},
		{name: "missing", status: "Name:\tx\n", wantErr: true},
		{name: "not-kb", status: "VmRSS:\t12 MB\n", wantErr: true},
		{name: "not-a-number", status: "VmRSS:\tx kB\n", wantErr: true},
		{name: "negative", status: "VmRSS:\t-4 kB\n", wantErr: true},
		{name: "overflow", status: "VmRSS:\t9223372036854775807 kB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS(strings.NewReader(tc.status))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzVmRSS: an error or a whole number of KiB, never negative, never a
// value with an error.
func FuzzVmRSS(f *testing.F) {
	f.Add("VmRSS:\t    1234 kB\n")
	f.Add("Name:\tx\nVmRSS:\t0 kB\n")
	f.Add("VmRSS:\t9007199254740991 kB\n")
	f.Add("VmRSS: kB")
	f.Fuzz(func(t *testing.T, status string) {
		v, err := parseVmRSS(strings.NewReader(status))
		if err != nil && v != 0 {
			t.Errorf("%d with error %v", v, err)
		}
		if v < 0 || v%1024 != 0 {
			t.Errorf("%d bytes: negative or not whole KiB", v)
		}
	})
}

// TestFlowtableMemory measures bytes per flow at 10 M flows, the issue's
// size. It needs about 3 GB for a minute, so it runs only with
// RAMPART_BENCH_MEM=1; `rampart bench flowtable` measures the same.
func TestFlowtableMemory(t *testing.T) {
	if os.Getenv("RAMPART_BENCH_MEM") != "1" {
		t.Skip("set RAMPART_BENCH_MEM=1 to fill 10 M flows (about 3 GB of memory)")
	}
	const flows = 10_000_000
	mem, err := measureFlowMemory(t.Context(), 1, flows, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rampart: %.1f B/flow mapped (%d bytes), %.1f B/flow RSS, %d entries, %d evicted",
		mem.Rampart.BytesPerFlow, mem.Rampart.TotalBytes, mem.Rampart.RSSBytesPerFlow, mem.Rampart.Entries, mem.Rampart.Evictions)
	t.Logf("map[FlowKey]Flow: %.1f B/flow heap, %.1f B/flow RSS", mem.GoMap.BytesPerFlow, mem.GoMap.RSSBytesPerFlow)
	t.Logf("sync.Map: %.1f B/flow heap, %.1f B/flow RSS", mem.SyncMap.BytesPerFlow, mem.SyncMap.RSSBytesPerFlow)
	if mem.Rampart.TotalBytes > 1<<30 {
		t.Errorf("the table maps %d bytes for %d flows, want at most 1 GiB", mem.Rampart.TotalBytes, flows)
	}
}
