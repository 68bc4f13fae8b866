package flowtable_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rampart-edge/rampart/flowtable"
)

// Benchmarks of issue 4: the table against sync.Map (values held by
// pointer, so that an update is a Load and an atomic add: its best case)
// and a map with the values inline behind a sync.RWMutex, as sibling
// sub-benchmarks, with 1, 2 and 4 goroutines:
//
//	BenchmarkMixed/{flowtable,sync-map,rwmutex-map}/g{1,2,4}     45 % Get, 45 % update, 5 % insert, 5 % delete
//	BenchmarkReadOnly/{flowtable,sync-map,rwmutex-map}/g{1,2,4}  100 % Get
//
// Each store holds 1 M 5-tuple keys of IPv4 and IPv6 clients with 64-byte
// values; the table has a capacity of 2 M. Each goroutine works on its own
// part of the keys (as an event loop owns its connections), so every Get,
// update and delete finds its key and every insert brings a new one, and
// the size stays stable. The operation streams are generated before the
// timer starts; for one sequence of b.N values (e.g. -benchtime 2000000x)
// the three stores run identical streams.
//
// The loops use b.N, not b.Loop: a sub-benchmark runs exactly G goroutines
// that split b.N between them, which b.Loop (called from the benchmark's
// own goroutine) cannot express, and the streams must be sized before the
// timer starts. ns/op is wall time over all goroutines' operations, and
// ops/s its inverse. `rampart bench flowtable` runs the same workload in
// interleaved rounds with pinned goroutines and reports medians, ratios
// and bytes per flow at 10 M flows.
//
// The stores are built once per test binary (a prefill takes seconds) and
// carried from one sub-benchmark to the next with what the streams did to
// them.

const (
	benchKeys     = 1_000_000
	benchCapacity = 2_000_000
	benchSeed     = 1
)

var (
	benchImpls      = []string{"flowtable", "sync-map", "rwmutex-map"}
	benchGoroutines = []int{1, 2, 4}
)

// benchValue is 64 bytes and free of pointers, as the table requires.
type benchValue struct {
	Hits uint64
	_    [7]uint64
}

func BenchmarkMixed(b *testing.B)    { benchWorkload(b, true) }
func BenchmarkReadOnly(b *testing.B) { benchWorkload(b, false) }

func benchWorkload(b *testing.B, mixed bool) {
	for _, g := range benchGoroutines {
		for _, impl := range benchImpls {
			b.Run(fmt.Sprintf("%s/g%d", impl, g), func(b *testing.B) {
				fx := benchFixtureFor(b, impl)
				streams := fx.sim.streams(g, b.N, mixed)
				misses := make([]int, g)
				sums := make([]uint64, g)
				var ready, done sync.WaitGroup
				start := make(chan struct{})
				for w := range g {
					ready.Add(1)
					done.Add(1)
					go func() {
						defer done.Done()
						ready.Done()
						<-start
						misses[w], sums[w] = fx.store.run(streams[w])
					}()
				}
				ready.Wait()
				runtime.GC()
				b.ReportAllocs()
				b.ResetTimer()
				close(start)
				done.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")

				// Only the table's evictions may lose a key (rarely: when
				// both buckets of a new key are full), and then later
				// operations on it miss.
				ev := fx.store.evictions()
				if n := slices.Max(misses); n > 0 && ev == 0 {
					b.Fatalf("operations missed keys that were there (%v per goroutine)", misses)
				}
				if n, ok := fx.store.len(); ok && (n > len(fx.sim.live) || n+int(ev) < len(fx.sim.live)) {
					b.Fatalf("%d entries after the run, want %d (%d evicted)", n, len(fx.sim.live), ev)
				}
			})
		}
	}
}

type benchFixture struct {
	store benchStore
	sim   *benchSim
}

// benchFixtures and benchKeyUniverse live for the whole test binary:
// benchmarks run one at a time, so no lock guards them.
var (
	benchFixtures    = map[string]*benchFixture{}
	benchKeyUniverse []flowtable.FlowKey
)

func benchFixtureFor(b *testing.B, impl string) *benchFixture {
	if fx, ok := benchFixtures[impl]; ok {
		return fx
	}
	if benchKeyUniverse == nil {
		// 1 M live keys and 250 k spare ones for the inserts.
		benchKeyUniverse = make([]flowtable.FlowKey, benchKeys+benchKeys/4)
		for i := range benchKeyUniverse {
			benchKeyUniverse[i] = benchFlowKey(benchSeed, i)
		}
	}
	sim := newBenchSim(benchKeyUniverse, benchKeys)
	var st benchStore
	switch impl {
	case "flowtable":
		t, err := flowtable.New[flowtable.FlowKey, benchValue](benchCapacity)
		if err != nil {
			b.Fatal(err)
		}
		st = tableStore{t}
	case "sync-map":
		st = &syncMapStore{}
	case "rwmutex-map":
		st = &rwMutexMapStore{m: make(map[flowtable.FlowKey]benchValue, benchKeys)}
	default:
		b.Fatalf("unknown store %q", impl)
	}
	st.run(sim.prefill())
	fx := &benchFixture{store: st, sim: sim}
	benchFixtures[impl] = fx
	return fx
}

// benchFlowKey is key i of a reproducible universe of distinct flows: 60 %
// from IPv4 clients (the address is a bijection of i, so IPv4 keys never
// collide), 40 % from IPv6 clients in random /64s of 2000::/3 (the
// interface id is a bijection of i); ephemeral source ports; one of 16
// service addresses per family on 443 (TCP, or UDP for QUIC), 80 or 8443.
func benchFlowKey(seed uint64, i int) flowtable.FlowKey {
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
		binary.BigEndian.PutUint32(s[:], benchMix32(uint32(i)^uint32(seed)))
		src = netip.AddrFrom4(s)
		dst = netip.AddrFrom4([4]byte{192, 0, 2, 1 + svc})
	} else {
		var s [16]byte
		binary.BigEndian.PutUint32(s[0:], 0x2000_0000|uint32(a>>8)&0x1fff_ffff)
		binary.BigEndian.PutUint32(s[4:], uint32(a>>37))
		binary.BigEndian.PutUint64(s[8:], benchMix64(uint64(i)^seed))
		src = netip.AddrFrom16(s)
		dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1 + svc})
	}
	return flowtable.NewFlowKey(netip.AddrPortFrom(src, srcPort), netip.AddrPortFrom(dst, dstPort), proto)
}

// benchMix32 and benchMix64 are bijections (xor-shifts and odd
// multiplications) that scatter consecutive indexes.
func benchMix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

func benchMix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

type benchOpKind uint8

const (
	benchGet benchOpKind = iota
	benchUpdate
	benchInsert
	benchDelete
)

// benchOp carries its key inline: a stream is read sequentially, so the
// key costs no cache miss of its own.
type benchOp struct {
	key  flowtable.FlowKey
	kind benchOpKind
}

// benchSim knows which keys a store holds and writes operation streams that
// keep it true.
type benchSim struct {
	keys  []flowtable.FlowKey
	live  []uint32 // indexes into keys of the keys the store holds
	spare []uint32 // and of those it does not
	n     uint64   // stream sets written so far: seeds the next
}

func newBenchSim(keys []flowtable.FlowKey, live int) *benchSim {
	s := &benchSim{keys: keys}
	for i := range keys {
		if i < live {
			s.live = append(s.live, uint32(i))
		} else {
			s.spare = append(s.spare, uint32(i))
		}
	}
	return s
}

// prefill is a stream inserting the live keys.
func (s *benchSim) prefill() []benchOp {
	ops := make([]benchOp, len(s.live))
	for i, k := range s.live {
		ops[i] = benchOp{key: s.keys[k], kind: benchInsert}
	}
	return ops
}

// streams writes g streams of n operations in all and moves the simulation
// to the state the store will be in once it ran them. Goroutine w owns the
// w-th part of the live and spare keys, so streams never share a key and
// the outcome does not depend on how the goroutines interleave.
func (s *benchSim) streams(g, n int, mixed bool) [][]benchOp {
	buf := make([]benchOp, n)
	out := make([][]benchOp, g)
	var live, spare []uint32
	off := 0
	for w := range g {
		m := n / g
		if w < n%g {
			m++
		}
		stream := buf[off : off+m : off+m]
		off += m
		myLive := slices.Clone(s.live[w*len(s.live)/g : (w+1)*len(s.live)/g])
		mySpare := slices.Clone(s.spare[w*len(s.spare)/g : (w+1)*len(s.spare)/g])
		r := rand.New(rand.NewPCG(benchSeed, s.n<<8|uint64(w)))
		for i := range stream {
			kind := benchGet
			if mixed {
				switch p := r.IntN(100); {
				case p < 45:
				case p < 90:
					kind = benchUpdate
				case p < 95:
					kind = benchInsert
				default:
					kind = benchDelete
				}
			}
			if kind == benchInsert && len(mySpare) == 0 {
				kind = benchDelete
			}
			if kind != benchInsert && len(myLive) == 0 {
				kind = benchInsert
			}
			var k uint32
			switch kind {
			case benchInsert:
				j := r.IntN(len(mySpare))
				k = mySpare[j]
				mySpare[j] = mySpare[len(mySpare)-1]
				mySpare = mySpare[:len(mySpare)-1]
				myLive = append(myLive, k)
			case benchDelete:
				j := r.IntN(len(myLive))
				k = myLive[j]
				myLive[j] = myLive[len(myLive)-1]
				myLive = myLive[:len(myLive)-1]
				mySpare = append(mySpare, k)
			default:
				k = myLive[r.IntN(len(myLive))]
			}
			stream[i] = benchOp{key: s.keys[k], kind: kind}
		}
		out[w] = stream
		live = append(live, myLive...)
		spare = append(spare, mySpare...)
	}
	s.live, s.spare = live, spare
	s.n++
	return out
}

// benchStore is one implementation under test. run executes a stream from
// one goroutine and counts the operations that missed their key; the sum
// of the values read keeps the reads from being optimised away.
type benchStore interface {
	run(ops []benchOp) (misses int, sum uint64)
	len() (int, bool) // the number of entries, when cheap to tell
	evictions() uint64
}

type tableStore struct {
	t *flowtable.Table[flowtable.FlowKey, benchValue]
}

func bumpBenchValue(v *benchValue, _ bool) { v.Hits++ }

func (s tableStore) run(ops []benchOp) (misses int, sum uint64) {
	t := s.t
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case benchGet:
			v, ok := t.Get(o.key)
			if !ok {
				misses++
			}
			sum += v.Hits
		case benchUpdate, benchInsert:
			t.Upsert(o.key, bumpBenchValue)
		case benchDelete:
			if !t.Delete(o.key) {
				misses++
			}
		}
	}
	return misses, sum
}

func (s tableStore) len() (int, bool)  { return s.t.Len(), true }
func (s tableStore) evictions() uint64 { return s.t.Evictions() }

type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) run(ops []benchOp) (misses int, sum uint64) {
	m := &s.m
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case benchGet:
			v, ok := m.Load(o.key)
			if !ok {
				misses++
				continue
			}
			sum += atomic.LoadUint64(&v.(*benchValue).Hits)
		case benchUpdate:
			v, ok := m.Load(o.key)
			if !ok {
				misses++
				continue
			}
			atomic.AddUint64(&v.(*benchValue).Hits, 1)
		case benchInsert:
			m.Store(o.key, &benchValue{Hits: 1})
		case benchDelete:
			m.Delete(o.key)
		}
	}
	return misses, sum
}

func (s *syncMapStore) len() (int, bool)  { return 0, false }
func (s *syncMapStore) evictions() uint64 { return 0 }

type rwMutexMapStore struct {
	mu sync.RWMutex
	m  map[flowtable.FlowKey]benchValue
}

func (s *rwMutexMapStore) run(ops []benchOp) (misses int, sum uint64) {
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case benchGet:
			s.mu.RLock()
			v, ok := s.m[o.key]
			s.mu.RUnlock()
			if !ok {
				misses++
			}
			sum += v.Hits
		case benchUpdate:
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
		case benchInsert:
			s.mu.Lock()
			s.m[o.key] = benchValue{Hits: 1}
			s.mu.Unlock()
		case benchDelete:
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
