package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/rampart-edge/rampart/flowtable"
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

// Store names, stable: they are JSON keys.
const (
	storeRampart    = "rampart"
	storeSyncMap    = "sync_map"
	storeRWMutexMap = "rwmutex_map"
)

var flowStoreNames = []string{storeRampart, storeSyncMap, storeRWMutexMap}

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
	Goroutines        int                  `json:"goroutines"`
	OpsPerS           map[string]float64   `json:"ops_per_s"`
	RatioVsSyncMap    float64              `json:"ratio_vs_sync_map"`
	RatioVsRWMutexMap float64              `json:"ratio_vs_rwmutex_map"`
	AllocsPerOp       map[string]float64   `json:"allocs_per_op"`
	SamplesOpsPerS    map[string][]float64 `json:"samples_ops_per_s"`
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

// flowValue is the benchmark's value: 64 bytes, free of pointers.
type flowValue struct {
	Hits uint64
	_    [7]uint64
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
	res := &FlowtableResult{Name: "flowtable", Keys: opts.Keys, Capacity: 2 * opts.Keys, ValueBytes: int(unsafe.Sizeof(flowValue{})),
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
	sim := newFlowSim(opts.Seed, opts.Keys)
	log.Info("prefilling", "keys", opts.Keys, "stores", len(flowStoreNames))
	stores := map[string]flowStore{}
	defer func() {
		for _, st := range stores {
			st.close()
		}
	}()
	for _, name := range flowStoreNames {
		st, err := newFlowStore(name, 2*opts.Keys, sim.liveKeys())
		if err != nil {
			return err
		}
		stores[name] = st
	}
	var buf []flowOp
	// runAll runs one stream set on every store, in order, and checks
	// that each ends with the expected size.
	runAll := func(wl string, g int, record func(store string, t flowTiming)) error {
		var streams [][]flowOp
		streams, buf = sim.streams(g, opts.Ops, wl == workloadMixed, buf)
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
			ev := stores[name].evictions()
			if t.misses > 0 && ev == 0 {
				return fmt.Errorf("%s %s with %d goroutines: %d operations missed a key that was there", name, wl, g, t.misses)
			}
			if n, ok := stores[name].len(); ok && (n > len(sim.live) || uint64(n)+ev < uint64(len(sim.live))) {
				return fmt.Errorf("%s %s with %d goroutines: %d entries after the run, want %d (%d evicted)", name, wl, g, n, len(sim.live), ev)
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
			res.Workloads[wl][gName(g)] = run
		}
	}
	head := res.Workloads[workloadMixed][gName(headlineGoroutines)]
	res.OpsPerS = head.OpsPerS
	res.RatioVsSyncMap = head.RatioVsSyncMap
	res.RatioVsRWMutexMap = head.RatioVsRWMutexMap
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

// flowKey is key i of a reproducible universe of distinct flows: 60 % from
// IPv4 clients (the address is a bijection of i, so IPv4 keys never
// collide), 40 % from IPv6 clients in random /64s of 2000::/3 (the
// interface id is a bijection of i); ephemeral source ports; one of 16
// service addresses per family on 443 (TCP, or UDP for QUIC), 80 or 8443.
func flowKey(seed uint64, i int) flowtable.FlowKey {
	p := rand.NewPCG(seed, uint64(i))
	a, b := p.Uint64(), p.Uint64()
	srcPort := uint16(32768 + b%28232)
	svc := byte(b>>16) & 15
	var dstPort uint16
	var proto uint8 = 6
	switch c := (b >> 24) % 100; {
	case c < 70:
		dstPort = 443
	case c < 80:
		dstPort, proto = 443, 17
	case c < 95:
		dstPort = 80
	default:
		dstPort = 8443
	}
	var src, dst netip.Addr
	if a%100 < 60 {
		var s [4]byte
		binary.BigEndian.PutUint32(s[:], mix32(uint32(i)^uint32(seed)))
		src = netip.AddrFrom4(s)
		dst = netip.AddrFrom4([4]byte{192, 0, 2, 1 + svc})
	} else {
		var s [16]byte
		binary.BigEndian.PutUint32(s[0:], 0x2000_0000|uint32(a>>8)&0x1fff_ffff)
		binary.BigEndian.PutUint32(s[4:], uint32(a>>37))
		binary.BigEndian.PutUint64(s[8:], mix64(uint64(i)^seed))
		src = netip.AddrFrom16(s)
		dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1 + svc})
	}
	return flowtable.NewFlowKey(netip.AddrPortFrom(src, srcPort), netip.AddrPortFrom(dst, dstPort), proto)
}

// mix32 and mix64 are bijections (xor-shifts and odd multiplications)
// that scatter consecutive indexes over the address space.
func mix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

type flowOpKind uint8

const (
	opGet flowOpKind = iota
	opUpdate
	opInsert
	opDelete
)

// flowOp carries its key inline: a stream is read sequentially, so the key
// costs no cache miss of its own.
type flowOp struct {
	key  flowtable.FlowKey
	kind flowOpKind
}

// flowSim knows which keys the stores hold, and writes operation streams
// that keep it true.
type flowSim struct {
	keys  []flowtable.FlowKey
	live  []uint32 // indexes into keys of the keys the stores hold
	spare []uint32 // and of those they do not
	seed  uint64
	n     uint64 // stream sets written so far
}

// newFlowSim holds n live keys and n/4 spare ones: deletes return keys to
// the spares and inserts take them back, so the spares need only outlast
// the random walk of one run's inserts minus deletes.
func newFlowSim(seed uint64, n int) *flowSim {
	total := n + max(n/4, 64)
	s := &flowSim{keys: make([]flowtable.FlowKey, total), live: make([]uint32, n), spare: make([]uint32, total-n), seed: seed}
	for i := range s.keys {
		s.keys[i] = flowKey(seed, i)
	}
	for i := range s.live {
		s.live[i] = uint32(i)
	}
	for i := range s.spare {
		s.spare[i] = uint32(n + i)
	}
	return s
}

func (s *flowSim) liveKeys() []flowtable.FlowKey {
	out := make([]flowtable.FlowKey, len(s.live))
	for i, k := range s.live {
		out[i] = s.keys[k]
	}
	return out
}

// streams writes g streams of ops operations in all (reusing buf), the
// mixed workload or the read-only one, and moves the simulation to the
// state the stores will be in once they ran them. Worker w owns the w-th
// part of the live and spare keys, so streams never touch a key together
// and the result does not depend on how the goroutines interleave.
func (s *flowSim) streams(g, ops int, mixed bool, buf []flowOp) ([][]flowOp, []flowOp) {
	buf = slices.Grow(buf[:0], ops)[:ops]
	out := make([][]flowOp, g)
	var live, spare []uint32
	off := 0
	for w := range g {
		n := ops / g
		if w < ops%g {
			n++
		}
		stream := buf[off : off+n : off+n]
		off += n
		myLive := slices.Clone(s.live[w*len(s.live)/g : (w+1)*len(s.live)/g])
		mySpare := slices.Clone(s.spare[w*len(s.spare)/g : (w+1)*len(s.spare)/g])
		r := rand.New(rand.NewPCG(s.seed^0x9e3779b97f4a7c15, s.n<<8|uint64(w)))
		for i := range stream {
			kind := opGet
			if mixed {
				switch p := r.IntN(100); {
				case p < 45:
				case p < 90:
					kind = opUpdate
				case p < 95:
					kind = opInsert
				default:
					kind = opDelete
				}
			}
			if kind == opInsert && len(mySpare) == 0 {
				kind = opDelete
			}
			if kind != opInsert && len(myLive) == 0 {
				kind = opInsert
			}
			var k uint32
			switch kind {
			case opInsert:
				j := r.IntN(len(mySpare))
				k = mySpare[j]
				mySpare[j] = mySpare[len(mySpare)-1]
				mySpare = mySpare[:len(mySpare)-1]
				myLive = append(myLive, k)
			case opDelete:
				j := r.IntN(len(myLive))
				k = myLive[j]
				myLive[j] = myLive[len(myLive)-1]
				myLive = myLive[:len(myLive)-1]
				mySpare = append(mySpare, k)
			default:
				k = myLive[r.IntN(len(myLive))]
			}
			stream[i] = flowOp{key: s.keys[k], kind: kind}
		}
		out[w] = stream
		live = append(live, myLive...)
		spare = append(spare, mySpare...)
	}
	s.live, s.spare = live, spare
	s.n++
	return out, buf
}

// flowStore is one implementation under test. run executes a stream from
// one goroutine and counts the operations that missed a key they should
// have found; the sum of the values read keeps reads from being optimised
// away.
type flowStore interface {
	run(ops []flowOp) (misses int, sum uint64)
	// len is the number of entries, when the store can tell cheaply.
	len() (int, bool)
	// evictions is how many entries the store dropped to make room.
	evictions() uint64
	close()
}

func newFlowStore(name string, capacity int, keys []flowtable.FlowKey) (flowStore, error) {
	switch name {
	case storeRampart:
		t, err := flowtable.New[flowtable.FlowKey, flowValue](capacity)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			t.Upsert(k, bumpFlowValue)
		}
		return rampartStore{t}, nil
	case storeSyncMap:
		s := &syncMapStore{}
		for _, k := range keys {
			s.m.Store(k, &flowValue{Hits: 1})
		}
		return s, nil
	case storeRWMutexMap:
		s := &rwMutexMapStore{m: make(map[flowtable.FlowKey]flowValue, len(keys))}
		for _, k := range keys {
			s.m[k] = flowValue{Hits: 1}
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store %q", name)
}

type rampartStore struct {
	t *flowtable.Table[flowtable.FlowKey, flowValue]
}

func bumpFlowValue(v *flowValue, _ bool) { v.Hits++ }

func (s rampartStore) run(ops []flowOp) (misses int, sum uint64) {
	t := s.t
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opGet:
			v, ok := t.Get(o.key)
			if !ok {
				misses++
			}
			sum += v.Hits
		case opUpdate, opInsert:
			t.Upsert(o.key, bumpFlowValue)
		case opDelete:
			if !t.Delete(o.key) {
				misses++
			}
		}
	}
	return misses, sum
}

func (s rampartStore) len() (int, bool)  { return s.t.Len(), true }
func (s rampartStore) evictions() uint64 { return s.t.Evictions() }
func (s rampartStore) close()            { s.t.Close() }

// syncMapStore holds *flowValue so that an update is a Load and an atomic
// add, without a Store: sync.Map's best case.
type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) run(ops []flowOp) (misses int, sum uint64) {
	m := &s.m
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opGet:
			v, ok := m.Load(o.key)
			if !ok {
				misses++
				continue
			}
			sum += atomic.LoadUint64(&v.(*flowValue).Hits)
		case opUpdate:
			v, ok := m.Load(o.key)
			if !ok {
				misses++
				continue
			}
			atomic.AddUint64(&v.(*flowValue).Hits, 1)
		case opInsert:
			m.Store(o.key, &flowValue{Hits: 1})
		case opDelete:
			m.Delete(o.key)
		}
	}
	return misses, sum
}

func (s *syncMapStore) len() (int, bool)  { return 0, false }
func (s *syncMapStore) evictions() uint64 { return 0 }
func (s *syncMapStore) close()            { s.m.Clear() }

type rwMutexMapStore struct {
	mu sync.RWMutex
	m  map[flowtable.FlowKey]flowValue
}

func (s *rwMutexMapStore) run(ops []flowOp) (misses int, sum uint64) {
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opGet:
			s.mu.RLock()
			v, ok := s.m[o.key]
			s.mu.RUnlock()
			if !ok {
				misses++
			}
			sum += v.Hits
		case opUpdate:
			s.mu.Lock()
			v, ok := s.m[o.key]
			if ok {
				v.Hits++
				s.m[o.key] = v
			}
			s.mu.Unlock()
			if !ok {
				misses++
			}
		case opInsert:
			s.mu.Lock()
			s.m[o.key] = flowValue{Hits: 1}
			s.mu.Unlock()
		case opDelete:
			s.mu.Lock()
			delete(s.m, o.key)
			s.mu.Unlock()
		}
	}
	return misses, sum
}

func (s *rwMutexMapStore) len() (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m), true
}

func (s *rwMutexMapStore) evictions() uint64 { return 0 }

func (s *rwMutexMapStore) close() {
	s.mu.Lock()
	s.m = nil
	s.mu.Unlock()
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
func runFlowWorkers(st flowStore, streams [][]flowOp, cpus []int) (flowTiming, error) {
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
			misses[w], _ = st.run(streams[w])
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
			put(flowKey(seed, i))
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
	fmt.Fprintf(w, "median of %d interleaved rounds (rampart, sync.Map, map+RWMutex); workers pinned to CPUs %s\n\n", r.Rounds, cpuList(r.WorkerCPUs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tgoroutines\trampart Mops/s\tsync.Map Mops/s\tmap+RWMutex Mops/s\tvs sync.Map\tvs map+RWMutex\trampart allocs/op\tsync.Map allocs/op\t")
	for _, wl := range []string{workloadMixed, workloadReadOnly} {
		for _, g := range flowGoroutines {
			run := r.Workloads[wl][gName(g)]
			if run == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2fx\t%.2fx\t%.3f\t%.2f\t\n", wl, g,
				run.OpsPerS[storeRampart]/1e6, run.OpsPerS[storeSyncMap]/1e6, run.OpsPerS[storeRWMutexMap]/1e6,
				run.RatioVsSyncMap, run.RatioVsRWMutexMap, run.AllocsPerOp[storeRampart], run.AllocsPerOp[storeSyncMap])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Evictions > 0 {
		fmt.Fprintf(w, "\nthe table (capacity %d, %d keys) evicted %d entries; %d operations missed a key for that reason\n", r.Capacity, r.Keys, r.Evictions, r.Misses)
	}
	fmt.Fprintf(w, "\nmixed, %d goroutines: rampart %.2fx sync.Map (target >= 5x), %.2fx map+RWMutex; %.3f allocs/op (target 0)\n",
		headlineGoroutines, r.RatioVsSyncMap, r.RatioVsRWMutexMap, r.AllocsPerOp)
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
