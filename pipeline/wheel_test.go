package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

type firing struct {
	fired []*Timer
	on    func(t *Timer)
}

func (f *firing) Expire(t *Timer) {
	f.fired = append(f.fired, t)
	if f.on != nil {
		f.on(t)
	}
}

func TestWheelFiresNeverEarlyAndAtMostOneTickLate(t *testing.T) {
	start := time.Unix(1000, 0)
	w := newWheel(64, 10*time.Millisecond, start)
	f := &firing{}
	rng := rand.New(rand.NewPCG(1, 2))
	timers := make([]Timer, 500)
	due := make(map[*Timer]time.Duration)
	for i := range timers {
		timers[i].Init(f, 0)
		d := time.Duration(rng.IntN(3000)) * time.Millisecond // up to ~5 revolutions
		w.Schedule(&timers[i], d)
		due[&timers[i]] = d
	}
	if w.Armed() != len(timers) {
		t.Fatalf("armed %d, want %d", w.Armed(), len(timers))
	}
	for now := time.Duration(0); now <= 3100*time.Millisecond; now += 10 * time.Millisecond {
		f.fired = f.fired[:0]
		w.Advance(start.Add(now))
		for _, tm := range f.fired {
			d := due[tm]
			if now < d {
				t.Fatalf("timer due at %v fired early at %v", d, now)
			}
			if now > d+10*time.Millisecond {
				t.Fatalf("timer due at %v fired late at %v", d, now)
			}
			delete(due, tm)
		}
	}
	if len(due) != 0 || w.Armed() != 0 {
		t.Fatalf("%d timers never fired, %d armed", len(due), w.Armed())
	}
}

func TestWheelCancelAndRearmFromExpire(t *testing.T) {
	start := time.Unix(0, 0)
	w := newWheel(8, time.Millisecond, start)
	var a, b, c Timer
	f := &firing{}
	f.on = func(tm *Timer) {
		if tm == &a {
			w.Cancel(&b)                       // due in the same pass
			w.Schedule(&a, 5*time.Millisecond) // re-armed from its own expiry
		}
	}
	a.Init(f, 1)
	b.Init(f, 2)
	c.Init(f, 3)
	w.Schedule(&a, time.Millisecond)
	w.Schedule(&b, time.Millisecond)
	w.Schedule(&c, 2*time.Millisecond)
	w.Cancel(&c)
	w.Cancel(&c) // twice is harmless
	w.Advance(start.Add(3 * time.Millisecond))
	if len(f.fired) != 1 || f.fired[0] != &a {
		t.Fatalf("fired %v, want only a", f.fired)
	}
	if !a.Armed() || b.Armed() || c.Armed() || w.Armed() != 1 {
		t.Fatalf("armed a=%v b=%v c=%v total=%d", a.Armed(), b.Armed(), c.Armed(), w.Armed())
	}
	// A stall longer than a revolution still fires everything once.
	f.on = nil
	w.Advance(start.Add(time.Second))
	if len(f.fired) != 2 || w.Armed() != 0 {
		t.Fatalf("after stall fired %d, armed %d", len(f.fired), w.Armed())
	}
}

func TestWheelArmAllocatesNothing(t *testing.T) {
	w := newWheel(1024, time.Millisecond, time.Unix(0, 0))
	var tm Timer
	tm.Init(&firing{}, 0)
	now := time.Unix(0, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		w.Schedule(&tm, 30*time.Millisecond)
		now = now.Add(time.Millisecond)
		w.Advance(now)
		w.Cancel(&tm)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per arm/advance/cancel", allocs)
	}
}
