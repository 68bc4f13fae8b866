package flowtable

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
)

type testKey [16]byte

type testVal struct {
	A, B uint64
	C    [6]uint64
}

func key(i int) testKey {
	var k testKey
	binary.LittleEndian.PutUint64(k[:], uint64(i))
	binary.LittleEndian.PutUint64(k[8:], uint64(i)*0x9e3779b97f4a7c15)
	return k
}

func newTable(t testing.TB, capacity int) *Table[testKey, testVal] {
	t.Helper()
	tb, err := New[testKey, testVal](capacity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

func set(tb *Table[testKey, testVal], k testKey, a uint64) {
	tb.Upsert(k, func(v *testVal, _ bool) { v.A = a })
}

func TestOperations(t *testing.T) {
	tb := newTable(t, 1024)
	if _, ok := tb.Get(key(1)); ok {
		t.Fatal("empty table has key 1")
	}
	created := 0
	for i := range 500 {
		tb.Upsert(key(i), func(v *testVal, existed bool) {
			if !existed {
				created++
			}
			v.A = uint64(i)
		})
	}
	if created != 500 || tb.Len() != 500 {
		t.Fatalf("created %d, Len %d, want 500", created, tb.Len())
	}
	for i := range 500 {
		tb.Upsert(key(i), func(v *testVal, existed bool) {
			if !existed {
				t.Errorf("key %d lost", i)
			}
			v.B = v.A + 1
		})
	}
	for i := range 500 {
		v, ok := tb.Get(key(i))
		if !ok || v.A != uint64(i) || v.B != uint64(i)+1 {
			t.Fatalf("Get(%d) = %+v %v", i, v, ok)
		}
	}
	for i := 0; i < 500; i += 2 {
		if !tb.Delete(key(i)) {
			t.Fatalf("Delete(%d) found nothing", i)
		}
	}
	if tb.Delete(key(0)) {
		t.Fatal("second Delete(0) found something")
	}
	for i := range 500 {
		_, ok := tb.Get(key(i))
		if ok != (i%2 == 1) {
			t.Fatalf("Get(%d) ok = %v after deleting evens", i, ok)
		}
	}
	if tb.Len() != 250 || tb.Evictions() != 0 {
		t.Fatalf("Len %d evictions %d, want 250 and 0", tb.Len(), tb.Evictions())
	}
}

// TestAheadSameAsPlain drives one table with the plain methods and another
// with Prefetch and the Ahead methods (an Ahead made by the first table,
// since a key's hash is its own), and expects the same answers.
func TestAheadSameAsPlain(t *testing.T) {
	plain, ahead := newTable(t, 256), newTable(t, 256)
	for step := range 5000 {
		i := (step * 7919) % 300 // more keys than slots: inserts evict
		k := key(i)
		var a Ahead[testKey]
		plain.Prefetch(&a, &k)
		ahead.PrefetchEntry(&a)
		if a.Key() != key(i) {
			t.Fatalf("Ahead holds %x, want %x", a.Key(), key(i))
		}
		switch step % 4 {
		case 0:
			v1, ok1 := plain.Get(key(i))
			v2, ok2 := ahead.GetAhead(&a)
			if ok1 != ok2 || (ok1 && v1.A != v2.A) {
				t.Fatalf("step %d: Get %v %d, GetAhead %v %d", step, ok1, v1.A, ok2, v2.A)
			}
		case 1, 2:
			var e1, e2 bool
			plain.Upsert(key(i), func(v *testVal, existed bool) { e1 = existed; v.A = uint64(step) })
			ahead.UpsertAhead(&a, func(v *testVal, existed bool) { e2 = existed; v.A = uint64(step) })
			if e1 != e2 {
				t.Fatalf("step %d: Upsert existed %v, UpsertAhead %v", step, e1, e2)
			}
		case 3:
			if d1, d2 := plain.Delete(key(i)), ahead.DeleteAhead(&a); d1 != d2 {
				t.Fatalf("step %d: Delete %v, DeleteAhead %v", step, d1, d2)
			}
		}
		if plain.Len() != ahead.Len() || plain.Evictions() != ahead.Evictions() {
			t.Fatalf("step %d: Len %d/%d, evictions %d/%d", step, plain.Len(), ahead.Len(), plain.Evictions(), ahead.Evictions())
		}
	}
}

func TestEvictionKeepsCapacity(t *testing.T) {
	tb := newTable(t, 64)
	for i := range 10_000 {
		set(tb, key(i), uint64(i))
	}
	if tb.Len() > tb.Capacity() {
		t.Fatalf("Len %d over capacity %d", tb.Len(), tb.Capacity())
	}
	if got := uint64(tb.Len()) + tb.Evictions(); got != 10_000 {
		t.Fatalf("Len + evictions = %d, want 10000", got)
	}
	n := 0
	tb.Range(func(k *testKey, v *testVal) bool {
		if *k != key(int(v.A)) {
			t.Fatalf("entry %x holds value of key %d", k, v.A)
		}
		n++
		return true
	})
	if n != tb.Len() {
		t.Fatalf("Range saw %d entries, Len %d", n, tb.Len())
	}
}

func TestClockPrefersUnreferenced(t *testing.T) {
	tb := newTable(t, 16) // two buckets: every key shares them
	for i := range tb.Capacity() {
		set(tb, key(i), uint64(i))
	}
	hot := key(3)
	for range 20 {
		for i := tb.Capacity(); i < tb.Capacity()+4; i++ {
			if _, ok := tb.Get(hot); !ok {
				t.Fatal("a key updated before every insert was evicted")
			}
			tb.Upsert(hot, func(v *testVal, _ bool) { v.B++ })
			set(tb, key(i+1000*int(tb.Evictions())), 1)
		}
	}
}

func TestExpire(t *testing.T) {
	tb := newTable(t, 256)
	for i := range 100 {
		set(tb, key(i), uint64(i))
	}
	n := tb.Expire(func(_ *testKey, v *testVal) bool { return v.A < 40 })
	if n != 40 || tb.Len() != 60 {
		t.Fatalf("expired %d, Len %d; want 40, 60", n, tb.Len())
	}
	if _, ok := tb.Get(key(39)); ok {
		t.Fatal("expired key still there")
	}
	if v, ok := tb.Get(key(40)); !ok || v.A != 40 {
		t.Fatal("kept key lost")
	}
}

func TestNewRejects(t *testing.T) {
	type padded struct {
		A uint8
		B uint32
	}
	type withPointer struct{ P *int }
	type blank struct {
		A [3]byte
		_ byte
	}
	tests := []struct {
		name    string
		new     func() error
		wantErr string
	}{
		{"small capacity", func() error { _, err := New[testKey, testVal](8); return err }, "capacity"},
		{"padded key", func() error { _, err := New[padded, testVal](64); return err }, "padding"},
		{"blank key field", func() error { _, err := New[blank, testVal](64); return err }, "blank field"},
		{"pointer value", func() error { _, err := New[testKey, withPointer](64); return err }, "not a fixed-size plain type"},
		{"string key", func() error { _, err := New[string, testVal](64); return err }, "not a fixed-size plain type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.new()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestZeroAllocations(t *testing.T) {
	tb := newTable(t, 4096)
	for i := range 1000 {
		set(tb, key(i), uint64(i))
	}
	i := 0
	for name, op := range map[string]func(){
		"get":    func() { tb.Get(key(i % 1000)) },
		"update": func() { tb.Upsert(key(i%1000), func(v *testVal, _ bool) { v.B++ }) },
		"insert+delete": func() {
			k := key(2000 + i)
			tb.Upsert(k, func(v *testVal, _ bool) { v.A = 1 })
			tb.Delete(k)
		},
		"prefetched get": func() {
			k := key(i % 1000)
			var a Ahead[testKey]
			tb.Prefetch(&a, &k)
			tb.PrefetchEntry(&a)
			tb.GetAhead(&a)
		},
		"prefetched update": func() {
			k := key(i % 1000)
			var a Ahead[testKey]
			tb.Prefetch(&a, &k)
			tb.UpsertAhead(&a, func(v *testVal, _ bool) { v.B++ })
		},
		"prefetched insert+delete": func() {
			k := key(2000 + i)
			var a Ahead[testKey]
			tb.Prefetch(&a, &k)
			tb.PrefetchEntry(&a)
			tb.UpsertAhead(&a, func(v *testVal, _ bool) { v.A = 1 })
			tb.DeleteAhead(&a)
		},
	} {
		if n := testing.AllocsPerRun(1000, func() { op(); i++ }); n != 0 {
			t.Errorf("%s allocates %.1f times per op", name, n)
		}
	}
}

func TestConcurrentDisjointWriters(t *testing.T) {
	tb := newTable(t, 1<<14)
	var wg sync.WaitGroup
	const per = 2000
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				k := key(g*per + i)
				for range 3 {
					tb.Upsert(k, func(v *testVal, _ bool) { v.A++; v.C[5] = v.A })
				}
				if i%3 == 0 {
					tb.Delete(k)
				}
			}
		}()
	}
	// Readers check every copy they get is internally consistent.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tb.Range(func(k *testKey, v *testVal) bool {
				if v.A != v.C[5] {
					t.Errorf("torn read: %+v", v)
					return false
				}
				return true
			})
		}
	}()
	wg.Wait()
	close(stop)
	rg.Wait()
	want := 0
	for g := range 4 {
		for i := range per {
			v, ok := tb.Get(key(g*per + i))
			if ok != (i%3 != 0) || (ok && v.A != 3) {
				t.Fatalf("key %d: %+v %v", g*per+i, v, ok)
			}
			if ok {
				want++
			}
		}
	}
	if tb.Len() != want {
		t.Fatalf("Len %d, want %d", tb.Len(), want)
	}
}
