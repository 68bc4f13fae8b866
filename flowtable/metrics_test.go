package flowtable_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/flowtable"
)

func TestCollector(t *testing.T) {
	tb, err := flowtable.NewTables(validTableConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	now := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		tb.Flows.Upsert(snapFlowKey(i), func(v *flowtable.Flow, _ bool) { v.LastSeen = now.UnixNano() - int64(i) })
	}
	tb.Flows.Upsert(snapFlowKey(99), func(v *flowtable.Flow, _ bool) { v.LastSeen = now.Add(-time.Hour).UnixNano() })
	tb.ExpireIdle(now)

	// The pedantic registry checks that Collect matches Describe and
	// that every metric is well formed.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(flowtable.NewCollector(tb))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "table" {
				t.Errorf("%s labels %v, want only table", mf.GetName(), m.GetLabel())
				continue
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = v
		}
	}
	want := map[string]float64{
		"rampart_flowtable_entries/flows":            5,
		"rampart_flowtable_entries/visitors":         0,
		"rampart_flowtable_capacity/flows":           4096,
		"rampart_flowtable_capacity/visitors":        1024,
		"rampart_flowtable_evictions_total/flows":    0,
		"rampart_flowtable_evictions_total/visitors": 0,
		"rampart_flowtable_expired_total/flows":      1,
		"rampart_flowtable_expired_total/visitors":   0,
		"rampart_flowtable_memory_bytes/flows":       float64(tb.Flows.MemoryBytes()),
		"rampart_flowtable_memory_bytes/visitors":    float64(tb.Visitors.MemoryBytes()),
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
}
