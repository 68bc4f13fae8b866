package flowbench_test

import (
	"strings"
	"testing"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/flowbench"
)

// TestKey checks that the keys are distinct and look like real clients of
// a few services.
func TestKey(t *testing.T) {
	const n = 200_000
	seen := make(map[flowtable.FlowKey]bool, n)
	v4 := 0
	for i := range n {
		k := flowbench.Key(1, i)
		if seen[k] {
			t.Fatalf("key %d repeats an earlier one: %s -> %s", i, k.Source(), k.Destination())
		}
		seen[k] = true
		src, dst := k.Source(), k.Destination()
		if src.Addr().Is4() != dst.Addr().Is4() {
			t.Fatalf("key %d mixes families: %s -> %s", i, src, dst)
		}
		if src.Addr().Is4() {
			v4++
		} else if !strings.HasPrefix(src.Addr().String(), "2") && !strings.HasPrefix(src.Addr().String(), "3") {
			t.Fatalf("key %d: IPv6 source %s outside 2000::/3", i, src.Addr())
		}
		if src.Port() < 32768 || src.Port() > 60999 {
			t.Fatalf("key %d: source port %d not ephemeral", i, src.Port())
		}
	}
	if share := float64(v4) / n; share < 0.58 || share > 0.62 {
		t.Errorf("IPv4 share %.3f, want about 0.6", share)
	}
	if flowbench.Key(1, 5) != flowbench.Key(1, 5) || flowbench.Key(1, 5) == flowbench.Key(2, 5) {
		t.Error("keys are not a function of seed and index")
	}
}

func TestUniverse(t *testing.T) {
	tests := []struct {
		name      string
		live      int
		wantTotal int
	}{
		{name: "quarter-spare", live: 1000, wantTotal: 1250},
		{name: "at-least-64-spare", live: 100, wantTotal: 164},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := flowbench.Universe(7, tc.live)
			if len(keys) != tc.wantTotal {
				t.Fatalf("%d keys, want %d", len(keys), tc.wantTotal)
			}
			for i, k := range keys {
				if k != flowbench.Key(7, i) {
					t.Fatalf("key %d is not Key(7, %d)", i, i)
				}
			}
		})
	}
}
