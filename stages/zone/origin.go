package zone

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Zone is one customer's site: the hosts it serves and the origins that
// serve it. Everything but the origins' health is fixed when the Table is
// built; any goroutine may read it.
type Zone struct {
	Name string
	// Index is the zone's position in the profile and in Table.Zones, so
	// that callers can keep per-zone state in a slice.
	Index   int
	Hosts   []string
	Origins []*Origin
	// Settings are in force: defaults filled in.
	Settings Settings

	// healthHost is the Host header of health checks: the zone's first
	// exact name, or "" for the origin's address.
	healthHost string
	rr         atomic.Uint32
}

// Next returns the first healthy origin in list order starting at
// start modulo the number of origins, so that a caller counting start up
// spreads requests round robin and skips origins that are down (their
// share goes to the next healthy one in the list).
//
// When every origin is down it returns the one at start anyway: the
// request may still succeed, and its outcome (MarkSuccess) is how a zone
// whose origins all failed recovers without active checks. It returns nil
// only for a zone without origins, which a valid Config never has.
//
// Next reads only atomics: any goroutine may call it, allocation-free.
// Event loops should each keep their own counter for start rather than
// share one (see Pick).
func (z *Zone) Next(start int) *Origin {
	n := len(z.Origins)
	if n == 0 {
		return nil
	}
	s := start % n
	if s < 0 {
		s += n
	}
	for i, j := 0, s; i < n; i++ {
		if o := z.Origins[j]; o.Healthy() {
			return o
		}
		if j++; j == n {
			j = 0
		}
	}
	return z.Origins[s]
}

// Pick is Next with a rotating start kept in the zone: simple, but every
// call writes one cache line shared by every goroutine serving the zone.
func (z *Zone) Pick() *Origin {
	return z.Next(int(z.rr.Add(1) - 1))
}

// Origin is one origin server of a zone, with its health.
//
// Health is a lock-free flag with two counters of consecutive outcomes.
// MarkFailure and MarkSuccess may be called from any goroutine (event
// loops report connect failures and successes; the Checker reports its
// checks); they allocate nothing and never block. With concurrent
// reporters "consecutive" is approximate: a success reported between two
// failures resets the failure count, as it should.
type Origin struct {
	Addr netip.AddrPort
	Zone *Zone

	name       string // Addr.String(), for logs and metric labels
	fall, rise uint32

	down   atomic.Bool
	fails  atomic.Uint32 // consecutive failures while up
	succs  atomic.Uint32 // consecutive successes while down
	downAt atomic.Int64  // Unix nanoseconds of the last transition to down
	toUp   atomic.Uint64
	toDown atomic.Uint64
	checks [numResults]atomic.Uint64
}

// String is the origin's address, "192.0.2.10:8080".
func (o *Origin) String() string { return o.name }

// Healthy reports whether the origin takes requests. Origins start
// healthy.
func (o *Origin) Healthy() bool { return !o.down.Load() }

// ConsecutiveFailures is the count of failures in a row while healthy.
func (o *Origin) ConsecutiveFailures() int { return int(o.fails.Load()) }

// ConsecutiveSuccesses is the count of successes in a row while down.
func (o *Origin) ConsecutiveSuccesses() int { return int(o.succs.Load()) }

// Transitions counts the origin's changes of state since it was built.
func (o *Origin) Transitions() (up, down uint64) { return o.toUp.Load(), o.toDown.Load() }

// MarkFailure records a failed connect or check. The Health.Fall-th
// failure in a row takes the origin down; MarkFailure then returns true
// (exactly one caller sees true for a transition). The caller may log the
// transition off the event loop; it is counted here.
func (o *Origin) MarkFailure() bool {
	if o.succs.Load() != 0 {
		o.succs.Store(0)
	}
	if o.down.Load() {
		return false
	}
	if o.fails.Add(1) < o.fall || !o.down.CompareAndSwap(false, true) {
		return false
	}
	o.fails.Store(0)
	o.downAt.Store(time.Now().UnixNano())
	o.toDown.Add(1)
	return true
}

// MarkSuccess records a successful connect or check. While the origin is
// down, the Health.Rise-th success in a row brings it back up; MarkSuccess
// then returns true. On a healthy origin with no failures pending it only
// reads, so that reporting every success costs no shared write.
func (o *Origin) MarkSuccess() bool {
	if o.fails.Load() != 0 {
		o.fails.Store(0)
	}
	if !o.down.Load() {
		return false
	}
	if o.succs.Add(1) < o.rise || !o.down.CompareAndSwap(true, false) {
		return false
	}
	o.succs.Store(0)
	o.toUp.Add(1)
	return true
}

// readmit brings an origin that has been down since before cutoff back
// on probation: one more failure takes it down again. It reports whether
// it did.
func (o *Origin) readmit(cutoff time.Time) bool {
	if !o.down.Load() || o.downAt.Load() > cutoff.UnixNano() {
		return false
	}
	o.fails.Store(o.fall - 1)
	o.succs.Store(0)
	if !o.down.CompareAndSwap(true, false) {
		return false
	}
	o.toUp.Add(1)
	return true
}

// copyFrom takes prev's health and counters (CopyHealth).
func (o *Origin) copyFrom(prev *Origin) {
	o.down.Store(prev.down.Load())
	o.fails.Store(prev.fails.Load())
	o.succs.Store(prev.succs.Load())
	o.downAt.Store(prev.downAt.Load())
	o.toUp.Store(prev.toUp.Load())
	o.toDown.Store(prev.toDown.Load())
	for i := range o.checks {
		o.checks[i].Store(prev.checks[i].Load())
	}
}
