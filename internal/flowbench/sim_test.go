package flowbench_test

import (
	"slices"
	"testing"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/flowbench"
)

// TestSim applies the streams to a reference map and checks that every
// Get, update and delete finds its key, every insert is new, the size stays
// near the start, and the simulation ends where the map does.
func TestSim(t *testing.T) {
	const keys = 4000
	sim := flowbench.NewSim(flowbench.Universe(3, keys), keys, 3)
	ref := map[flowtable.FlowKey]bool{}
	for _, k := range sim.LiveKeys() {
		ref[k] = true
	}
	counts := map[flowbench.OpKind]int{}
	var buf []flowbench.Op
	for _, g := range []int{1, 2, 4, 3} {
		var streams [][]flowbench.Op
		streams, buf = sim.Streams(g, 40_000, true, buf)
		if len(streams) != g {
			t.Fatalf("%d streams, want %d", len(streams), g)
		}
		total := 0
		for _, s := range streams {
			total += len(s)
			for _, o := range s {
				counts[o.Kind]++
				switch o.Kind {
				case flowbench.Insert:
					if ref[o.Key] {
						t.Fatal("insert of a present key")
					}
					ref[o.Key] = true
				case flowbench.Delete:
					if !ref[o.Key] {
						t.Fatal("delete of an absent key")
					}
					delete(ref, o.Key)
				default:
					if !ref[o.Key] {
						t.Fatalf("op %d on an absent key", o.Kind)
					}
				}
			}
		}
		if total != 40_000 {
			t.Errorf("%d operations, want 40000", total)
		}
		if len(ref) != sim.Live() {
			t.Fatalf("reference holds %d keys, simulation %d", len(ref), sim.Live())
		}
		for _, k := range sim.LiveKeys() {
			if !ref[k] {
				t.Fatal("simulation's live key absent from the reference")
			}
		}
	}
	if d := sim.Live() - keys; d < -keys/10 || d > keys/10 {
		t.Errorf("size drifted by %d from %d", d, keys)
	}
	all := float64(counts[flowbench.Get] + counts[flowbench.Update] + counts[flowbench.Insert] + counts[flowbench.Delete])
	for kind, want := range map[flowbench.OpKind]float64{flowbench.Get: 0.45, flowbench.Update: 0.45, flowbench.Insert: 0.05, flowbench.Delete: 0.05} {
		if got := float64(counts[kind]) / all; got < want-0.01 || got > want+0.01 {
			t.Errorf("op %d share %.3f, want %.2f", kind, got, want)
		}
	}
	streams, _ := sim.Streams(2, 1000, false, nil)
	for _, s := range streams {
		for _, o := range s {
			if o.Kind != flowbench.Get {
				t.Fatal("read-only stream holds a write")
			}
		}
	}
	// Same seeds, same streams; another stream seed, other streams.
	keys9 := flowbench.Universe(9, 100)
	a, b, c := flowbench.NewSim(keys9, 100, 9), flowbench.NewSim(keys9, 100, 9), flowbench.NewSim(keys9, 100, 10)
	sa, _ := a.Streams(2, 500, true, nil)
	sb, _ := b.Streams(2, 500, true, nil)
	sc, _ := c.Streams(2, 500, true, nil)
	for w := range sa {
		if !slices.Equal(sa[w], sb[w]) {
			t.Fatal("two simulations with one seed wrote different streams")
		}
		if slices.Equal(sa[w], sc[w]) {
			t.Fatal("two simulations with different stream seeds wrote the same stream")
		}
	}
}
