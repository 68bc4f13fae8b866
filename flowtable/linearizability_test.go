package flowtable

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The tests here record concurrent histories of Get, Upsert and Delete on
// a small key space and check them with porcupine against a sequential
// map. The race detector cannot see the table's slots (they live in memory
// mapped outside the Go heap, which it does not track), so these histories,
// not -race, are what check the seqlock and the slot and bucket bits.

type linKey [16]byte

func linKeyOf(i int) linKey {
	var k linKey
	binary.LittleEndian.PutUint64(k[:], uint64(i)+1)
	binary.LittleEndian.PutUint64(k[8:], uint64(i)*0x9e3779b97f4a7c15)
	return k
}

// linVal spreads each value over a whole cache line, so that a torn copy
// (a Get that mixed two writes) shows up as pad words that disagree.
type linVal struct {
	V    uint64
	Pad  [6]uint64
	NotV uint64
}

func (v *linVal) set(x uint64) {
	v.V = x
	for i := range v.Pad {
		v.Pad[i] = x
	}
	v.NotV = ^x
}

func (v *linVal) consistent() bool {
	for _, p := range v.Pad {
		if p != v.V {
			return false
		}
	}
	return v.NotV == ^v.V
}

type linOpKind uint8

const (
	linGet    linOpKind = iota
	linSet              // Upsert: value = Arg
	linInc              // Upsert: value = old + 1 (1 when absent)
	linDelete           // Delete
)

var linOpNames = [...]string{"get", "set", "inc", "delete"}

type linInput struct {
	Op  linOpKind
	Key int
	Arg uint64
}

// linOutput is what the operation saw: Get's result, the old value and
// existed flag Upsert's function was given, or Delete's result in OK.
type linOutput struct {
	Val uint64
	OK  bool
}

// linState is one key's state (the model is partitioned by key).
type linState struct {
	Val     uint64
	Present bool
}

// linModel is a map key → value. With evicting set, any key may vanish
// between two operations (an eviction is a delete nobody asked for), so an
// operation that saw the key absent is legal in any state; everything
// that saw it present must agree with the last write.
func linModel(evicting bool) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[int][]porcupine.Operation{}
			var keys []int
			for _, op := range history {
				k := op.Input.(linInput).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			parts := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				parts = append(parts, byKey[k])
			}
			return parts
		},
		Init: func() any { return linState{} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(linState), input.(linInput), output.(linOutput)
			// seen is the state the operation claims it observed.
			seen := linState{Val: out.Val, Present: out.OK}
			if in.Op == linDelete {
				seen = linState{Val: s.Val, Present: out.OK}
			}
			if seen != s && !(evicting && !seen.Present) {
				return false, nil
			}
			switch in.Op {
			case linGet:
				return true, seen
			case linSet:
				return true, linState{Val: in.Arg, Present: true}
			case linInc:
				return true, linState{Val: seen.Val + 1, Present: true}
			default: // delete
				return true, linState{}
			}
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			switch in.Op {
			case linGet:
				return fmt.Sprintf("get(k%d) -> %d,%v", in.Key, out.Val, out.OK)
			case linSet:
				return fmt.Sprintf("set(k%d, %d) saw %d,%v", in.Key, in.Arg, out.Val, out.OK)
			case linInc:
				return fmt.Sprintf("inc(k%d) saw %d,%v", in.Key, out.Val, out.OK)
			default:
				return fmt.Sprintf("delete(k%d) -> %v", in.Key, out.OK)
			}
		},
		DescribeState: func(state any) string {
			s := state.(linState)
			if !s.Present {
				return "absent"
			}
			return fmt.Sprint(s.Val)
		},
	}
}

type linConfig struct {
	capacity int
	keys     int
	clients  int
	opsEach  int
	// yieldInUpdate makes one update in yieldInUpdate give up the CPU
	// while it holds its slot (0: never), so that on a 2-core machine
	// other operations really do arrive at a held slot or bucket.
	yieldInUpdate int
}

// linRecord runs one history on a fresh table and returns it, with any
// invariant broken along the way (torn value, Upsert's function not called
// exactly once).
func linRecord(t *testing.T, cfg linConfig, seed uint64) (*Table[linKey, linVal], []porcupine.Operation) {
	t.Helper()
	tb, err := New[linKey, linVal](cfg.capacity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })

	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) } // monotonic clock
	var nextID atomic.Uint64
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	perClient := make([][]porcupine.Operation, cfg.clients)
	errs := make([]error, cfg.clients)
	for c := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			ops := make([]porcupine.Operation, 0, cfg.opsEach)
			start.Wait()
			for range cfg.opsEach {
				in := linInput{Key: rng.IntN(cfg.keys)}
				switch r := rng.IntN(100); {
				case r < 35:
					in.Op = linGet
				case r < 60:
					in.Op = linSet
					// Unique ids far apart, so that increments of one never
					// reach another.
					in.Arg = nextID.Add(1) << 20
				case r < 75:
					in.Op = linInc
				default:
					in.Op = linDelete
				}
				yield := cfg.yieldInUpdate > 0 && rng.IntN(cfg.yieldInUpdate) == 0
				k := linKeyOf(in.Key)
				var out linOutput
				calls := 0
				call := now()
				switch in.Op {
				case linGet:
					v, ok := tb.Get(k)
					if ok && !v.consistent() {
						errs[c] = fmt.Errorf("get(k%d) returned a torn value %+v", in.Key, v)
					}
					out = linOutput{Val: v.V, OK: ok}
				case linSet, linInc:
					tb.Upsert(k, func(v *linVal, existed bool) {
						calls++
						if existed && !v.consistent() {
							errs[c] = fmt.Errorf("upsert(k%d) was given a torn value %+v", in.Key, *v)
						}
						if !existed && *v != (linVal{}) {
							errs[c] = fmt.Errorf("upsert(k%d) of a new key was given %+v, not a zero value", in.Key, *v)
						}
						out = linOutput{Val: v.V, OK: existed}
						if in.Op == linSet {
							v.set(in.Arg)
						} else {
							v.set(v.V + 1)
						}
						if yield {
							runtime.Gosched()
						}
					})
					if calls != 1 {
						errs[c] = fmt.Errorf("upsert(k%d) called its function %d times", in.Key, calls)
					}
				default:
					out = linOutput{OK: tb.Delete(k)}
				}
				ret := now()
				ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
			}
			perClient[c] = ops
		}()
	}
	start.Done()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("history %d: %v", seed, err)
		}
	}
	var history []porcupine.Operation
	for _, ops := range perClient {
		history = append(history, ops...)
	}
	return tb, history
}

// linCheck checks one history and fails the test, keeping a visualization
// and a text dump, if it is not linearizable. It reports whether the
// checker reached a verdict within its time limit.
func linCheck(t *testing.T, model porcupine.Model, history []porcupine.Operation, name string) bool {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, history, 10*time.Second)
	switch res {
	case porcupine.Ok:
		return true
	case porcupine.Unknown:
		return false
	}
	dir := linFailureDir(t)
	html := filepath.Join(dir, name+".html")
	if err := porcupine.VisualizePath(model, info, html); err != nil {
		t.Errorf("write visualization: %v", err)
	}
	var b strings.Builder
	for _, op := range history {
		fmt.Fprintf(&b, "client %d [%d, %d] %s\n", op.ClientId, op.Call, op.Return,
			model.DescribeOperation(op.Input, op.Output))
	}
	txt := filepath.Join(dir, name+".txt")
	if err := os.WriteFile(txt, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write history: %v", err)
	}
	t.Fatalf("history %s is not linearizable; visualization %s, operations %s", name, html, txt)
	return false
}

// linFailureDir is where a failing history is kept: the test's artifact
// directory with -artifacts, otherwise a directory that outlives the test
// (t.TempDir is removed when the test ends, which would make the path in
// the failure message useless).
func linFailureDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir, err := os.MkdirTemp("", "flowtable-linearizability-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLinearizable(t *testing.T) {
	tests := []struct {
		name      string
		cfg       linConfig
		histories int
	}{
		// 16 keys in 16 slots: two buckets, every key shares both, inserts
		// reuse slots other keys freed, yet no eviction is possible
		// (a key's two buckets are the whole table).
		{"crowded", linConfig{capacity: 16, keys: 16, clients: 4, opsEach: 100, yieldInUpdate: 8}, 200},
		// Few keys in the same small table: most operations meet another
		// on the same key.
		{"hot", linConfig{capacity: 16, keys: 4, clients: 4, opsEach: 100, yieldInUpdate: 8}, 200},
		// A roomy table: keys mostly in their own buckets, so operations on
		// one key meet only each other.
		{"roomy", linConfig{capacity: 4096, keys: 8, clients: 4, opsEach: 100, yieldInUpdate: 8}, 200},
		// Without yields inside updates: shorter critical sections, more
		// operations per scheduler slice.
		{"no-yield", linConfig{capacity: 16, keys: 8, clients: 4, opsEach: 100}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			model := linModel(false)
			unknown := 0
			for h := range tc.histories {
				tb, history := linRecord(t, tc.cfg, uint64(h))
				if n := tb.Evictions(); n != 0 {
					t.Fatalf("history %d: %d evictions in a table that cannot fill up", h, n)
				}
				if !linCheck(t, model, history, fmt.Sprintf("%s-%d", tc.name, h)) {
					unknown++
				}
			}
			if unknown > tc.histories/10 {
				t.Fatalf("checker timed out on %d of %d histories", unknown, tc.histories)
			}
		})
	}
}

// TestLinearizableWithEviction fills a 16-slot table from 48 keys, so
// inserts evict all the time. Evictions make keys vanish, so the check is
// weaker: every value read was written to that key by an Upsert that had
// started, no value is torn, Len stays within capacity, and the history is
// linearizable once vanishing keys are allowed (linModel(true)).
func TestLinearizableWithEviction(t *testing.T) {
	const (
		keys      = 48
		clients   = 4
		opsEach   = 100
		histories = 200
	)
	model := linModel(true)
	var evictions uint64
	for h := range histories {
		tb, err := New[linKey, linVal](16)
		if err != nil {
			t.Fatal(err)
		}
		base := time.Now()
		now := func() int64 { return int64(time.Since(base)) }
		type write struct {
			key  int
			call int64
		}
		var (
			written   sync.Map // id → write
			nextID    atomic.Uint64
			inserts   atomic.Int64
			deletes   atomic.Int64
			errMu     sync.Mutex
			firstErr  error
			perClient = make([][]porcupine.Operation, clients)
			start, wg sync.WaitGroup
			stop      = make(chan struct{})
			watcher   sync.WaitGroup
			maxLen    atomic.Int64
		)
		fail := func(err error) {
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		}
		// valueOK checks a value read for key k: consistent, written to k.
		// Writes are registered before their Upsert starts, so a value read
		// must already be registered.
		valueOK := func(k int, v *linVal, readReturn int64) error {
			if !v.consistent() {
				return fmt.Errorf("k%d: torn value %+v", k, *v)
			}
			w, ok := written.Load(v.V &^ 0xfffff) // increments stay below bit 20
			if !ok {
				return fmt.Errorf("k%d: value %d was never written", k, v.V)
			}
			if wr := w.(write); wr.key != k {
				return fmt.Errorf("k%d: value %d was written to k%d", k, v.V, wr.key)
			} else if readReturn >= 0 && wr.call > readReturn {
				return fmt.Errorf("k%d: value %d read before its write began", k, v.V)
			}
			return nil
		}
		start.Add(1)
		watcher.Add(1)
		go func() {
			// A walker: Range and Len while the writers run. Len may run
			// ahead of the slots by the writes in flight (a freed slot is
			// reused before Delete decrements the count), so allow one per
			// client.
			defer watcher.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if n := int64(tb.Len()); n > maxLen.Load() {
					maxLen.Store(n)
				}
				tb.Range(func(k *linKey, v *linVal) bool {
					i := int(binary.LittleEndian.Uint64(k[:])) - 1
					if i < 0 || i >= keys || *k != linKeyOf(i) {
						fail(fmt.Errorf("range: unknown key %x", *k))
						return false
					}
					if err := valueOK(i, v, -1); err != nil {
						fail(fmt.Errorf("range: %w", err))
						return false
					}
					return true
				})
				runtime.Gosched()
			}
		}()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(h), uint64(c)))
				ops := make([]porcupine.Operation, 0, opsEach)
				start.Wait()
				for range opsEach {
					in := linInput{Key: rng.IntN(keys)}
					switch r := rng.IntN(100); {
					case r < 35:
						in.Op = linGet
					case r < 70:
						in.Op = linSet
					case r < 85:
						in.Op = linInc
					default:
						in.Op = linDelete
					}
					k := linKeyOf(in.Key)
					var out linOutput
					call := now()
					switch in.Op {
					case linGet:
						v, ok := tb.Get(k)
						if ok {
							if err := valueOK(in.Key, &v, now()); err != nil {
								fail(fmt.Errorf("get: %w", err))
							}
						}
						out = linOutput{Val: v.V, OK: ok}
					case linSet, linInc:
						// An increment of an absent key writes a fresh id too,
						// so that every value traces back to one write.
						id := nextID.Add(1) << 20
						written.Store(id, write{key: in.Key, call: call})
						in.Arg = id
						yield := rng.IntN(8) == 0
						tb.Upsert(k, func(v *linVal, existed bool) {
							if yield {
								defer runtime.Gosched()
							}
							out = linOutput{Val: v.V, OK: existed}
							switch {
							case !existed:
								inserts.Add(1)
								v.set(id)
							case in.Op == linSet:
								v.set(id)
							default:
								v.set(v.V + 1)
							}
						})
						if in.Op == linInc && !out.OK {
							// The model's inc of an absent key gives 1; this one
							// gave id, so record it as the set it was.
							in.Op = linSet
						}
					default:
						ok := tb.Delete(k)
						if ok {
							deletes.Add(1)
						}
						out = linOutput{OK: ok}
					}
					ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: now()})
				}
				perClient[c] = ops
			}()
		}
		start.Done()
		wg.Wait()
		close(stop)
		watcher.Wait()
		if firstErr != nil {
			tb.Close()
			t.Fatalf("history %d: %v", h, firstErr)
		}
		if m := maxLen.Load(); m > int64(tb.Capacity()+clients) {
			t.Errorf("history %d: Len reached %d, capacity %d", h, m, tb.Capacity())
		}
		// Quiescent: the counts must add up exactly.
		n := 0
		tb.Range(func(k *linKey, v *linVal) bool {
			i := int(binary.LittleEndian.Uint64(k[:])) - 1
			if err := valueOK(i, v, -1); err != nil {
				t.Errorf("history %d: final range: %v", h, err)
			}
			n++
			return true
		})
		if l := tb.Len(); l != n || l > tb.Capacity() {
			t.Errorf("history %d: Len %d, Range saw %d, capacity %d", h, l, n, tb.Capacity())
		}
		if got, want := int64(tb.Len())+deletes.Load()+int64(tb.Evictions()), inserts.Load(); got != want {
			t.Errorf("history %d: Len+deletes+evictions = %d, inserts %d", h, got, want)
		}
		evictions += tb.Evictions()
		tb.Close()

		var history []porcupine.Operation
		for _, ops := range perClient {
			history = append(history, ops...)
		}
		linCheck(t, model, history, fmt.Sprintf("evicting-%d", h))
	}
	if evictions == 0 {
		t.Fatal("no evictions: the test did not test eviction")
	}
}

// TestLinModel checks the checker's side: hand-made histories that a
// correct table could or could not produce, so that a passing
// TestLinearizable means the histories were linearizable, not that the
// model accepts anything.
func TestLinModel(t *testing.T) {
	type op struct {
		client    int
		call, ret int64
		in        linInput
		out       linOutput
	}
	get := func(k int) linInput { return linInput{Op: linGet, Key: k} }
	set := func(k int, v uint64) linInput { return linInput{Op: linSet, Key: k, Arg: v} }
	inc := func(k int) linInput { return linInput{Op: linInc, Key: k} }
	del := func(k int) linInput { return linInput{Op: linDelete, Key: k} }
	tests := []struct {
		name     string
		evicting bool
		ops      []op
		want     bool
	}{
		{"sequential", false, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, get(1), linOutput{5, true}},
			{0, 4, 5, inc(1), linOutput{5, true}},
			{0, 6, 7, del(1), linOutput{OK: true}},
			{0, 8, 9, get(1), linOutput{}},
		}, true},
		{"absent after a read of the new value", false, []op{
			{0, 0, 10, set(1, 5), linOutput{}},
			{1, 1, 2, get(1), linOutput{5, true}},
			{2, 3, 4, get(1), linOutput{}},
		}, false}, // once a reader saw 5, a later reader may not see absent
		{"stale read", false, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, set(1, 6), linOutput{5, true}},
			{1, 4, 5, get(1), linOutput{5, true}},
		}, false},
		{"lost increment", false, []op{
			{0, 0, 10, inc(1), linOutput{}},
			{1, 0, 10, inc(1), linOutput{}},
		}, false},
		{"concurrent increments", false, []op{
			{0, 0, 10, inc(1), linOutput{}},
			{1, 0, 10, inc(1), linOutput{1, true}},
			{2, 11, 12, get(1), linOutput{2, true}},
		}, true},
		{"double delete", false, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{1, 2, 10, del(1), linOutput{OK: true}},
			{2, 2, 10, del(1), linOutput{OK: true}},
		}, false},
		{"keys are independent", false, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, get(2), linOutput{}},
		}, true},
		{"evicted key reads absent", true, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, get(1), linOutput{}},
		}, true},
		{"evicted key comes back", true, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, get(1), linOutput{}},
			{0, 4, 5, get(1), linOutput{5, true}},
		}, false},
		{"eviction does not excuse a stale read", true, []op{
			{0, 0, 1, set(1, 5), linOutput{}},
			{0, 2, 3, set(1, 6), linOutput{5, true}},
			{1, 4, 5, get(1), linOutput{5, true}},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var history []porcupine.Operation
			for _, o := range tc.ops {
				history = append(history, porcupine.Operation{ClientId: o.client, Input: o.in, Call: o.call, Output: o.out, Return: o.ret})
			}
			if got := porcupine.CheckOperations(linModel(tc.evicting), history); got != tc.want {
				t.Fatalf("linearizable = %v, want %v", got, tc.want)
			}
		})
	}
}
