package origin

import (
	"net/netip"
	"slices"

	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
)

// pool holds one loop's connections to one origin.
type pool struct {
	ls      *loopState
	zone    *zone.Zone
	origin  *zone.Origin
	idle    []*idleConn // most recently used last
	pipes   []*pipe     // pipelined connections with requests in flight
	open    int         // dialling, busy and idle connections
	dialing int         // connects in progress
	waiters []*task     // FIFO of requests waiting for a connection
}

// idleConn is a pooled connection between requests.
type idleConn struct {
	p     *pool
	up    pipeline.Upstream
	timer pipeline.Timer
}

func (p *pool) canDial() bool { return p.open < p.zone.Settings.MaxConnsPerOrigin }

// take returns the most recently used idle connection, or nil.
func (p *pool) take() pipeline.Upstream {
	for n := len(p.idle); n > 0; n = len(p.idle) {
		ic := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		up := ic.up
		p.release(ic)
		return up
	}
	return nil
}

// put parks a connection whose exchange ended cleanly, or hands it to the
// first waiting request.
func (p *pool) put(up pipeline.Upstream) {
	if t := p.nextWaiter(); t != nil {
		t.attach(up)
		return
	}
	if len(p.idle) >= p.zone.Settings.MaxIdlePerOrigin {
		// Keep the warm ones: the oldest idle connection goes.
		old := p.idle[0]
		p.idle = slices.Delete(p.idle, 0, 1)
		p.closeIdle(old)
	}
	ic := p.ls.getIdle()
	ic.p, ic.up = p, up
	up.SetHandler(ic)
	p.ls.loop.Schedule(&ic.timer, p.zone.Settings.IdleTimeout)
	p.idle = append(p.idle, ic)
}

func (p *pool) wait(t *task) bool {
	if len(p.waiters) >= p.ls.s.opts.MaxWaiting {
		return false
	}
	p.waiters = append(p.waiters, t)
	return true
}

func (p *pool) unwait(t *task) { p.waiters = without(p.waiters, t) }

// without removes v's first occurrence from s, keeping the order, and
// clears the slot it frees so that nothing stays referenced.
func without[T comparable](s []T, v T) []T {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// closed accounts for a connection gone and lets a waiter dial.
func (p *pool) closed() {
	p.open--
	p.serveWaiter()
	if p.open == 0 && len(p.waiters) == 0 && len(p.idle) == 0 && len(p.pipes) == 0 {
		// An origin a reload removed would otherwise keep its pool
		// forever; a live one gets a new pool on its next request.
		delete(p.ls.pools, p.origin)
	}
}

func (p *pool) serveWaiter() {
	if !p.canDial() {
		return
	}
	if t := p.nextWaiter(); t != nil {
		t.startDial()
	}
}

// nextWaiter dequeues the oldest request still waiting, with its wait
// timer stopped, or nil.
func (p *pool) nextWaiter() *task {
	for len(p.waiters) > 0 {
		t := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		if t.x != nil {
			p.ls.loop.Cancel(&t.timer)
			return t
		}
	}
	return nil
}

func (p *pool) remove(ic *idleConn) { p.idle = without(p.idle, ic) }

func (p *pool) closeIdle(ic *idleConn) {
	up := ic.up
	p.release(ic)
	up.SetHandler(discard{})
	up.Close()
	p.closed()
}

func (p *pool) release(ic *idleConn) {
	p.ls.loop.Cancel(&ic.timer)
	ic.p, ic.up = nil, nil
	p.ls.idleFree = append(p.ls.idleFree, ic)
}

func (ls *loopState) getIdle() *idleConn {
	if n := len(ls.idleFree); n > 0 {
		ic := ls.idleFree[n-1]
		ls.idleFree = ls.idleFree[:n-1]
		return ic
	}
	ic := &idleConn{}
	ic.timer.Init(ic, timerIdle)
	return ic
}

// Expire implements pipeline.Expirer: an idle connection timed out.
func (ic *idleConn) Expire(*pipeline.Timer) {
	if p := ic.p; p != nil {
		p.remove(ic)
		p.closeIdle(ic)
	}
}

// UpstreamOpened implements pipeline.UpstreamHandler.
func (ic *idleConn) UpstreamOpened(u pipeline.Upstream) {}

// UpstreamFailed implements pipeline.UpstreamHandler.
func (ic *idleConn) UpstreamFailed(netip.AddrPort, error) {}

// UpstreamData implements pipeline.UpstreamHandler: an origin has nothing
// to say on an idle connection, so whatever it says ends it.
func (ic *idleConn) UpstreamData(pipeline.Upstream) {
	if p := ic.p; p != nil {
		p.remove(ic)
		p.closeIdle(ic)
	}
}

// UpstreamClosed implements pipeline.UpstreamHandler.
func (ic *idleConn) UpstreamClosed(pipeline.Upstream, error) {
	if p := ic.p; p != nil {
		p.remove(ic)
		p.release(ic)
		p.closed()
	}
}
