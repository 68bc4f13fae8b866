package flowtable

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/zeebo/xxh3"
)

const bucketSlots = 8

// Slot meta word layout.
const (
	metaBusy  = 1 << 0 // a writer owns the slot
	metaUsed  = 1 << 1 // the slot holds a published entry
	metaRef   = 1 << 2 // updated since the CLOCK hand last passed
	tagShift  = 8      // bits 8..15: hash tag
	tagMask   = 0xff << tagShift
	seqShift  = 16 // bits 16..31: version, bumped by every write
	seqInc    = 1 << seqShift
	stableBit = ^uint32(metaRef) // what a reader's two loads must agree on
)

// Bucket lock word: bit 0 held by an inserter, bits 8..10 the CLOCK hand.
const (
	bucketLocked = 1
	handShift    = 8
)

// ErrCapacity is returned by New for a capacity out of range.
var ErrCapacity = errors.New("flowtable: capacity must be in 16..2^31")

type record[K comparable, V any] struct {
	key K
	val V
}

// Table is a fixed-capacity concurrent hash table; see the package doc.
// bucket keeps its slots' meta words, its lock word and its records
// together: a lookup's meta word and record share a page (one TLB miss,
// not two), and an insert finds the lock word in the meta words' line.
type bucket[K comparable, V any] struct {
	meta [bucketSlots]atomic.Uint32
	lock atomic.Uint32
	_    uint32 // records start 8-byte aligned
	recs [bucketSlots]record[K, V]
}

type Table[K comparable, V any] struct {
	buckets  []bucket[K, V]
	nbuckets uint64
	keySize  uintptr
	counts   [countStripes]paddedInt64
	evicted  atomic.Uint64
	regions  [][]byte
	zero     uint32
}

const countStripes = 16

type paddedInt64 struct {
	n atomic.Int64
	_ [56]byte // one cache line each: inserts on different buckets do not share it
}

// New makes a table holding up to capacity entries. K and V must be
// fixed-size and free of pointers; K must have no padding, because keys
// are hashed as bytes.
func New[K comparable, V any](capacity int) (*Table[K, V], error) {
	if capacity < 16 || capacity > 1<<31 {
		return nil, fmt.Errorf("%w, got %d", ErrCapacity, capacity)
	}
	var k K
	var v V
	if err := plainType(reflect.TypeOf(k), true); err != nil {
		return nil, fmt.Errorf("flowtable: key type %T: %w", k, err)
	}
	if err := plainType(reflect.TypeOf(v), false); err != nil {
		return nil, fmt.Errorf("flowtable: value type %T: %w", v, err)
	}
	nb := (capacity + bucketSlots - 1) / bucketSlots
	if nb < 2 {
		nb = 2
	}
	t := &Table[K, V]{nbuckets: uint64(nb), keySize: unsafe.Sizeof(k)}

	mem, err := mapMemory(nb * int(unsafe.Sizeof(bucket[K, V]{})))
	if err != nil {
		return nil, err
	}
	t.regions = append(t.regions, mem)
	t.buckets = unsafe.Slice((*bucket[K, V])(unsafe.Pointer(&mem[0])), nb)
	return t, nil
}

// plainType accepts what can live outside the Go heap and be hashed as
// bytes: numbers, bools, and arrays and structs of them; for keys, without
// padding.
func plainType(t reflect.Type, noPadding bool) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return nil
	case reflect.Array:
		return plainType(t.Elem(), noPadding)
	case reflect.Struct:
		var sum uintptr
		for i := range t.NumField() {
			f := t.Field(i)
			if noPadding && f.Name == "_" {
				return fmt.Errorf("blank field %s: its bytes would be hashed but never set", f.Type)
			}
			if err := plainType(f.Type, noPadding); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
			sum += f.Type.Size()
		}
		if noPadding && sum != t.Size() {
			return fmt.Errorf("has %d bytes of padding: use byte arrays so every byte is a field", t.Size()-sum)
		}
		return nil
	}
	return fmt.Errorf("%s is not a fixed-size plain type", t)
}

// Close releases the table's memory. The table must not be used after.
func (t *Table[K, V]) Close() error {
	var errs []error
	for _, r := range t.regions {
		errs = append(errs, unmapMemory(r))
	}
	t.regions, t.buckets = nil, nil
	return errors.Join(errs...)
}

// Capacity is the number of slots (the requested capacity rounded up to
// whole buckets).
func (t *Table[K, V]) Capacity() int { return len(t.buckets) * bucketSlots }

// Len is the number of entries (exact when no write is in flight).
func (t *Table[K, V]) Len() int {
	var n int64
	for i := range t.counts {
		n += t.counts[i].n.Load()
	}
	return int(n)
}

// Evictions is how many entries were evicted to make room.
func (t *Table[K, V]) Evictions() uint64 { return t.evicted.Load() }

// slot and rec are slot s's meta word and record.
func (t *Table[K, V]) slot(s int) *atomic.Uint32 {
	return &t.buckets[s/bucketSlots].meta[s%bucketSlots]
}

func (t *Table[K, V]) rec(s int) *record[K, V] {
	return &t.buckets[s/bucketSlots].recs[s%bucketSlots]
}

// MemoryBytes is the memory the table maps: records, meta words and
// bucket lock words.
func (t *Table[K, V]) MemoryBytes() int {
	n := 0
	for _, r := range t.regions {
		n += len(r)
	}
	return n
}

type hashed struct {
	b1, b2 uint64
	home   int // preferred slot within a bucket
	tag    uint32
	hint   int // 1 + a slot to look at first (PrefetchEntry's find), or 0
}

func (t *Table[K, V]) hash(k *K) hashed {
	return t.place(t.sum(k))
}

func (t *Table[K, V]) sum(k *K) uint64 {
	// XXH3, xxHash's current algorithm: 7 ns for a 37-byte 5-tuple where
	// XXH64 takes 17, and a lookup in a cached table is about 50 ns.
	return xxh3.Hash(unsafe.Slice((*byte)(unsafe.Pointer(k)), t.keySize))
}

// place derives a key's buckets, home slot and tag from its hash.
func (t *Table[K, V]) place(h uint64) hashed {
	// Two independent buckets by range reduction of each half of the hash
	// (no power-of-two sizing, so capacity is what was asked for).
	b1 := (h >> 32) * t.nbuckets >> 32
	b2 := (h & 0xffffffff) * t.nbuckets >> 32
	if b2 == b1 {
		b2 = (b1 + 1) % t.nbuckets
	}
	return hashed{b1: b1, b2: b2, home: int(h>>16) & (bucketSlots - 1), tag: uint32(h>>24) & 0xff << tagShift}
}

// keyAt and valueAt read a slot that a writer may be changing; the caller
// validates what it read against the meta word, as a seqlock reader does,
// so these functions are exempt from the race detector.
//
//go:norace
func keyAt[K comparable, V any](r *record[K, V], k *K) bool { return r.key == *k }

// lastByte reads the record's last byte, so that its last cache line is
// fetched together with the key's instead of after it.
//
//go:norace
func lastByte[K comparable, V any](r *record[K, V]) byte {
	return *(*byte)(unsafe.Add(unsafe.Pointer(r), unsafe.Sizeof(*r)-1))
}

//go:norace
func valueAt[K comparable, V any](r *record[K, V]) V { return r.val }

//go:norace
func loadRecord[K comparable, V any](r *record[K, V]) record[K, V] { return *r }

// find returns the slot holding k and the meta word it was validated
// under (never busy).
//
// Inserts put a key in its home slot of its first bucket when they can,
// and the home slot is looked at first: its meta word and its key are both
// known from the hash, so the two cache misses overlap instead of
// following one another.
func (t *Table[K, V]) find(k *K, h hashed) (slot int, meta uint32, ok bool) {
	if h.hint > 0 {
		// Where PrefetchEntry saw the key's tag: most likely the key,
		// and its record is in the cache; probe checks it all the same.
		if m, hit := t.probe(h.hint-1, k, h.tag, false); hit {
			return h.hint - 1, m, true
		}
	}
	home := int(h.b1)*bucketSlots + h.home
	if m, hit := t.probe(home, k, h.tag, true); hit {
		return home, m, true
	}
	for _, b := range [2]uint64{h.b1, h.b2} {
		base := int(b) * bucketSlots
		metas := &t.buckets[b].meta
		for i := range metas {
			// Most slots fail on the tag: test it here, without a call,
			// and let probe read a candidate properly.
			if m := metas[i].Load(); m&metaUsed == 0 || m&tagMask != h.tag || base+i == home {
				continue
			}
			if m, hit := t.probe(base+i, k, h.tag, false); hit {
				return base + i, m, true
			}
		}
	}
	return -1, 0, false
}

// probe reads slot s as a seqlock reader and reports whether it holds k.
// Speculative compares the key together with loading the meta word,
// before knowing whether the slot is worth it.
func (t *Table[K, V]) probe(s int, k *K, tag uint32, speculative bool) (uint32, bool) {
	for spins := 0; ; spins++ {
		m1 := t.slot(s).Load()
		var eq bool
		if speculative {
			eq = keyAt(t.rec(s), k)
			// t.zero is 0, which the compiler cannot know: the read
			// stays, and costs nothing more than it overlaps.
			m1 |= uint32(lastByte(t.rec(s))) & t.zero
		}
		if m1&metaUsed == 0 || m1&tagMask != tag {
			return 0, false
		}
		if m1&metaBusy != 0 {
			backoff(spins)
			continue
		}
		if !speculative {
			eq = keyAt(t.rec(s), k)
		}
		if m2 := t.slot(s).Load(); (m1^m2)&stableBit != 0 {
			continue
		}
		return m1, eq
	}
}

func backoff(spins int) {
	if spins > 16 {
		runtime.Gosched()
	}
}

// Ahead is a key whose memory a table has started to load (see
// Prefetch), with its hash, so that the operation that follows does not
// hash it again. It is a plain value: keep a few in a ring.
type Ahead[K comparable] struct {
	key  K
	hash uint64
	slot int32 // 1 + where PrefetchEntry saw the key's tag, or 0
}

// Key is the key a was made for.
func (a *Ahead[K]) Key() K { return a.key }

// Prefetch starts loading what an operation on *k most likely touches (its
// home slot's meta word and record) and returns at once, having recorded
// the key and its hash in a for GetAhead, UpsertAhead or DeleteAhead.
//
// An operation costs a cache miss or two that a lone caller waits out (the
// tables are far larger than the caches). A caller with a queue of keys (a
// loop flushing many connections' counters, a benchmark's operation
// stream) prefetches a few keys ahead of the one it works on, so that the
// misses of several operations overlap. The hash is the key's alone, so an
// Ahead is valid for any table of the same key type; prefetching changes
// no result, only when the memory arrives.
//
// Prefetch fills a in place from *k rather than returning an Ahead: a key
// of an odd size (37 bytes for a 5-tuple) copied through arguments and
// results is written and read back in overlapping pieces that the CPU
// cannot forward, which cost more than the lookup's own work.
func (t *Table[K, V]) Prefetch(a *Ahead[K], k *K) {
	a.key = *k
	a.hash = t.sum(k)
	a.slot = 0
	h := t.place(a.hash)
	s := int(h.b1)*bucketSlots + h.home
	// A record up to 129 bytes long spans at most three cache lines: those
	// of its first byte, of the byte 64 on and of its last (two of them
	// the same line for a short record: prefetching a line on its way
	// costs nothing).
	r := uintptr(unsafe.Pointer(t.rec(s)))
	last := r + unsafe.Sizeof(record[K, V]{}) - 1
	prefetch4(uintptr(unsafe.Pointer(t.slot(s))), r, min(r+64, last), last)
}

// PrefetchEntry is Prefetch's second step, for a caller that looks
// further ahead. About a quarter of the keys do not sit in their home slot
// (it was taken when they came), and finding them reads a record that
// Prefetch could not know about. Once the meta words that Prefetch asked
// for are in (a few operations later), PrefetchEntry reads them and starts
// loading the record whose tag matches a's key, or the second bucket's
// meta words when the first bucket has no match. It never waits for
// memory that Prefetch did not already ask for.
func (t *Table[K, V]) PrefetchEntry(a *Ahead[K]) {
	h := t.place(a.hash)
	base := int(h.b1) * bucketSlots
	home := base + h.home
	if m := t.slot(home).Load(); m&metaUsed != 0 && m&tagMask == h.tag {
		return // the home record is on its way already
	}
	metas := &t.buckets[h.b1].meta
	for i := range metas {
		if m := metas[i].Load(); m&metaUsed != 0 && m&tagMask == h.tag {
			r := uintptr(unsafe.Pointer(t.rec(base + i)))
			last := r + unsafe.Sizeof(record[K, V]{}) - 1
			prefetch4(r, min(r+64, last), last, last)
			a.slot = int32(base+i) + 1
			return
		}
	}
	b2 := uintptr(unsafe.Pointer(&t.buckets[h.b2]))
	prefetch4(b2, b2, b2, b2)
}

// Get returns a copy of k's value.
func (t *Table[K, V]) Get(k K) (V, bool) { return t.get(&k, t.hash(&k)) }

// GetAhead is Get of a's key.
func (t *Table[K, V]) GetAhead(a *Ahead[K]) (V, bool) { return t.get(&a.key, t.placeAhead(a)) }

// placeAhead is place with the slot PrefetchEntry found, if any.
func (t *Table[K, V]) placeAhead(a *Ahead[K]) hashed {
	h := t.place(a.hash)
	h.hint = int(a.slot)
	return h
}

func (t *Table[K, V]) get(k *K, h hashed) (V, bool) {
	for {
		s, m, ok := t.find(k, h)
		if !ok {
			var zero V
			return zero, false
		}
		v := valueAt(t.rec(s))
		if (t.slot(s).Load()^m)&stableBit != 0 {
			continue // written while copied: look again
		}
		// Get does not mark the entry referenced: a reader that wrote the
		// meta word would pull its cache line away from every other core
		// reading the same bucket. Entries stay referenced through their
		// updates (every packet of a flow is one), and tools that read
		// should not keep an idle flow from eviction anyway.
		return v, true
	}
}

// Upsert calls fn on k's value in place, with existed false (and a zero
// value) when k was not in the table. fn runs while the slot is held: it
// must be short, must not block and must not use the table.
func (t *Table[K, V]) Upsert(k K, fn func(v *V, existed bool)) { t.upsert(&k, t.hash(&k), fn) }

// UpsertAhead is Upsert of a's key.
func (t *Table[K, V]) UpsertAhead(a *Ahead[K], fn func(v *V, existed bool)) {
	t.upsert(&a.key, t.placeAhead(a), fn)
}

func (t *Table[K, V]) upsert(k *K, h hashed, fn func(v *V, existed bool)) {
	for {
		if s, m, ok := t.find(k, h); ok {
			if !t.slot(s).CompareAndSwap(m, m|metaBusy) {
				continue // changed since validated: look again
			}
			fn(&t.rec(s).val, true)
			t.slot(s).Store((m + seqInc) | metaRef)
			return
		}
		if t.insert(k, h, fn) {
			return
		}
	}
}

// Delete removes k; it reports whether k was there.
func (t *Table[K, V]) Delete(k K) bool { return t.delete(&k, t.hash(&k)) }

// DeleteAhead is Delete of a's key.
func (t *Table[K, V]) DeleteAhead(a *Ahead[K]) bool { return t.delete(&a.key, t.placeAhead(a)) }

func (t *Table[K, V]) delete(k *K, h hashed) bool {
	for {
		s, m, ok := t.find(k, h)
		if !ok {
			return false
		}
		if !t.slot(s).CompareAndSwap(m, m|metaBusy) {
			continue
		}
		t.slot(s).Store((m + seqInc) &^ (metaUsed | metaRef))
		t.count(s, -1)
		return true
	}
}

func (t *Table[K, V]) count(slot int, d int64) {
	t.counts[(slot/bucketSlots)%countStripes].n.Add(d)
}

func (t *Table[K, V]) lockBucket(b uint64) {
	for spins := 0; ; spins++ {
		w := t.buckets[b].lock.Load()
		if w&bucketLocked == 0 && t.buckets[b].lock.CompareAndSwap(w, w|bucketLocked) {
			return
		}
		backoff(spins)
	}
}

func (t *Table[K, V]) unlockBucket(b uint64) {
	for {
		w := t.buckets[b].lock.Load()
		if t.buckets[b].lock.CompareAndSwap(w, w&^bucketLocked) {
			return
		}
	}
}

// insert adds k unless another writer did first (then it reports false and
// Upsert updates instead). It holds both candidate buckets, so inserts of
// one key serialise and cannot both land.
func (t *Table[K, V]) insert(k *K, h hashed, fn func(v *V, existed bool)) bool {
	lo, hi := h.b1, h.b2
	if lo > hi {
		lo, hi = hi, lo
	}
	t.lockBucket(lo)
	t.lockBucket(hi)
	defer t.unlockBucket(lo)
	defer t.unlockBucket(hi)
	if _, _, ok := t.find(k, h); ok {
		return false
	}
	// The first bucket keeps lookups short (its home slot is probed first);
	// once it runs ahead of the second, balance, or buckets would fill and
	// evict long before the table does.
	first, second := h.b1, h.b2
	if t.occupied(h.b1) > t.occupied(h.b2)+2 {
		first, second = h.b2, h.b1
	}
	s, m := t.claimFree(first, h.home)
	if s < 0 {
		s, m = t.claimFree(second, h.home)
	}
	held := [2]uint64{lo, hi}
	if s < 0 {
		s, m = t.relocate(h.b1, held)
	}
	if s < 0 {
		s, m = t.relocate(h.b2, held)
	}
	if s < 0 {
		s, m = t.evict(h.b1)
	}
	// The slot is busy and unused: readers skip it until it is published.
	*t.rec(s) = record[K, V]{key: *k}
	fn(&t.rec(s).val, false)
	t.slot(s).Store((m+seqInc)&^(tagMask|metaBusy|metaRef) | metaUsed | h.tag)
	t.count(s, 1)
	return true
}

// occupied counts the slots of bucket b in use or being written.
func (t *Table[K, V]) occupied(b uint64) int {
	n := 0
	for s := int(b) * bucketSlots; s < int(b+1)*bucketSlots; s++ {
		if t.slot(s).Load()&(metaUsed|metaBusy) != 0 {
			n++
		}
	}
	return n
}

// relocate frees a slot of bucket b (held by the caller) by moving one of
// its entries to that entry's other bucket, and returns the freed slot,
// busy. Only entries sitting in their first bucket move, to their second:
// readers look in the first bucket and then the second, and the copy is
// published before the original goes, so a reader finds one or the other
// (moving the other way, a reader could pass both). An entry's second
// bucket not already held is only tried, never waited for, so that two
// inserters cannot deadlock on each other's buckets.
func (t *Table[K, V]) relocate(b uint64, held [2]uint64) (int, uint32) {
	base := int(b) * bucketSlots
	for i := range bucketSlots {
		s := base + i
		m := t.slot(s).Load()
		if m&metaUsed == 0 || m&metaBusy != 0 || !t.slot(s).CompareAndSwap(m, m|metaBusy) {
			continue
		}
		key := t.rec(s).key
		h := t.hash(&key)
		dest := h.b2
		if h.b1 != b {
			t.slot(s).Store(m)
			continue
		}
		ours := dest == held[0] || dest == held[1]
		if !ours && !t.tryLockBucket(dest) {
			t.slot(s).Store(m)
			continue
		}
		d, dm := t.claimFree(dest, h.home)
		if d >= 0 {
			*t.rec(d) = *t.rec(s)
			t.slot(d).Store((dm+seqInc)&^(tagMask|metaBusy|metaRef) | metaUsed | h.tag | m&metaRef)
			t.count(d, 1)
			t.count(s, -1)
		}
		if !ours {
			t.unlockBucket(dest)
		}
		if d < 0 {
			t.slot(s).Store(m)
			continue
		}
		return s, (m | metaBusy) &^ metaUsed
	}
	return -1, 0
}

func (t *Table[K, V]) tryLockBucket(b uint64) bool {
	w := t.buckets[b].lock.Load()
	return w&bucketLocked == 0 && t.buckets[b].lock.CompareAndSwap(w, w|bucketLocked)
}

// claimFree takes a free slot of bucket b (held by the caller). Deletes
// free slots without the bucket, but only inserters, which hold it, take
// them: the CAS can only fail on a slot that changed from free to free.
func (t *Table[K, V]) claimFree(b uint64, home int) (int, uint32) {
	base := int(b) * bucketSlots
	for i := range bucketSlots {
		s := base + (home+i)&(bucketSlots-1)
		m := t.slot(s).Load()
		if m&(metaUsed|metaBusy) == 0 && t.slot(s).CompareAndSwap(m, m|metaBusy) {
			return s, m | metaBusy
		}
	}
	return -1, 0
}

// evict frees a slot of bucket b (held by the caller) with a CLOCK sweep:
// referenced entries get a second chance, slots a writer holds are passed.
func (t *Table[K, V]) evict(b uint64) (int, uint32) {
	base := int(b) * bucketSlots
	for spins := 0; ; spins++ {
		w := t.buckets[b].lock.Load()
		hand := int(w>>handShift) & (bucketSlots - 1)
		s := base + hand
		t.buckets[b].lock.Store(w&^(uint32(bucketSlots-1)<<handShift) | uint32((hand+1)&(bucketSlots-1))<<handShift)
		m := t.slot(s).Load()
		switch {
		case m&metaBusy != 0:
			backoff(spins)
		case m&metaUsed == 0:
			if t.slot(s).CompareAndSwap(m, m|metaBusy) {
				return s, m | metaBusy
			}
		case m&metaRef != 0:
			t.slot(s).CompareAndSwap(m, m&^metaRef)
		default:
			if t.slot(s).CompareAndSwap(m, m|metaBusy) {
				t.count(s, -1)
				t.evicted.Add(1)
				return s, (m | metaBusy) &^ metaUsed
			}
		}
	}
}

// Range calls fn with a consistent copy of each entry until fn returns
// false. Writers keep writing meanwhile: an entry changed during the walk
// may be seen before or after the change, and one inserted or deleted
// may or may not be seen.
func (t *Table[K, V]) Range(fn func(k *K, v *V) bool) {
	var rec record[K, V] // escapes through fn: one allocation per walk, not per entry
	for s := range t.Capacity() {
		for spins := 0; ; spins++ {
			m1 := t.slot(s).Load()
			if m1&metaUsed == 0 {
				break
			}
			if m1&metaBusy != 0 {
				backoff(spins)
				continue
			}
			rec = loadRecord(t.rec(s))
			if m2 := t.slot(s).Load(); (m1^m2)&stableBit != 0 {
				continue
			}
			if !fn(&rec.key, &rec.val) {
				return
			}
			break
		}
	}
}

// Expire deletes every entry for which stale returns true (e.g. idle for
// longer than a timeout) and returns how many it deleted. stale runs with
// the slot held, like Upsert's function.
func (t *Table[K, V]) Expire(stale func(k *K, v *V) bool) int {
	n := 0
	for s := range t.Capacity() {
		m := t.slot(s).Load()
		if m&metaUsed == 0 || m&metaBusy != 0 || !t.slot(s).CompareAndSwap(m, m|metaBusy) {
			continue // a slot being written is not idle
		}
		if stale(&t.rec(s).key, &t.rec(s).val) {
			t.slot(s).Store((m + seqInc) &^ (metaUsed | metaRef))
			t.count(s, -1)
			n++
			continue
		}
		t.slot(s).Store(m) // untouched: readers' copies stay valid
	}
	return n
}
