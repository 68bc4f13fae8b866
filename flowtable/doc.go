// Package flowtable holds Rampart's bounded, concurrent hash tables: flows
// (5-tuple → flow state) and visitors (source address → behaviour), shared
// by every event loop, dumped by tools at any moment, and never larger than
// their capacity.
//
// A Table stores fixed-size, pointer-free keys and values inline in
// memory mapped outside the Go heap (on transparent huge pages where the
// kernel allows, because every operation is bound by cache and TLB
// misses). Keys are hashed with XXH3. A key may live in one of two
// 8-slot buckets, and is put in its home slot (chosen by the hash) of the
// first when that is free. Each slot has a 32-bit meta word: occupied,
// busy and referenced bits, an 8-bit hash tag and a 16-bit version. A
// bucket holds its meta words, its lock word and its records together, so
// that a lookup's meta word and record share a page.
//
// Every operation on a table much larger than the caches costs a cache
// miss or two (and, on a virtual machine whose host backs memory with
// small pages, a page walk). A caller with a queue of keys overlaps them:
// Prefetch starts loading a key's home slot and records the key and its
// hash in an Ahead; PrefetchEntry, a few operations later, finds the
// slot whose tag matches when it is not the home one and starts loading
// it; GetAhead, UpsertAhead and DeleteAhead then find the memory in the
// cache and do not hash again. Prefetching changes no result.
//
// Concurrency: no mutex anywhere. Get is a seqlock read: it copies the
// slot and retries if the version moved. Upsert of a present key and
// Delete take the slot's busy bit with a compare-and-swap for the length
// of one value update; an insert also takes the two candidate buckets'
// bits (in index order) so that two inserts of one key cannot both land.
// A writer that stalls delays only operations on its own slot or buckets.
// Any method may be called from any goroutine; the update function given to
// Upsert runs while the slot is held and must not block or call back into
// the table.
//
// When both buckets of a new key are full, an entry is moved to its other
// bucket if that has room; failing that, a CLOCK hand in the bucket evicts
// an entry not updated since it last passed (new entries start
// unreferenced, so one-packet scans go first; reads do not count, so that
// readers never write); evictions are counted.
// Range and TopN see a weakly consistent snapshot: each entry is read
// consistently, the table as a whole is not frozen.
package flowtable
