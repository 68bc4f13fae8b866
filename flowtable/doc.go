// Package flowtable holds Rampart's bounded, concurrent hash tables: flows
// (5-tuple → flow state) and visitors (source address → behaviour), shared
// by every event loop, dumped by tools at any moment, and never larger than
// their capacity.
//
// A Table stores fixed-size, pointer-free keys and values inline in
// memory mapped outside the Go heap (on transparent huge pages where the
// kernel allows, because every operation is bound by cache and TLB
// misses). A key may live in one of two 8-slot buckets. Each slot has a
// 32-bit meta word: occupied, busy and referenced bits, an 8-bit hash tag
// and a 16-bit version.
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
