package flowbench

import (
	"sync"
	"sync/atomic"

	"github.com/rampart-edge/rampart/flowtable"
)

// Value is the benchmark's value: 64 bytes, free of pointers, as the
// table requires.
type Value struct {
	Hits uint64
	_    [7]uint64
}

// Store is one implementation under test. Run executes a stream from one
// goroutine and counts the operations that missed a key they should have
// found; the sum of the values read keeps reads from being optimised away.
type Store interface {
	Run(ops []Op) (misses int, sum uint64)
	// Len is the number of entries, when the store can tell cheaply.
	Len() (int, bool)
	// Evictions is how many entries the store dropped to make room.
	Evictions() uint64
	Close()
}

// NewTable is a flowtable.Table of the given capacity holding keys, each
// with Hits 1, that runs a stream one operation at a time.
func NewTable(capacity int, keys []flowtable.FlowKey) (Store, error) {
	t, err := flowtable.New[flowtable.FlowKey, Value](capacity)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		t.Upsert(k, bump)
	}
	return tableStore{t}, nil
}

// PrefetchDistance is how many operations ahead NewPrefetchingTable's
// store calls Prefetch, and EntryDistance how many ahead it calls
// PrefetchEntry: far enough for a miss (about 150 ns here) to arrive while
// the operations before it run, near enough that what arrived is still in
// the cache when its turn comes.
const (
	PrefetchDistance = 8
	EntryDistance    = 4
)

// NewPrefetchingTable is NewTable's table driven the way a caller with a
// queue of keys drives it: each operation's key is prefetched
// PrefetchDistance operations ahead (flowtable.Table.Prefetch), its entry
// EntryDistance ahead (PrefetchEntry), and the operation reuses the hash
// computed then.
func NewPrefetchingTable(capacity int, keys []flowtable.FlowKey) (Store, error) {
	st, err := NewTable(capacity, keys)
	if err != nil {
		return nil, err
	}
	return prefetchingTableStore{st.(tableStore).t}, nil
}

// NewSyncMap is a sync.Map holding keys, each with Hits 1. It holds
// *Value so that an update is a Load and an atomic add, without a Store:
// sync.Map's best case.
func NewSyncMap(keys []flowtable.FlowKey) Store {
	s := &syncMapStore{}
	for _, k := range keys {
		s.m.Store(k, &Value{Hits: 1})
	}
	return s
}

// NewRWMutexMap is a Go map with the values inline behind a sync.RWMutex,
// holding keys, each with Hits 1.
func NewRWMutexMap(keys []flowtable.FlowKey) Store {
	s := &rwMutexMapStore{m: make(map[flowtable.FlowKey]Value, len(keys))}
	for _, k := range keys {
		s.m[k] = Value{Hits: 1}
	}
	return s
}

type tableStore struct {
	t *flowtable.Table[flowtable.FlowKey, Value]
}

func bump(v *Value, _ bool) { v.Hits++ }

func (s tableStore) Run(ops []Op) (misses int, sum uint64) {
	t := s.t
	for i := range ops {
		o := &ops[i]
		switch o.Kind {
		case Get:
			v, ok := t.Get(o.Key)
			if !ok {
				misses++
			}
			sum += v.Hits
		case Update, Insert:
			t.Upsert(o.Key, bump)
		case Delete:
			if !t.Delete(o.Key) {
				misses++
			}
		}
	}
	return misses, sum
}

func (s tableStore) Len() (int, bool) { return s.t.Len(), true }

type prefetchingTableStore tableStore

func (s prefetchingTableStore) Run(ops []Op) (misses int, sum uint64) {
	t := s.t
	var ring [PrefetchDistance]flowtable.Ahead[flowtable.FlowKey]
	for i := 0; i < PrefetchDistance && i < len(ops); i++ {
		t.Prefetch(&ring[i], &ops[i].Key)
		if i >= PrefetchDistance-EntryDistance {
			t.PrefetchEntry(&ring[i-(PrefetchDistance-EntryDistance)])
		}
	}
	for i := range ops {
		// The operation works on its ring slot in place, and only then is
		// the slot refilled: an Ahead is too big to copy twice per
		// operation for free.
		if next := i + EntryDistance; next < len(ops) {
			t.PrefetchEntry(&ring[next%PrefetchDistance])
		}
		a := &ring[i%PrefetchDistance]
		switch ops[i].Kind {
		case Get:
			v, ok := t.GetAhead(a)
			if !ok {
				misses++
			}
			sum += v.Hits
		case Update, Insert:
			t.UpsertAhead(a, bump)
		case Delete:
			if !t.DeleteAhead(a) {
				misses++
			}
		}
		if next := i + PrefetchDistance; next < len(ops) {
			t.Prefetch(a, &ops[next].Key)
		}
	}
	return misses, sum
}

func (s prefetchingTableStore) Len() (int, bool)  { return s.t.Len(), true }
func (s prefetchingTableStore) Evictions() uint64 { return s.t.Evictions() }
func (s prefetchingTableStore) Close()            { s.t.Close() }
func (s tableStore) Evictions() uint64            { return s.t.Evictions() }
func (s tableStore) Close()                       { s.t.Close() }

type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) Run(ops []Op) (misses int, sum uint64) {
	m := &s.m
	for i := range ops {
		o := &ops[i]
		switch o.Kind {
		case Get:
			v, ok := m.Load(o.Key)
			if !ok {
				misses++
				continue
			}
			sum += atomic.LoadUint64(&v.(*Value).Hits)
		case Update:
			v, ok := m.Load(o.Key)
			if !ok {
				misses++
				continue
			}
			atomic.AddUint64(&v.(*Value).Hits, 1)
		case Insert:
			m.Store(o.Key, &Value{Hits: 1})
		case Delete:
			m.Delete(o.Key)
		}
	}
	return misses, sum
}

func (s *syncMapStore) Len() (int, bool)  { return 0, false }
func (s *syncMapStore) Evictions() uint64 { return 0 }
func (s *syncMapStore) Close()            { s.m.Clear() }

type rwMutexMapStore struct {
	mu sync.RWMutex
	m  map[flowtable.FlowKey]Value
}

func (s *rwMutexMapStore) Run(ops []Op) (misses int, sum uint64) {
	for i := range ops {
		o := &ops[i]
		switch o.Kind {
		case Get:
			s.mu.RLock()
			v, ok := s.m[o.Key]
			s.mu.RUnlock()
			if !ok {
				misses++
			}
			sum += v.Hits
		case Update:
			s.mu.Lock()
			v, ok := s.m[o.Key]
			if ok {
				v.Hits++
				s.m[o.Key] = v
			}
			s.mu.Unlock()
			if !ok {
				misses++
			}
		case Insert:
			s.mu.Lock()
			s.m[o.Key] = Value{Hits: 1}
			s.mu.Unlock()
		case Delete:
			s.mu.Lock()
			delete(s.m, o.Key)
			s.mu.Unlock()
		}
	}
	return misses, sum
}

func (s *rwMutexMapStore) Len() (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m), true
}

func (s *rwMutexMapStore) Evictions() uint64 { return 0 }

func (s *rwMutexMapStore) Close() {
	s.mu.Lock()
	s.m = nil
	s.mu.Unlock()
}
