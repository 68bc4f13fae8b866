package zone

import (
	"sync"
	"testing"
	"time"
)

// threeOrigins is a zone of three origins with fall 3 and rise 2.
func threeOrigins(t *testing.T) *Zone {
	t.Helper()
	tb, err := NewTable(Config{Zones: []Spec{{
		Name: "z", Hosts: []string{"z.example"},
		Origins: []string{"192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return tb.Zones()[0]
}

func down(o *Origin) {
	for !o.MarkFailure() {
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name  string
		down  []int // origins taken down
		start int
		want  int
	}{
		{name: "all up 0", start: 0, want: 0},
		{name: "all up 1", start: 1, want: 1},
		{name: "all up 5", start: 5, want: 2},
		{name: "negative start", start: -1, want: 2},
		{name: "skip down", down: []int{1}, start: 1, want: 2},
		{name: "skip down and wrap", down: []int{2}, start: 2, want: 0},
		{name: "skip two", down: []int{0, 1}, start: 0, want: 2},
		{name: "all down returns start", down: []int{0, 1, 2}, start: 4, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := threeOrigins(t)
			for _, i := range tc.down {
				down(z.Origins[i])
			}
			if got := z.Next(tc.start); got != z.Origins[tc.want] {
				t.Errorf("Next(%d) = %v, want %v", tc.start, got, z.Origins[tc.want])
			}
		})
	}
	if (&Zone{}).Next(0) != nil {
		t.Error("Next of a zone without origins")
	}
}

func TestPickRoundRobin(t *testing.T) {
	z := threeOrigins(t)
	down(z.Origins[1])
	counts := map[string]int{}
	for range 300 {
		counts[z.Pick().String()]++
	}
	// b's share goes to c, the next healthy one.
	if counts["192.0.2.1:80"] != 100 || counts["192.0.2.3:80"] != 200 || counts["192.0.2.2:80"] != 0 {
		t.Errorf("picks %v", counts)
	}
	if allocs := testing.AllocsPerRun(100, func() { z.Pick(); z.Next(7) }); allocs != 0 {
		t.Errorf("Pick allocates %v times", allocs)
	}
}

func TestPassiveHealth(t *testing.T) {
	o := threeOrigins(t).Origins[0]
	// Fall 3: two failures, a success resets, then three take it down.
	if o.MarkFailure() || o.MarkFailure() || o.ConsecutiveFailures() != 2 {
		t.Fatalf("after two failures: healthy %v, failures %d", o.Healthy(), o.ConsecutiveFailures())
	}
	o.MarkSuccess()
	if o.ConsecutiveFailures() != 0 || !o.Healthy() {
		t.Fatal("a success must reset the failures")
	}
	o.MarkFailure()
	o.MarkFailure()
	if !o.MarkFailure() || o.Healthy() {
		t.Fatal("the third failure in a row must take the origin down")
	}
	if o.MarkFailure() {
		t.Fatal("a failure while down is not a transition")
	}
	// Rise 2: a failure between successes resets them.
	if o.MarkSuccess() || o.ConsecutiveSuccesses() != 1 {
		t.Fatal("one success must not bring it up")
	}
	o.MarkFailure()
	if o.ConsecutiveSuccesses() != 0 {
		t.Fatal("a failure must reset the successes")
	}
	if o.MarkSuccess() || !o.MarkSuccess() || !o.Healthy() {
		t.Fatal("the second success in a row must bring the origin up")
	}
	if up, dn := o.Transitions(); up != 1 || dn != 1 {
		t.Errorf("transitions up %d down %d, want 1 and 1", up, dn)
	}
	if allocs := testing.AllocsPerRun(100, func() { o.MarkSuccess(); o.MarkFailure(); o.MarkSuccess() }); allocs != 0 {
		t.Errorf("MarkFailure and MarkSuccess allocate %v times", allocs)
	}
}

// TestPassiveHealthConcurrent: many loops report at once, each transition
// is seen by exactly one caller and counted once.
func TestPassiveHealthConcurrent(t *testing.T) {
	o := threeOrigins(t).Origins[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	var downs, ups int
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				var changed, toDown bool
				if i%5 < 3 {
					changed, toDown = o.MarkFailure(), true
				} else {
					changed = o.MarkSuccess()
				}
				if changed {
					mu.Lock()
					if toDown {
						downs++
					} else {
						ups++
					}
					mu.Unlock()
				}
				o.Healthy()
			}
		})
	}
	wg.Wait()
	if up, dn := o.Transitions(); up != uint64(ups) || dn != uint64(downs) {
		t.Errorf("counted up %d down %d, callers saw up %d down %d", up, dn, ups, downs)
	}
	if d := downs - ups; d != 0 && d != 1 || (d == 1) == o.Healthy() {
		t.Errorf("downs %d ups %d but healthy %v", downs, ups, o.Healthy())
	}
}

func TestReadmit(t *testing.T) {
	o := threeOrigins(t).Origins[0]
	if o.readmit(time.Now()) {
		t.Fatal("readmitted a healthy origin")
	}
	down(o)
	if o.readmit(time.Now().Add(-time.Minute)) {
		t.Fatal("readmitted an origin down for less than the interval")
	}
	if !o.readmit(time.Now()) || !o.Healthy() {
		t.Fatal("an origin down for the interval must be readmitted")
	}
	if !o.MarkFailure() {
		t.Fatal("one failure must take a readmitted origin down again")
	}
	if up, dn := o.Transitions(); up != 1 || dn != 2 {
		t.Errorf("transitions up %d down %d, want 1 and 2", up, dn)
	}
}

func TestCopyHealth(t *testing.T) {
	c := validConfig()
	old := build(c)
	down(old.ByName("shop").Origins[1])
	old.ByName("shop").Origins[0].checks[resultOK].Add(7)
	old.ByName("blog").Origins[0].MarkFailure()

	c.Zones[0].Origins = []string{"[2001:db8::10]:8080", "192.0.2.99:80"} // reordered, one new
	c.Zones[1].Name = "blog2"                                             // renamed: a new zone
	next := build(c)
	next.CopyHealth(old)
	next.CopyHealth(nil)
	shop := next.ByName("shop")
	if shop.Origins[0].Healthy() || !shop.Origins[1].Healthy() {
		t.Error("the down origin must stay down, the new one start up")
	}
	if up, dn := shop.Origins[0].Transitions(); up != 0 || dn != 1 {
		t.Errorf("transitions not carried over: %d, %d", up, dn)
	}
	if shop.Origins[1].checks[resultOK].Load() != 0 {
		t.Error("a new origin took counters")
	}
	if next.ByName("blog2").Origins[0].ConsecutiveFailures() != 0 {
		t.Error("a renamed zone took the old zone's health")
	}
}
