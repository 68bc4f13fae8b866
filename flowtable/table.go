package flowtable

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
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
type Table[K comparable, V any] struct {
	meta     []atomic.Uint32 // per slot
	locks    []atomic.Uint32 // per bucket
	recs     []record[K, V]
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
	slots := nb * bucketSlots
	t := &Table[K, V]{nbuckets: uint64(nb), keySize: unsafe.Sizeof(k)}

	metaMem, err := mapMemory(slots * 4)
	if err != nil {
		return nil, err
	}
	t.regions = append(t.regions, metaMem)
	lockMem, err := mapMemory(nb * 4)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.regions = append(t.regions, lockMem)
	recSize := int(unsafe.Sizeof(record[K, V]{}))
	recMem, err := mapMemory(slots * recSize)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.regions = append(t.regions, recMem)

	t.meta = unsafe.Slice((*atomic.Uint32)(unsafe.Pointer(&metaMem[0])), slots)
	t.locks = unsafe.Slice((*atomic.Uint32)(unsafe.Pointer(&lockMem[0])), nb)
	t.recs = unsafe.Slice((*record[K, V])(unsafe.Pointer(&recMem[0])), slots)
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
	t.regions, t.meta, t.locks, t.recs = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Capacity is the number of slots (the requested capacity rounded up to
// whole buckets).
func (t *Table[K, V]) Capacity() int { return len(t.meta) }

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

// MemoryBytes is the memory the table maps: slots, meta words and bucket
// words.
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
}

func (t *Table[K, V]) hash(k *K) hashed {
	h := xxhash.Sum64(unsafe.Slice((*byte)(unsafe.Pointer(k)), t.keySize))
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
	home := int(h.b1)*bucketSlots + h.home
	if m, hit := t.probe(home, k, h.tag, true); hit {
		return home, m, true
	}
	for _, b := range [2]uint64{h.b1, h.b2} {
		base := int(b) * bucketSlots
		for i := range bucketSlots {
			s := base + i
			if s == home {
				continue
			}
			if m, hit := t.probe(s, k, h.tag, false); hit {
				return s, m, true
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
		m1 := t.meta[s].Load()
		var eq bool
		if speculative {
			eq = keyAt(&t.recs[s], k)
			// t.zero is 0, which the compiler cannot know: the read
			// stays, and costs nothing more than it overlaps.
			m1 |= uint32(lastByte(&t.recs[s])) & t.zero
		}
		if m1&metaUsed == 0 || m1&tagMask != tag {
			return 0, false
		}
		if m1&metaBusy != 0 {
			backoff(spins)
			continue
		}
		if !speculative {
			eq = keyAt(&t.recs[s], k)
		}
		if m2 := t.meta[s].Load(); (m1^m2)&stableBit != 0 {
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

// Get returns a copy of k's value.
func (t *Table[K, V]) Get(k K) (V, bool) {
	h := t.hash(&k)
	for {
		s, m, ok := t.find(&k, h)
		if !ok {
			var zero V
			return zero, false
		}
		v := valueAt(&t.recs[s])
		if (t.meta[s].Load()^m)&stableBit != 0 {
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
func (t *Table[K, V]) Upsert(k K, fn func(v *V, existed bool)) {
	h := t.hash(&k)
	for {
		if s, m, ok := t.find(&k, h); ok {
			if !t.meta[s].CompareAndSwap(m, m|metaBusy) {
				continue // changed since validated: look again
			}
			fn(&t.recs[s].val, true)
			t.meta[s].Store((m + seqInc) | metaRef)
			return
		}
		if t.insert(&k, h, fn) {
			return
		}
	}
}

// Delete removes k; it reports whether k was there.
func (t *Table[K, V]) Delete(k K) bool {
	h := t.hash(&k)
	for {
		s, m, ok := t.find(&k, h)
		if !ok {
			return false
		}
		if !t.meta[s].CompareAndSwap(m, m|metaBusy) {
			continue
		}
		t.meta[s].Store((m + seqInc) &^ (metaUsed | metaRef))
		t.count(s, -1)
		return true
	}
}

func (t *Table[K, V]) count(slot int, d int64) {
	t.counts[(slot/bucketSlots)%countStripes].n.Add(d)
}

func (t *Table[K, V]) lockBucket(b uint64) {
	for spins := 0; ; spins++ {
		w := t.locks[b].Load()
		if w&bucketLocked == 0 && t.locks[b].CompareAndSwap(w, w|bucketLocked) {
			return
		}
		backoff(spins)
	}
}

func (t *Table[K, V]) unlockBucket(b uint64) {
	for {
		w := t.locks[b].Load()
		if t.locks[b].CompareAndSwap(w, w&^bucketLocked) {
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
	t.recs[s] = record[K, V]{key: *k}
	fn(&t.recs[s].val, false)
	t.meta[s].Store((m+seqInc)&^(tagMask|metaBusy|metaRef) | metaUsed | h.tag)
	t.count(s, 1)
	return true
}

// occupied counts the slots of bucket b in use or being written.
func (t *Table[K, V]) occupied(b uint64) int {
	n := 0
	for s := int(b) * bucketSlots; s < int(b+1)*bucketSlots; s++ {
		if t.meta[s].Load()&(metaUsed|metaBusy) != 0 {
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
		m := t.meta[s].Load()
		if m&metaUsed == 0 || m&metaBusy != 0 || !t.meta[s].CompareAndSwap(m, m|metaBusy) {
			continue
		}
		key := t.recs[s].key
		h := t.hash(&key)
		dest := h.b2
		if h.b1 != b {
			t.meta[s].Store(m)
			continue
		}
		ours := dest == held[0] || dest == held[1]
		if !ours && !t.tryLockBucket(dest) {
			t.meta[s].Store(m)
			continue
		}
		d, dm := t.claimFree(dest, h.home)
		if d >= 0 {
			t.recs[d] = t.recs[s]
			t.meta[d].Store((dm+seqInc)&^(tagMask|metaBusy|metaRef) | metaUsed | h.tag | m&metaRef)
			t.count(d, 1)
			t.count(s, -1)
		}
		if !ours {
			t.unlockBucket(dest)
		}
		if d < 0 {
			t.meta[s].Store(m)
			continue
		}
		return s, (m | metaBusy) &^ metaUsed
	}
	return -1, 0
}

func (t *Table[K, V]) tryLockBucket(b uint64) bool {
	w := t.locks[b].Load()
	return w&bucketLocked == 0 && t.locks[b].CompareAndSwap(w, w|bucketLocked)
}

// claimFree takes a free slot of bucket b (held by the caller). Deletes
// free slots without the bucket, but only inserters, which hold it, take
// them: the CAS can only fail on a slot that changed from free to free.
func (t *Table[K, V]) claimFree(b uint64, home int) (int, uint32) {
	base := int(b) * bucketSlots
	for i := range bucketSlots {
		s := base + (home+i)&(bucketSlots-1)
		m := t.meta[s].Load()
		if m&(metaUsed|metaBusy) == 0 && t.meta[s].CompareAndSwap(m, m|metaBusy) {
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
		w := t.locks[b].Load()
		hand := int(w>>handShift) & (bucketSlots - 1)
		s := base + hand
		t.locks[b].Store(w&^(uint32(bucketSlots-1)<<handShift) | uint32((hand+1)&(bucketSlots-1))<<handShift)
		m := t.meta[s].Load()
		switch {
		case m&metaBusy != 0:
			backoff(spins)
		case m&metaUsed == 0:
			if t.meta[s].CompareAndSwap(m, m|metaBusy) {
				return s, m | metaBusy
			}
		case m&metaRef != 0:
			t.meta[s].CompareAndSwap(m, m&^metaRef)
		default:
			if t.meta[s].CompareAndSwap(m, m|metaBusy) {
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
	for s := range t.meta {
		for spins := 0; ; spins++ {
			m1 := t.meta[s].Load()
			if m1&metaUsed == 0 {
				break
			}
			if m1&metaBusy != 0 {
				backoff(spins)
				continue
			}
			rec = loadRecord(&t.recs[s])
			if m2 := t.meta[s].Load(); (m1^m2)&stableBit != 0 {
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
	for s := range t.meta {
		m := t.meta[s].Load()
		if m&metaUsed == 0 || m&metaBusy != 0 || !t.meta[s].CompareAndSwap(m, m|metaBusy) {
			continue // a slot being written is not idle
		}
		if stale(&t.recs[s].key, &t.recs[s].val) {
			t.meta[s].Store((m + seqInc) &^ (metaUsed | metaRef))
			t.count(s, -1)
			n++
			continue
		}
		t.meta[s].Store(m) // untouched: readers' copies stay valid
	}
	return n
}
