package flowtable

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTableOps applies a sequence of operations to a flow table and to a
// reference map, single-threaded, and after each one requires the table
// to hold exactly the map's entries, except for the one entry an insert
// may evict when the key's buckets are full.
//
// Input: byte 0 picks the capacity (16..64), then 2 bytes per operation
// (see fuzzOp), at most fuzzMaxOps of them. Inputs are kept short on
// purpose: the fuzzer minimises every new input in time quadratic in its
// length, and a long one stalls a 20-second run.
func FuzzTableOps(f *testing.F) {
	f.Add([]byte{0})
	// Set, get, add, delete, get one key.
	f.Add(fuzzOps(0, 1, 5, 9, 0, 5, 0, 2, 5, 3, 3, 5, 0, 0, 5, 0))
	// Fill a 16-slot table with 20 keys: evictions; then a Range that
	// stops early and an expiry.
	var fill []int
	for i := range 20 {
		fill = append(fill, 1, i, i)
	}
	f.Add(fuzzOps(0, append(fill, 5, 0, 3, 4, 0, 2)...))
	// Expire and a Range that stops early on a larger table.
	f.Add(fuzzOps(48, 1, 1, 4, 1, 2, 5, 1, 3, 6, 4, 0, 2, 5, 0, 1, 6, 2, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		capacity := 16 + int(data[0])%49
		tb, err := NewFlows(capacity)
		if err != nil {
			t.Fatal(err)
		}
		defer tb.Close()
		ft := fuzzTable{t: t, tb: tb}
		ops := data[1:]
		for i := 0; i+2 <= len(ops) && i < 2*fuzzMaxOps; i += 2 {
			kind, key, val := fuzzOp(ops[i], ops[i+1])
			ft.apply(kind, key, val)
			ft.compare(i / 2)
		}
	})
}

// fuzzOp decodes one operation: byte a is the kind (low 3 bits, modulo
// fuzzOpKinds) and the value's low 5 bits; byte b is the key index (low 6
// bits) and the value's top 2 bits. Values are 0..127.
func fuzzOp(a, b byte) (kind byte, key int, val byte) {
	return (a & 7) % fuzzOpKinds, int(b & 63), a>>3 | b>>6<<5
}

// fuzzOps encodes a capacity byte and (kind, key, value) triples.
func fuzzOps(capacity byte, triples ...int) []byte {
	b := []byte{capacity}
	for i := 0; i+3 <= len(triples); i += 3 {
		kind, key, val := triples[i], triples[i+1], triples[i+2]
		b = append(b, byte(kind)|byte(val&31)<<3, byte(key&63)|byte(val>>5&3)<<6)
	}
	return b
}

const (
	fuzzKeys    = 64
	fuzzOpKinds = 7
	fuzzMaxOps  = 128
)

// fuzzFlowKey is key index i as a flow: even indexes IPv4, odd IPv6, so
// that both halves of the key bytes vary.
func fuzzFlowKey(i int) FlowKey { return fuzzFlowKeys[i] }

var fuzzFlowKeys = func() (keys [fuzzKeys]FlowKey) {
	for i := range keys {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), uint16(40000+i))
		dst := netip.MustParseAddrPort("198.19.0.1:443")
		if i%2 == 1 {
			src = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), uint16(40000+i))
			dst = netip.MustParseAddrPort("[2001:db8::1]:443")
		}
		keys[i] = NewFlowKey(src, dst, 6)
	}
	return keys
}()

type fuzzTable struct {
	t     *testing.T
	tb    *Flows
	model fuzzModel
	steps []fuzzStep // what ran, for failure messages
	seen  fuzzModel  // scratch for rangeKeys
}

// fuzzModel is the reference map, as arrays indexed by key index (a Go map
// per step made the fuzzer spend its time allocating).
type fuzzModel struct {
	val     [fuzzKeys]uint64 // Flow.BytesIn
	present [fuzzKeys]bool
	n       int
}

func (m *fuzzModel) put(i int, v uint64) {
	if !m.present[i] {
		m.present[i] = true
		m.n++
	}
	m.val[i] = v
}

func (m *fuzzModel) remove(i int) {
	if m.present[i] {
		m.present[i] = false
		m.n--
	}
	m.val[i] = 0
}

type fuzzStep struct {
	kind, val byte
	key       int
	evicted   int // key index an insert evicted, or -1
}

func (s fuzzStep) String() string {
	name := [...]string{"get", "set", "add", "delete", "expire", "range", "touch"}[s.kind]
	out := fmt.Sprintf("%s key %d val %d", name, s.key, s.val)
	if s.evicted >= 0 {
		out += fmt.Sprintf(" (evicted key %d)", s.evicted)
	}
	return out
}

func (ft *fuzzTable) fatalf(format string, args ...any) {
	ft.t.Helper()
	var b strings.Builder
	for _, s := range ft.steps[max(0, len(ft.steps)-20):] {
		b.WriteString("\n  " + s.String())
	}
	ft.t.Fatalf("%s\ncapacity %d, last steps:%s", fmt.Sprintf(format, args...), ft.tb.Capacity(), b.String())
}

// checkFlow checks a value read for key index i: it carries its own key's
// mark (Zone = i+1), so a value of another key cannot pass for it.
func (ft *fuzzTable) checkFlow(i int, v *Flow) {
	ft.t.Helper()
	if v.Zone != uint32(i)+1 {
		ft.fatalf("key %d holds a value written for key %d: %+v", i, int(v.Zone)-1, *v)
	}
}

func (ft *fuzzTable) apply(kind byte, i int, val byte) {
	t, tb := ft.t, ft.tb
	t.Helper()
	ft.steps = append(ft.steps, fuzzStep{kind: kind, key: i, val: val, evicted: -1})
	k := fuzzFlowKey(i)
	// Every other step goes through Prefetch and the Ahead methods, which
	// must behave exactly as the plain ones.
	ahead := len(ft.steps)%2 == 0
	var a Ahead[FlowKey]
	if ahead {
		tb.Prefetch(&a, &k)
		tb.PrefetchEntry(&a)
		if a.Key() != k {
			ft.fatalf("Ahead of key %d holds another key", i)
		}
	}
	want, present := ft.model.val[i], ft.model.present[i]
	evictions := tb.Evictions()
	lenBefore := ft.model.n
	switch kind {
	case 0: // get
		v, ok := tb.Get(k)
		if ahead {
			v, ok = tb.GetAhead(&a)
		}
		if ok != present {
			ft.fatalf("get %d: present %v, model %v", i, ok, present)
		}
		if ok {
			ft.checkFlow(i, &v)
			if v.BytesIn != want {
				ft.fatalf("get %d: %d, model %d", i, v.BytesIn, want)
			}
		} else if v != (Flow{}) {
			ft.fatalf("get %d: absent but returned %+v", i, v)
		}
	case 1, 2, 6: // set, add, touch (an update that changes nothing)
		calls := 0
		upsert := tb.Upsert
		if ahead {
			upsert = func(_ FlowKey, fn func(v *Flow, existed bool)) { tb.UpsertAhead(&a, fn) }
		}
		upsert(k, func(v *Flow, existed bool) {
			calls++
			if existed != present {
				ft.fatalf("upsert %d: existed %v, model %v", i, existed, present)
			}
			if existed {
				ft.checkFlow(i, v)
				if v.BytesIn != want {
					ft.fatalf("upsert %d: given %d, model %d", i, v.BytesIn, want)
				}
			} else if *v != (Flow{}) {
				ft.fatalf("upsert %d: new key given %+v, not a zero value", i, *v)
			}
			v.Zone = uint32(i) + 1
			switch kind {
			case 1:
				v.BytesIn = uint64(val)
			case 2:
				v.BytesIn += uint64(val)
			}
		})
		if calls != 1 {
			ft.fatalf("upsert %d called its function %d times", i, calls)
		}
		switch kind {
		case 1:
			ft.model.put(i, uint64(val))
		case 2:
			ft.model.put(i, want+uint64(val))
		default:
			ft.model.put(i, want)
		}
		if !present {
			ft.afterInsert(i, evictions, lenBefore)
		}
	case 3: // delete
		del := tb.Delete
		if ahead {
			del = func(FlowKey) bool { return tb.DeleteAhead(&a) }
		}
		if ok := del(k); ok != present {
			ft.fatalf("delete %d: %v, model %v", i, ok, present)
		}
		ft.model.remove(i)
	case 4: // expire every entry whose value is val modulo 4
		wantGone := 0
		for j := range fuzzKeys {
			if ft.model.present[j] && ft.model.val[j]%4 == uint64(val%4) {
				wantGone++
			}
		}
		n := tb.Expire(func(k *FlowKey, v *Flow) bool {
			if *k != fuzzFlowKey(int(v.Zone)-1) {
				ft.fatalf("expire: key %v holds a value of key %d", k.Source(), int(v.Zone)-1)
			}
			return v.BytesIn%4 == uint64(val%4)
		})
		if n != wantGone {
			ft.fatalf("expire: removed %d, model %d", n, wantGone)
		}
		for j := range fuzzKeys {
			if ft.model.present[j] && ft.model.val[j]%4 == uint64(val%4) {
				ft.model.remove(j)
			}
		}
	case 5: // a Range that stops after limit entries
		limit := 1 + int(val)%8
		n := 0
		tb.Range(func(_ *FlowKey, _ *Flow) bool {
			n++
			return n < limit
		})
		if want := min(limit, ft.model.n); n != want {
			ft.fatalf("range with limit %d saw %d entries, want %d", limit, n, want)
		}
	}
	if kind != 1 && kind != 2 && kind != 6 || present {
		if got := tb.Evictions(); got != evictions {
			ft.fatalf("%d evictions by an operation that inserts nothing", got-evictions)
		}
	}
}

// afterInsert accounts for the eviction an insert of key index i may have
// caused. Range, not Get, finds the victim: Get would mark every entry
// referenced and change what CLOCK evicts next.
func (ft *fuzzTable) afterInsert(i int, evictionsBefore uint64, lenBefore int) {
	ft.t.Helper()
	n := ft.tb.Evictions() - evictionsBefore
	// Two buckets of 8 must be full before anything is evicted; with two
	// buckets in all, every key's candidates are the whole table, so an
	// insert evicts exactly when the table is full.
	mustEvict := ft.tb.Capacity() == 2*bucketSlots && lenBefore == ft.tb.Capacity()
	switch {
	case n > 1:
		ft.fatalf("insert %d evicted %d entries", i, n)
	case n == 1 && lenBefore < 2*bucketSlots:
		ft.fatalf("insert %d evicted with only %d entries", i, lenBefore)
	case n == 0 && mustEvict:
		ft.fatalf("insert %d into a full two-bucket table evicted nothing", i)
	case n == 0:
		return
	}
	ft.rangeKeys()
	var gone []int
	for j := range fuzzKeys {
		if ft.model.present[j] && !ft.seen.present[j] {
			gone = append(gone, j)
		}
	}
	if len(gone) != 1 || gone[0] == i {
		ft.fatalf("insert %d counted an eviction, but keys %v are gone", i, gone)
	}
	ft.steps[len(ft.steps)-1].evicted = gone[0]
	ft.model.remove(gone[0])
}

// rangeKeys reads the table's content by Range into ft.seen, checking
// each entry.
func (ft *fuzzTable) rangeKeys() {
	ft.t.Helper()
	ft.seen = fuzzModel{}
	ft.tb.Range(func(k *FlowKey, v *Flow) bool {
		j := int(v.Zone) - 1
		if j < 0 || j >= fuzzKeys || *k != fuzzFlowKey(j) {
			ft.fatalf("range: key %v -> %v holds %+v", k.Source(), k.Destination(), *v)
		}
		if ft.seen.present[j] {
			ft.fatalf("range: key %d seen twice", j)
		}
		ft.seen.put(j, v.BytesIn)
		return true
	})
}

func (ft *fuzzTable) compare(step int) {
	ft.t.Helper()
	if l := ft.tb.Len(); l != ft.model.n || l > ft.tb.Capacity() {
		ft.fatalf("step %d: Len %d, model %d, capacity %d", step, l, ft.model.n, ft.tb.Capacity())
	}
	ft.rangeKeys()
	if ft.seen != ft.model {
		for j := range fuzzKeys {
			if ft.seen.present[j] != ft.model.present[j] || ft.seen.val[j] != ft.model.val[j] {
				ft.fatalf("step %d: range has key %d = %d (%v), model %d (%v)", step, j,
					ft.seen.val[j], ft.seen.present[j], ft.model.val[j], ft.model.present[j])
			}
		}
	}
}

// The corpus under testdata/fuzz is made by TestWriteFuzzCorpus:
//
//	go test ./flowtable -run TestWriteFuzzCorpus -update-fuzz-corpus
//
// It writes the same files every time (fixed seeds), so a diff shows only
// a change to the generator.
var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz seed files")

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateFuzzCorpus {
		t.Skip("run with -update-fuzz-corpus to rewrite testdata/fuzz")
	}
	for target, files := range map[string]map[string][]byte{
		"FuzzTableOps":     tableOpsCorpus(),
		"FuzzVisitorCount": visitorCountCorpus(),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// tableOpsCorpus is a few scenarios, each as long as FuzzTableOps takes,
// that short seeds do not reach.
func tableOpsCorpus() map[string][]byte {
	files := map[string][]byte{}

	// Overflow a 16-slot table with 48 keys, reading some between inserts
	// so that CLOCK has referenced entries to pass over.
	var ops []int
	for i := 0; len(ops) < 3*fuzzMaxOps; i++ {
		ops = append(ops, 1, i%48, i)
		if i%3 == 0 {
			ops = append(ops, 0, (i*7)%48, 0)
		}
	}
	files["overflow-two-buckets"] = fuzzOps(0, ops[:3*fuzzMaxOps]...)

	// Churn on a 64-slot table: insert, delete, reinsert, so that freed
	// slots are reused by other keys.
	ops = nil
	for i := 0; len(ops) < 3*fuzzMaxOps; i++ {
		ops = append(ops, 1, (i*5)%64, i)
		if i%2 == 1 {
			ops = append(ops, 3, (i*5-5)%64, 0)
		}
	}
	files["churn-reuse"] = fuzzOps(48, ops[:3*fuzzMaxOps]...)

	// Waves of expiry between additions.
	ops = nil
	for i := 0; len(ops) < 3*fuzzMaxOps; i++ {
		ops = append(ops, 2, (i*11)%40, i%7)
		if i%25 == 24 {
			ops = append(ops, 4, 0, i, 5, 0, i)
		}
	}
	files["expire-waves"] = fuzzOps(20, ops[:3*fuzzMaxOps]...)

	// Random mixes, one per capacity class.
	for n, capacity := range []byte{0, 7, 30, 48} {
		rng := rand.New(rand.NewPCG(uint64(n), 4))
		ops = nil
		for range fuzzMaxOps {
			ops = append(ops, rng.IntN(fuzzOpKinds), rng.IntN(fuzzKeys), rng.IntN(128))
		}
		files[fmt.Sprintf("random-%d", n)] = fuzzOps(capacity, ops...)
	}
	return files
}
