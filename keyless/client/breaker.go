package client

import (
	"sync/atomic"
	"time"
)

// Breaker states, also the values of the breaker_state gauge.
const (
	breakerClosed int32 = iota
	breakerHalfOpen
	breakerOpen
)

func breakerName(st int32) string {
	switch st {
	case breakerClosed:
		return "closed"
	case breakerHalfOpen:
		return "half-open"
	}
	return "open"
}

// breaker is a server's circuit breaker. Closed: requests flow and
// consecutive failures are counted; at the threshold it opens. Open: no
// request is routed to the server; its maintainer probes it after a
// cooldown (a ping, or a dial when no connection is left), and a good
// probe makes it half-open. Half-open: requests flow; one failure opens
// it again, a few answered requests close it. Every method may be called
// from any goroutine; the common case (closed, no failure) is two atomic
// loads.
type breaker struct {
	threshold int32
	halfOpenN int32
	state     atomic.Int32
	fails     atomic.Int32
	oks       atomic.Int32
	openedAt  atomic.Int64 // unix ns of the last opening
	onChange  func(from, to int32)
}

func (b *breaker) allow() bool { return b.state.Load() != breakerOpen }

func (b *breaker) failure() {
	switch b.state.Load() {
	case breakerClosed:
		if b.fails.Add(1) >= b.threshold {
			b.move(breakerClosed, breakerOpen)
		}
	case breakerHalfOpen:
		b.move(breakerHalfOpen, breakerOpen)
	}
}

func (b *breaker) success() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.state.Load() == breakerHalfOpen && b.oks.Add(1) >= b.halfOpenN {
		b.move(breakerHalfOpen, breakerClosed)
	}
}

// probed records the outcome of a probe of an open breaker.
func (b *breaker) probed(ok bool) {
	if ok {
		b.move(breakerOpen, breakerHalfOpen)
		return
	}
	b.openedAt.Store(time.Now().UnixNano())
}

func (b *breaker) move(from, to int32) {
	if to == breakerOpen {
		b.openedAt.Store(time.Now().UnixNano())
	}
	if !b.state.CompareAndSwap(from, to) {
		return
	}
	b.fails.Store(0)
	b.oks.Store(0)
	if b.onChange != nil {
		b.onChange(from, to)
	}
}
