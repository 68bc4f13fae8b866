package origin

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
)

var (
	errOriginClosing = errors.New("origin closes the connection after an earlier response")
	errEdgeClosing   = errors.New("edge closed the connection for an earlier request")
	errUnsolicited   = errors.New("origin sent data no request asked for")
)

// pipe is an origin connection carrying several requests at once (a zone
// with pipeline_depth above 1). Only GET and HEAD requests without a body
// ride on one: they are idempotent, so those a broken connection owed an
// answer go to another connection, and none has a body to send again.
//
// queue holds the tasks the connection owes a response, oldest first:
// queue[0] is the one being answered, the requests of the first written
// tasks were sent, and the heads of the others wait in out. A request
// that finds nothing outstanding is written at once; the others are
// written together after the origin's next answer was read, so that the
// requests of many clients share one write and one segment.
type pipe struct {
	p       *pool
	up      pipeline.Upstream // nil once released
	queue   []*task
	written int
	out     []byte
}

func (ls *loopState) newPipe(p *pool, up pipeline.Upstream) *pipe {
	var pp *pipe
	if n := len(ls.pipeFree); n > 0 {
		pp = ls.pipeFree[n-1]
		ls.pipeFree = ls.pipeFree[:n-1]
	} else {
		pp = &pipe{}
	}
	pp.p, pp.up = p, up
	up.SetHandler(pp)
	p.pipes = append(p.pipes, pp)
	return pp
}

// joinable returns a pipe with room for one more request, or nil. The
// first with room takes it: fewer, fuller connections batch better.
func (p *pool) joinable() *pipe {
	depth := p.zone.Settings.PipelineDepth
	for _, pp := range p.pipes {
		if len(pp.queue) < depth {
			return pp
		}
	}
	return nil
}

// awaitDial queues t behind the connects in progress when the pipes they
// will open have room for it: a burst of requests then opens a connection
// per pipeline_depth requests, not one each. False means t should dial.
func (p *pool) awaitDial(t *task) bool {
	depth := p.zone.Settings.PipelineDepth
	if p.dialing == 0 || len(p.waiters) >= p.dialing*(depth-1) {
		return false
	}
	return p.wait(t)
}

// fill takes requests that wait for a connection, while there is room.
func (pp *pipe) fill() {
	for pp.up != nil && len(pp.queue) < pp.p.zone.Settings.PipelineDepth && pp.serveWaiter() {
	}
}

// add queues t's request on the connection.
func (pp *pipe) add(t *task) {
	t.up, t.pipe, t.dial = pp.up, pp, nil
	t.phase = phaseAwaitHead
	t.timer.Kind = timerResponse
	t.ls.loop.Schedule(&t.timer, t.zone.Settings.ResponseTimeout)
	pp.queue = append(pp.queue, t)
	if pp.written > 0 || len(pp.out) > 0 {
		// Behind requests not yet answered, or not yet written: the
		// origin answers in the order it reads.
		t.ls.s.metrics.pipelined.Inc()
		pp.out = append(pp.out, t.head...)
		return
	}
	pp.written = len(pp.queue)
	// A failed write closed the connection inside Write, and
	// UpstreamClosed has already sent the queue elsewhere.
	_ = pp.up.Write(t.head)
}

// flush writes the requests waiting for the origin's last answer.
func (pp *pipe) flush() {
	if len(pp.out) == 0 || pp.up == nil {
		return
	}
	pp.written = len(pp.queue)
	out := pp.out
	pp.out = pp.out[:0]
	_ = pp.up.Write(out) // as in add
}

// UpstreamData implements pipeline.UpstreamHandler: the responses go to
// their tasks in order, then what waited is written.
func (pp *pipe) UpstreamData(u pipeline.Upstream) {
	for pp.up == u && pp.written > 0 && len(u.Input()) > 0 {
		t := pp.queue[0]
		t.UpstreamData(u)
		if pp.up == u && len(pp.queue) > 0 && pp.queue[0] == t {
			break // its response is not all here yet, or the client stalls
		}
	}
	if pp.up != u {
		return // released inside: broken, or back in the pool
	}
	if pp.written == 0 && len(u.Input()) > 0 {
		// An answer to nothing: the connection is out of step.
		pp.p.ls.s.metrics.badResponse.Inc()
		pp.breakAll(nil, false, errUnsolicited)
		return
	}
	pp.flush()
}

// finished takes t, whose response ended, off the queue.
func (pp *pipe) finished(t *task, reusable bool) {
	if len(pp.queue) == 0 || pp.queue[0] != t {
		return
	}
	pp.queue = slices.Delete(pp.queue, 0, 1)
	pp.written--
	switch {
	case !reusable:
		// The origin closes after this response ("Connection: close",
		// or a body that ends with the connection): the requests behind
		// it were never going to be answered here.
		pp.breakAll(nil, false, errOriginClosing)
	case len(pp.queue) == 0 && len(pp.up.Input()) > 0:
		pp.p.ls.s.metrics.badResponse.Inc()
		pp.breakAll(nil, false, errUnsolicited)
	case len(pp.queue) == 0:
		up, p := pp.up, pp.p
		pp.release()
		p.put(up)
	default:
		if pp.written == 0 {
			pp.flush()
		}
		pp.serveWaiter()
	}
}

// serveWaiter lets the oldest request waiting for a connection ride on
// the pipe when it can; it reports whether one did.
func (pp *pipe) serveWaiter() bool {
	p := pp.p
	if len(p.waiters) == 0 || !p.waiters[0].pipelinable() {
		return false
	}
	t := p.nextWaiter()
	if t == nil {
		return false
	}
	pp.add(t)
	return true
}

// UpstreamClosed implements pipeline.UpstreamHandler.
func (pp *pipe) UpstreamClosed(u pipeline.Upstream, err error) {
	if pp.up != u {
		return
	}
	if len(pp.queue) > 0 {
		if head := pp.queue[0]; head.phase == phaseBody && head.respKind == bodyUntilClose {
			// The close ends this body; the others were never answered.
			pp.breakAll(head, true, err)
			head.finishAtClose()
			return
		}
	}
	pp.breakAll(nil, true, err)
}

// breakAll releases the connection (closing it unless the origin did) and
// sends each queued task but except on: one the connection broke in the
// middle of its response fails; the others start again on another
// connection, without it counting as an attempt when the connection ended
// by the origin's word ("Connection: close") or the edge's (another
// request's failure) rather than by breaking.
func (pp *pipe) breakAll(except *task, closedByOrigin bool, err error) {
	up, p, ls := pp.up, pp.p, pp.p.ls
	// A local copy: sending a task elsewhere can break another pipe
	// (a write to a connection the origin closed) before this loop ends.
	var buf [zone.MaxPipelineDepth]*task
	tasks := append(buf[:0], pp.queue...)
	for _, t := range tasks {
		t.up, t.pipe = nil, nil
	}
	pp.release()
	if !closedByOrigin {
		up.SetHandler(discard{})
		up.Close()
	}
	p.closed()
	blameless := err == errOriginClosing || err == errEdgeClosing
	for _, t := range tasks {
		if t == except || t.x == nil {
			continue
		}
		if blameless && !t.received {
			ls.s.metrics.requeued.Inc()
			t.attempts--
			t.tried = 0
			t.connect()
			continue
		}
		t.upstreamBroke(err)
	}
}

// release detaches the pipe from its connection and pool and frees it.
func (pp *pipe) release() {
	p := pp.p
	p.pipes = without(p.pipes, pp)
	clear(pp.queue)
	pp.queue, pp.out, pp.written = pp.queue[:0], pp.out[:0], 0
	pp.up, pp.p = nil, nil
	p.ls.pipeFree = append(p.ls.pipeFree, pp)
}

// UpstreamOpened implements pipeline.UpstreamHandler; pipes are made from
// open connections.
func (pp *pipe) UpstreamOpened(u pipeline.Upstream) {}

// UpstreamFailed implements pipeline.UpstreamHandler.
func (pp *pipe) UpstreamFailed(netip.AddrPort, error) {}
