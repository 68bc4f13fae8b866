package flowbench_test

import (
	"sync"
	"testing"

	"github.com/rampart-edge/rampart/internal/flowbench"
)

// TestStores runs the same streams on the four stores, the workers of a
// set concurrently, and checks that no operation misses, that the stores
// read the same values and that they end with the simulation's size.
func TestStores(t *testing.T) {
	const keys = 2000
	sim := flowbench.NewSim(flowbench.Universe(5, keys), keys, 5)
	table, err := flowbench.NewTable(4*keys, sim.LiveKeys())
	if err != nil {
		t.Fatal(err)
	}
	prefetching, err := flowbench.NewPrefetchingTable(4*keys, sim.LiveKeys())
	if err != nil {
		t.Fatal(err)
	}
	stores := []struct {
		name  string
		store flowbench.Store
	}{
		{name: "table", store: table},
		{name: "prefetching table", store: prefetching},
		{name: "sync-map", store: flowbench.NewSyncMap(sim.LiveKeys())},
		{name: "rwmutex-map", store: flowbench.NewRWMutexMap(sim.LiveKeys())},
	}
	defer func() {
		for _, st := range stores {
			st.store.Close()
		}
	}()
	var buf []flowbench.Op
	for i, g := range []int{1, 2, 4, 3} {
		var streams [][]flowbench.Op
		streams, buf = sim.Streams(g, 20_000, i != 2, buf)
		var sums []uint64
		for _, st := range stores {
			misses := make([]int, g)
			sum := make([]uint64, g)
			var wg sync.WaitGroup
			for w := range g {
				wg.Go(func() { misses[w], sum[w] = st.store.Run(streams[w]) })
			}
			wg.Wait()
			var total uint64
			for w := range g {
				if misses[w] != 0 {
					t.Fatalf("%s, %d goroutines: worker %d missed %d keys", st.name, g, w, misses[w])
				}
				total += sum[w]
			}
			sums = append(sums, total)
			if ev := st.store.Evictions(); ev != 0 {
				t.Fatalf("%s evicted %d entries at a quarter of its capacity", st.name, ev)
			}
			if n, ok := st.store.Len(); ok && n != sim.Live() {
				t.Fatalf("%s, %d goroutines: %d entries, want %d", st.name, g, n, sim.Live())
			}
		}
		for j := range sums {
			if sums[j] != sums[0] {
				t.Fatalf("%d goroutines: the stores read different values: %v", g, sums)
			}
		}
	}
}
