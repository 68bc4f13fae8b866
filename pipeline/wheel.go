package pipeline

import "time"

// Expirer is told when one of its timers fires. Connections and parked
// exchanges implement it, so arming a timer never allocates.
type Expirer interface {
	Expire(t *Timer)
}

// Timer is an intrusive entry of a loop's timer wheel: it lives inside the
// struct that owns it (a connection, an origin request) and is re-armed
// for every request, so the wheel itself holds no memory of its own.
type Timer struct {
	next, prev *Timer
	when       uint64 // wheel tick at which it fires
	owner      Expirer
	// Kind tells the owner which of its timers fired.
	Kind uint8
}

// Init binds the timer to its owner once.
func (t *Timer) Init(owner Expirer, kind uint8) {
	t.owner, t.Kind = owner, kind
}

// Armed reports whether the timer is scheduled.
func (t *Timer) Armed() bool { return t.next != nil }

// wheel is a hashed timer wheel (Varghese and Lauck, scheme 6) owned by one
// event loop and only touched from it: no locks. Timeouts here are coarse
// (header read, idle, origin connect and response), so a tick of a few
// milliseconds and O(1) arm/cancel matter more than precision.
type wheel struct {
	slots []Timer // sentinel heads of circular lists
	mask  uint64
	tick  time.Duration
	now   uint64 // last tick processed
	start time.Time
	armed int
	due   Timer // sentinel of the timers firing in the current Advance
}

func newWheel(slots int, tick time.Duration, start time.Time) *wheel {
	n := 1
	for n < slots {
		n <<= 1
	}
	w := &wheel{slots: make([]Timer, n), mask: uint64(n - 1), tick: tick, start: start}
	for i := range w.slots {
		s := &w.slots[i]
		s.next, s.prev = s, s
	}
	return w
}

// ticks converts a duration to whole ticks, rounding up so that a timer
// never fires early.
func (w *wheel) ticks(d time.Duration) uint64 {
	if d <= 0 {
		return 1
	}
	return uint64((d + w.tick - 1) / w.tick)
}

// Schedule arms t to fire d from the last processed tick; an armed timer
// is moved.
func (w *wheel) Schedule(t *Timer, d time.Duration) {
	if t.next != nil {
		w.Cancel(t)
	}
	t.when = w.now + w.ticks(d)
	head := &w.slots[t.when&w.mask]
	t.prev, t.next = head.prev, head
	head.prev.next = t
	head.prev = t
	w.armed++
}

// Cancel disarms t; cancelling a disarmed timer does nothing.
func (w *wheel) Cancel(t *Timer) {
	if t.next == nil {
		return
	}
	t.prev.next = t.next
	t.next.prev = t.prev
	t.next, t.prev = nil, nil
	w.armed--
}

// Advance fires every timer due at or before now. A loop that stalled for
// longer than a revolution visits each slot once, not once per tick.
func (w *wheel) Advance(now time.Time) {
	target := uint64(now.Sub(w.start) / w.tick)
	if target <= w.now {
		return
	}
	steps := target - w.now
	if steps > uint64(len(w.slots)) {
		steps = uint64(len(w.slots))
	}
	first := target - steps + 1
	w.now = target
	// Due timers move to a private list before any fires, so an owner may
	// cancel or re-arm any timer, its own or another, from Expire.
	due := &w.due
	due.next, due.prev = due, due
	for tick := first; tick <= target; tick++ {
		head := &w.slots[tick&w.mask]
		for t := head.next; t != head; {
			next := t.next
			if t.when <= target {
				t.prev.next = t.next
				t.next.prev = t.prev
				t.prev, t.next = due.prev, due
				due.prev.next = t
				due.prev = t
			}
			t = next
		}
	}
	for due.next != due {
		t := due.next
		w.Cancel(t)
		t.owner.Expire(t)
	}
}

// Armed is the number of scheduled timers, for metrics and tests.
func (w *wheel) Armed() int { return w.armed }
