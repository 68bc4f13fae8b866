package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/flowbench"
)

// The flow table benchmark runs one workload against three stores in
// interleaved rounds: Rampart's flowtable.Table, a sync.Map holding
// pointers to values (its best case: an update is a Load and an atomic add
// on the pointed value), and a Go map with the values inline behind a
// sync.RWMutex. Keys are 5-tuples of realistic IPv4 and IPv6 clients of a
// few service addresses; values are 64 bytes.
//
// Each goroutine works on its own part of the keys, the way an event loop
// owns its connections, so every Get, update and delete finds its key and
// every insert brings a new one; the operation streams are generated before
// a run (the random number generator is not timed) and every store runs
// the same streams, so the stores stay equal and are checked against the
// expected size after each run.

// Store names, stable: they are JSON keys. "rampart" is the table driven
// the way a caller with a queue of keys drives it, each key prefetched a
// few operations ahead (flowtable.Table.Prefetch); "rampart_one_at_a_time"
// is the same table with each operation on its own, as a caller with one
// key drives it.
const (
	storeRampart       = "rampart"
	storeRampartSingle = "rampart_one_at_a_time"
	storeSyncMap       = "sync_map"
	storeRWMutexMap    = "rwmutex_map"
)

var flowStoreNames = []string{storeRampart, storeRampartSingle, storeSyncMap, storeRWMutexMap}

// Workload names, stable: they are JSON keys.
const (
	workloadMixed    = "mixed"     // 45 % get, 45 % update, 5 % insert, 5 % delete
	workloadReadOnly = "read_only" // 100 % get
)

var flowGoroutines = []int{1, 2, 4}

// headlineGoroutines is the goroutine count of the top-level figures.
const headlineGoroutines = 2

// FlowtableOptions sizes `rampart bench flowtable`.
type FlowtableOptions struct {
	// Rounds of the interleaved measurement; figures are medians.
	Rounds int
	// Ops is the number of operations of one timed run, split evenly
	// among its goroutines.
	Ops int
	// Keys is how many keys the stores hold; the flow table's capacity is
	// twice that.
	Keys int
	// Memory adds the bytes-per-flow measurement at MemFlows flows.
	Memory   bool
	MemFlows int
	Seed     uint64
	Logger   *slog.Logger
}

// DefaultFlowtableOptions are what `rampart bench flowtable` runs without
// flags: the sizes of issue 4.
func DefaultFlowtableOptions() FlowtableOptions {
	return FlowtableOptions{Rounds: 5, Ops: 2_000_000, Keys: 1_000_000, Memory: true, MemFlows: 10_000_000, Seed: 1}
}

// FlowtableResult is the outcome of the flow table benchmark. Field names
// are stable: scripts read them.
type FlowtableResult struct {
	Name string `json:"name"`
	// OpsPerS, the ratios and AllocsPerOp are the mixed workload with 2
	// goroutines; AllocsPerOp is Rampart's (heap allocations per
	// operation, from runtime.MemStats.Mallocs over the timed runs).
	OpsPerS           map[string]float64 `json:"ops_per_s"`
	RatioVsSyncMap    float64            `json:"ratio_vs_sync_map"`
	RatioVsRWMutexMap float64            `json:"ratio_vs_rwmutex_map"`
	// RatioOneAtATimeVsSyncMap is RatioVsSyncMap without prefetching.
	RatioOneAtATimeVsSyncMap float64 `json:"ratio_one_at_a_time_vs_sync_map"`
	// BytesPerFlow is the table's MemoryBytes over MemFlows flows (all
	// included: keys, values, meta and bucket words); BytesPerFlowRSS the
	// growth of the process's resident memory while filling it, over the
	// same count. Absent without the memory measurement.
	BytesPerFlow    float64 `json:"bytes_per_flow,omitempty"`
	BytesPerFlowRSS float64 `json:"bytes_per_flow_rss,omitempty"`
	AllocsPerOp     float64 `json:"allocs_per_op"`
	// Workloads holds every workload ("mixed", "read_only") by goroutine
	// count ("g1", "g2", "g4").
	Workloads     map[string]map[string]*FlowtableRun `json:"workloads"`
	Memory        *FlowMemory                         `json:"memory,omitempty"`
	MemorySkipped string                              `json:"memory_skipped,omitempty"`
	// Evictions is how many entries the table evicted during the
	// throughput runs (prefill included), Misses how many operations
	// missed a key for that reason.
	Evictions  uint64 `json:"evictions"`
	Misses     int    `json:"misses"`
	Keys       int    `json:"keys"`
	Capacity   int    `json:"capacity"`
	ValueBytes int    `json:"value_bytes"`
	Ops        int    `json:"ops_per_run"`
	Rounds     int    `json:"rounds"`
	// WorkerCPUs is, per goroutine count, the CPU each worker was pinned
	// to (-1: not pinned).
	WorkerCPUs map[string][]int `json:"worker_cpus"`
	Machine    Machine          `json:"machine"`
}

// FlowtableRun is one workload at one goroutine count: medians over
// rounds, ratios as medians of per-round ratios.
type FlowtableRun struct {
	Goroutines        int                `json:"goroutines"`
	OpsPerS           map[string]float64 `json:"ops_per_s"`
	RatioVsSyncMap    float64            `json:"ratio_vs_sync_map"`
	RatioVsRWMutexMap float64            `json:"ratio_vs_rwmutex_map"`
	// RatioOneAtATimeVsSyncMap is RatioVsSyncMap without prefetching.
	RatioOneAtATimeVsSyncMap float64              `json:"ratio_one_at_a_time_vs_sync_map"`
	AllocsPerOp              map[string]float64   `json:"allocs_per_op"`
	SamplesOpsPerS           map[string][]float64 `json:"samples_ops_per_s"`
}

// FlowMemory is the memory of MemFlows flows (flowtable.Flow values, keys
// of IPv4 and IPv6 5-tuples) in each store.
type FlowMemory struct {
	Flows   int               `json:"flows"`
	Rampart FlowMemoryFigures `json:"rampart"`
	GoMap   FlowMemoryFigures `json:"go_map"`
	SyncMap FlowMemoryFigures `json:"sync_map"`
}

// FlowMemoryFigures: for Rampart, BytesPerFlow is MemoryBytes/Flows; for
// the Go structures it is the growth of the live heap (HeapAlloc after a
// GC) over Flows. RSSBytesPerFlow is the growth of VmRSS, after a GC that
// returned free memory to the kernel for the Go structures.
type FlowMemoryFigures struct {
	BytesPerFlow    float64 `json:"bytes_per_flow"`
	RSSBytesPerFlow float64 `json:"rss_bytes_per_flow"`
	TotalBytes      int64   `json:"total_bytes"`
	// Entries the store holds at the end: the table may have evicted some
	// to take the last keys.
	Entries   int    `json:"entries"`
	Evictions uint64 `json:"evictions,omitempty"`
}

// RunFlowtable measures the flow table against sync.Map and an
// RWMutex-guarded map, then (with opts.Memory) the memory of each at
// opts.MemFlows flows.
func RunFlowtable(ctx context.Context, opts FlowtableOptions) (*FlowtableResult, error) {
	if opts.Rounds < 1 || opts.Ops < 1 || opts.Keys < 16 {
		return nil, fmt.Errorf("rounds and ops must be at least 1 and keys at least 16, got %d, %d and %d", opts.Rounds, opts.Ops, opts.Keys)
	}
	if opts.Memory && opts.MemFlows < 16 {
		return nil, fmt.Errorf("memory flows must be at least 16, got %d", opts.MemFlows)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bench/flowtable")
	res := &FlowtableResult{Name: "flowtable", Keys: opts.Keys, Capacity: 2 * opts.Keys, ValueBytes: int(unsafe.Sizeof(flowbench.Value{})),
		Ops: opts.Ops, Rounds: opts.Rounds, WorkerCPUs: map[string][]int{}, Machine: ThisMachine()}
	for _, g := range flowGoroutines {
		res.WorkerCPUs[gName(g)] = flowWorkerCPUs(g)
	}

	if err := res.measureThroughput(ctx, opts, log); err != nil {
		return nil, err
	}
	if !opts.Memory {
		res.MemorySkipped = "--no-mem"
		return res, nil
	}
	mem, err := measureFlowMemory(ctx, opts.Seed, opts.MemFlows, log)
	if err != nil {
		return nil, fmt.Errorf("memory at %d flows: %w", opts.MemFlows, err)
	}
	res.Memory = mem
	res.BytesPerFlow = mem.Rampart.BytesPerFlow
	res.BytesPerFlowRSS = mem.Rampart.RSSBytesPerFlow
	return res, nil
}

func gName(g int) string { return fmt.Sprintf("g%d", g) }

func (res *FlowtableResult) measureThroughput(ctx context.Context, opts FlowtableOptions, log *slog.Logger) error {
	sim := flowbench.NewSim(flowbench.Universe(opts.Seed, opts.Keys), opts.Keys, opts.Seed^flowStreamSalt)
	log.Info("prefilling", "keys", opts.Keys, "stores", len(flowStoreNames))
	stores := map[string]flowbench.Store{}
	defer func() {
		for _, st := range stores {
			st.Close()
		}
	}()
	for _, name := range flowStoreNames {
		st, err := newFlowStore(name, 2*opts.Keys, sim.LiveKeys())
		if err != nil {
			return err
		}
		stores[name] = st
	}
	var buf []flowbench.Op
	// runAll runs one stream set on every store, in order, and checks
	// that each ends with the expected size.
	runAll := func(wl string, g int, record func(store string, t flowTiming)) error {
		var streams [][]flowbench.Op
		streams, buf = sim.Streams(g, opts.Ops, wl == workloadMixed, buf)
		for _, name := range flowStoreNames {
			if err := ctx.Err(); err != nil {
				return err
			}
			t, err := runFlowWorkers(stores[name], streams, flowWorkerCPUs(g))
			if err != nil {
				return fmt.Errorf("%s %s with %d goroutines: %w", name, wl, g, err)
			}
			// Only evictions may lose keys: the table evicts (rarely,
			// when both buckets of a new key are full) where the maps
			// grow, and a lost key is then missed until reinserted.
			ev := stores[name].Evictions()
			if t.misses > 0 && ev == 0 {
				return fmt.Errorf("%s %s with %d goroutines: %d operations missed a key that was there", name, wl, g, t.misses)
			}
			if n, ok := stores[name].Len(); ok && (n > sim.Live() || uint64(n)+ev < uint64(sim.Live())) {
				return fmt.Errorf("%s %s with %d goroutines: %d entries after the run, want %d (%d evicted)", name, wl, g, n, sim.Live(), ev)
			}
			if name == storeRampart {
				res.Misses += t.misses
				res.Evictions = ev
			}
			if record != nil {
				record(name, t)
			}
		}
		return nil
	}
	// Warm up: page in the streams' buffer and the stores' memory, and
	// let sync.Map settle its read-only map; not recorded.
	if err := runAll(workloadMixed, headlineGoroutines, nil); err != nil {
		return err
	}

	type sampleSet struct{ opsPerS, mallocs, ops map[string][]float64 }
	samples := map[string]*sampleSet{}
	for round := range opts.Rounds {
		start := time.Now()
		for _, wl := range []string{workloadMixed, workloadReadOnly} {
			for _, g := range flowGoroutines {
				key := wl + "/" + gName(g)
				s := samples[key]
				if s == nil {
					s = &sampleSet{map[string][]float64{}, map[string][]float64{}, map[string][]float64{}}
					samples[key] = s
				}
				err := runAll(wl, g, func(store string, t flowTiming) {
					s.opsPerS[store] = append(s.opsPerS[store], float64(t.ops)/t.elapsed.Seconds())
					s.mallocs[store] = append(s.mallocs[store], float64(t.mallocs))
					s.ops[store] = append(s.ops[store], float64(t.ops))
				})
				if err != nil {
					return err
				}
			}
		}
		log.Info("round done", "round", round+1, "of", opts.Rounds, "took", time.Since(start).Round(time.Millisecond))
	}

	res.Workloads = map[string]map[string]*FlowtableRun{}
	for _, wl := range []string{workloadMixed, workloadReadOnly} {
		res.Workloads[wl] = map[string]*FlowtableRun{}
		for _, g := range flowGoroutines {
			s := samples[wl+"/"+gName(g)]
			run := &FlowtableRun{Goroutines: g, OpsPerS: map[string]float64{}, AllocsPerOp: map[string]float64{}, SamplesOpsPerS: s.opsPerS}
			for _, name := range flowStoreNames {
				run.OpsPerS[name] = median(s.opsPerS[name])
				run.AllocsPerOp[name] = sum(s.mallocs[name]) / sum(s.ops[name])
			}
			run.RatioVsSyncMap = median(ratios(s.opsPerS[storeRampart], s.opsPerS[storeSyncMap]))
			run.RatioVsRWMutexMap = median(ratios(s.opsPerS[storeRampart], s.opsPerS[storeRWMutexMap]))
			run.RatioOneAtATimeVsSyncMap = median(ratios(s.opsPerS[storeRampartSingle], s.opsPerS[storeSyncMap]))
			res.Workloads[wl][gName(g)] = run
		}
	}
	head := res.Workloads[workloadMixed][gName(headlineGoroutines)]
	res.OpsPerS = head.OpsPerS
	res.RatioVsSyncMap = head.RatioVsSyncMap
	res.RatioVsRWMutexMap = head.RatioVsRWMutexMap
	res.RatioOneAtATimeVsSyncMap = head.RatioOneAtATimeVsSyncMap
	res.AllocsPerOp = head.AllocsPerOp[storeRampart]
	return nil
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// flowStreamSalt sets the streams' seed apart from the keys' seed: both
// seed PCGs, and unsalted, worker w of the first stream set would draw the
// numbers of key w.
const flowStreamSalt = 0x9e3779b97f4a7c15

func newFlowStore(name string, capacity int, keys []flowtable.FlowKey) (flowbench.Store, error) {
	switch name {
	case storeRampart:
		return flowbench.NewPrefetchingTable(capacity, keys)
	case storeRampartSingle:
		return flowbench.NewTable(capacity, keys)
	case storeSyncMap:
		return flowbench.NewSyncMap(keys), nil
	case storeRWMutexMap:
		return flowbench.NewRWMutexMap(keys), nil
	}
	return nil, fmt.Errorf("unknown store %q", name)
}

type flowTiming struct {
	ops     int
	elapsed time.Duration
	mallocs uint64
	misses  int
}

// runFlowWorkers runs one goroutine per stream, worker w pinned to
// cpus[w], all released at once after a GC; the time is from the release
// to the last worker's end.
func runFlowWorkers(st flowbench.Store, streams [][]flowbench.Op, cpus []int) (flowTiming, error) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ends := make([]time.Time, len(streams))
	misses := make([]int, len(streams))
	errs := make([]error, len(streams))
	runtime.GC() // the garbage of the previous run is not this run's cost
	for w := range streams {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			restore, err := pinFlowWorker(cpus[w])
			ready.Done()
			if err != nil {
				errs[w] = err
				return
			}
			defer restore()
			<-start
			misses[w], _ = st.Run(streams[w])
			ends[w] = time.Now()
		}()
	}
	ready.Wait()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	close(start)
	done.Wait()
	runtime.ReadMemStats(&ms1)
	t := flowTiming{mallocs: ms1.Mallocs - ms0.Mallocs}
	for w := range streams {
		if errs[w] != nil {
			return t, errs[w]
		}
		t.ops += len(streams[w])
		t.misses += misses[w]
		if len(streams[w]) > 0 {
			t.elapsed = max(t.elapsed, ends[w].Sub(t0))
		}
	}
	t.elapsed = max(t.elapsed, time.Nanosecond)
	return t, nil
}

// measureFlowMemory fills each store with n flows, one store at a time,
// freeing each before the next.
func measureFlowMemory(ctx context.Context, seed uint64, n int, log *slog.Logger) (*FlowMemory, error) {
	mem := &FlowMemory{Flows: n}
	now := time.Now().UnixNano()
	flow := flowtable.Flow{Created: now, LastSeen: now, BytesIn: 1500, RequestsIn: 1, Zone: 1, Verdict: flowtable.VerdictAllow}
	fill := func(put func(k flowtable.FlowKey)) error {
		for i := range n {
			if i%(1<<20) == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			put(flowbench.Key(seed, i))
		}
		return nil
	}

	log.Info("filling the flow table", "flows", n)
	_, rss0 := settledMemory()
	t, err := flowtable.NewFlows(n)
	if err != nil {
		return nil, err
	}
	setFlow := func(v *flowtable.Flow, _ bool) { *v = flow }
	err = fill(func(k flowtable.FlowKey) { t.Upsert(k, setFlow) })
	_, rss1 := settledMemory()
	mem.Rampart = FlowMemoryFigures{TotalBytes: int64(t.MemoryBytes()), Entries: t.Len(), Evictions: t.Evictions()}
	mem.Rampart.BytesPerFlow = float64(t.MemoryBytes()) / float64(n)
	mem.Rampart.RSSBytesPerFlow = perFlow(rss0, rss1, n)
	if cerr := t.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the flow table: %w", cerr)
	}
	if err != nil {
		return nil, err
	}

	log.Info("filling a Go map", "flows", n)
	heap0, rss0 := settledMemory()
	m := map[flowtable.FlowKey]flowtable.Flow{} // no size hint: grown as a map of unknown size grows
	if err := fill(func(k flowtable.FlowKey) { m[k] = flow }); err != nil {
		return nil, err
	}
	heap1, rss1 := settledMemory()
	mem.GoMap = FlowMemoryFigures{BytesPerFlow: perFlow(heap0, heap1, n), RSSBytesPerFlow: perFlow(rss0, rss1, n),
		TotalBytes: heap1 - heap0, Entries: len(m)}
	runtime.KeepAlive(m)
	m = nil

	log.Info("filling a sync.Map", "flows", n)
	heap0, rss0 = settledMemory()
	var sm sync.Map
	if err := fill(func(k flowtable.FlowKey) { f := flow; sm.Store(k, &f) }); err != nil {
		return nil, err
	}
	heap1, rss1 = settledMemory()
	entries := 0
	sm.Range(func(_, _ any) bool { entries++; return true })
	mem.SyncMap = FlowMemoryFigures{BytesPerFlow: perFlow(heap0, heap1, n), RSSBytesPerFlow: perFlow(rss0, rss1, n),
		TotalBytes: heap1 - heap0, Entries: entries}
	sm.Clear()
	settledMemory()
	return mem, nil
}

// settledMemory collects garbage, returns free memory to the kernel and
// reads the live heap and the resident set (0 where unknown).
func settledMemory() (heap, rss int64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ = rssBytes()
	return int64(ms.HeapAlloc), rss
}

func perFlow(before, after int64, n int) float64 {
	if before == 0 && after == 0 {
		return 0
	}
	return float64(after-before) / float64(n)
}

// WriteTable prints the result for a person.
func (r *FlowtableResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Flow tables: %d prefilled 5-tuple keys, %d-byte values, table capacity %d; %d operations per run;\n",
		r.Keys, r.ValueBytes, r.Capacity, r.Ops)
	fmt.Fprintf(w, "median of %d interleaved rounds (rampart, rampart one at a time, sync.Map, map+RWMutex); workers pinned to CPUs %s\n", r.Rounds, cpuList(r.WorkerCPUs))
	fmt.Fprintf(w, "rampart prefetches each key %d operations ahead; \"1-at-a-time\" runs each operation on its own\n\n", flowbench.PrefetchDistance)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tgoroutines\trampart Mops/s\t1-at-a-time\tsync.Map Mops/s\tmap+RWMutex Mops/s\tvs sync.Map\t1-at-a-time vs sync.Map\tvs map+RWMutex\trampart allocs/op\tsync.Map allocs/op\t")
	for _, wl := range []string{workloadMixed, workloadReadOnly} {
		for _, g := range flowGoroutines {
			run := r.Workloads[wl][gName(g)]
			if run == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2fx\t%.2fx\t%.2fx\t%.3f\t%.2f\t\n", wl, g,
				run.OpsPerS[storeRampart]/1e6, run.OpsPerS[storeRampartSingle]/1e6, run.OpsPerS[storeSyncMap]/1e6, run.OpsPerS[storeRWMutexMap]/1e6,
				run.RatioVsSyncMap, run.RatioOneAtATimeVsSyncMap, run.RatioVsRWMutexMap, run.AllocsPerOp[storeRampart], run.AllocsPerOp[storeSyncMap])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Evictions > 0 {
		fmt.Fprintf(w, "\nthe table (capacity %d, %d keys) evicted %d entries; %d operations missed a key for that reason\n", r.Capacity, r.Keys, r.Evictions, r.Misses)
	}
	fmt.Fprintf(w, "\nmixed, %d goroutines: rampart %.2fx sync.Map (target >= 5x; %.2fx one at a time), %.2fx map+RWMutex; %.3f allocs/op (target 0)\n",
		headlineGoroutines, r.RatioVsSyncMap, r.RatioOneAtATimeVsSyncMap, r.RatioVsRWMutexMap, r.AllocsPerOp)
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "\nMemory at %d flows (48-byte flowtable.Flow values):\n", m.Flows)
		fmt.Fprintf(w, "  rampart:         %.1f B/flow mapped, %.1f B/flow RSS; %.2f GiB in all (target <= 1 GiB, ~107 B/flow); %d entries, %d evicted\n",
			m.Rampart.BytesPerFlow, m.Rampart.RSSBytesPerFlow, float64(m.Rampart.TotalBytes)/(1<<30), m.Rampart.Entries, m.Rampart.Evictions)
		fmt.Fprintf(w, "  map[FlowKey]Flow: %.1f B/flow heap, %.1f B/flow RSS\n", m.GoMap.BytesPerFlow, m.GoMap.RSSBytesPerFlow)
		fmt.Fprintf(w, "  sync.Map:        %.1f B/flow heap, %.1f B/flow RSS\n", m.SyncMap.BytesPerFlow, m.SyncMap.RSSBytesPerFlow)
	} else if r.MemorySkipped != "" {
		fmt.Fprintf(w, "\nmemory measurement skipped: %s\n", r.MemorySkipped)
	}
	m := r.Machine
	_, err := fmt.Fprintf(w, "\nmachine: %s, %d cores, kernel %s, %s\n", m.CPU, m.Cores, m.Kernel, m.Go)
	return err
}

func cpuList(byG map[string][]int) string {
	s := ""
	for _, g := range flowGoroutines {
		cpus, ok := byG[gName(g)]
		if !ok {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %v", gName(g), cpus)
	}
	return s
}

// parseVmRSS finds "VmRSS:  1234 kB" in the text of a /proc/PID/status
// file and returns it in bytes.
func parseVmRSS(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok {
			return 0, fmt.Errorf("VmRSS %q: not in kB", v)
		}
		n, err := strconv.ParseInt(kb, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", v, err)
		}
		if n < 0 || n > math.MaxInt64>>10 {
			return 0, fmt.Errorf("VmRSS %q: out of range", v)
		}
		return n << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	return 0, errors.New("no VmRSS line in process status")
}
