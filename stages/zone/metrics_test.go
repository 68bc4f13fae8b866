package zone

import (
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	var current atomic.Pointer[Table]
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(current.Load))
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("before a table: %v, %v", mfs, err)
	}

	tb := build(validConfig())
	current.Store(tb)
	shop, blog := tb.ByName("shop"), tb.ByName("blog")
	down(shop.Origins[1])
	blog.Origins[0].checks[resultOK].Add(5)
	blog.Origins[0].checks[resultTimeout].Add(2)

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
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"rampart_zone_zones": 2,
		"rampart_zone_hosts": 7,
		"rampart_zone_origin_up/origin=192.0.2.10:8080/zone=shop":                            1,
		"rampart_zone_origin_up/origin=[2001:db8::10]:8080/zone=shop":                        0,
		"rampart_zone_origin_up/origin=192.0.2.20:80/zone=blog":                              1,
		"rampart_zone_origin_transitions_total/origin=192.0.2.10:8080/to=up/zone=shop":       0,
		"rampart_zone_origin_transitions_total/origin=192.0.2.10:8080/to=down/zone=shop":     0,
		"rampart_zone_origin_transitions_total/origin=[2001:db8::10]:8080/to=up/zone=shop":   0,
		"rampart_zone_origin_transitions_total/origin=[2001:db8::10]:8080/to=down/zone=shop": 1,
		"rampart_zone_origin_transitions_total/origin=192.0.2.20:80/to=up/zone=blog":         0,
		"rampart_zone_origin_transitions_total/origin=192.0.2.20:80/to=down/zone=blog":       0,
		// Only the zone with a health path has checks.
		"rampart_zone_health_checks_total/origin=192.0.2.20:80/result=ok/zone=blog":         5,
		"rampart_zone_health_checks_total/origin=192.0.2.20:80/result=bad_status/zone=blog": 0,
		"rampart_zone_health_checks_total/origin=192.0.2.20:80/result=timeout/zone=blog":    2,
		"rampart_zone_health_checks_total/origin=192.0.2.20:80/result=error/zone=blog":      0,
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
