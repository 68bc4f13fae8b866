package pipeline

import (
	"context"
	"runtime"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/rampart-edge/rampart/internal/http1"
	"github.com/rampart-edge/rampart/pipeline/steer"
)

// loop is the state one event loop owns. Only that loop's goroutine touches
// it, so nothing here is locked.
type loop struct {
	e            *Engine
	idx          int
	el           gnet.EventLoop
	poll         pollControl
	wheel        *wheel
	tickRunnable gnet.RunnableFunc
	now          time.Time

	conns      connList       // every open client connection
	free       []*clientConn  // recycled at the next tick, never inside a callback
	dead       []*clientConn  // closed this tick
	paused     []pausedPeer   // peers waiting for another to drain
	lingering  []*clientConn  // closing once their output has drained
	halfClosed []*clientConn  // shut for writing; read until the client closes
	scratch    []byte         // response heads are built here
	headers    []http1.Header // a stage's response headers plus the runner's
}

type pausedPeer struct {
	self  pausable
	other Peer
}

// pausable is a peer the loop can stop and restart reading from.
type pausable interface {
	Peer
	resumeReading()
	isClosed() bool
}

func newLoop(e *Engine, idx int, el gnet.EventLoop) (*loop, error) {
	epfd, err := gnetPollerFD(el)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	l := &loop{
		e:       e,
		idx:     idx,
		el:      el,
		poll:    pollControl{epfd: epfd},
		wheel:   newWheel(4096, e.cfg.Tick, now),
		now:     now,
		scratch: make([]byte, 0, 4<<10),
	}
	l.conns.init()
	l.tickRunnable = func(context.Context) error {
		l.tick()
		return nil
	}
	if e.cfg.Steering != "off" {
		// gnet locked this goroutine to its thread (WithLockOSThread);
		// binding the thread keeps the loop beside the softirq that the
		// steering program hands it connections from.
		cpu := idx % runtime.NumCPU()
		if err := steer.PinThread(cpu); err != nil {
			e.log.Warn("pipeline: cannot pin loop", "loop", idx, "cpu", cpu, "err", err)
		}
	}
	return l, nil
}

// Index implements Loop.
func (l *loop) Index() int { return l.idx }

// Now implements Loop. It is read fresh: one vDSO call is cheaper than a
// stale clock in latency histograms.
func (l *loop) Now() time.Time {
	l.now = time.Now()
	return l.now
}

// Schedule implements Loop.
func (l *loop) Schedule(t *Timer, d time.Duration) { l.wheel.Schedule(t, d) }

// Cancel implements Loop.
func (l *loop) Cancel(t *Timer) { l.wheel.Cancel(t) }

func (l *loop) tick() {
	now := time.Now()
	l.now = now
	// Connections closed before this tick are no longer referenced by gnet
	// or a callback in progress, and the paused and lingering lists drop
	// them below before anything can reuse them (accepts do not run
	// inside a tick).
	for i, cc := range l.dead {
		l.free = append(l.free, cc)
		l.dead[i] = nil
	}
	l.dead = l.dead[:0]
	l.wheel.Advance(now)
	if len(l.paused) > 0 {
		l.resumeDrained()
	}
	if len(l.lingering) > 0 || len(l.halfClosed) > 0 {
		l.closeDrained(now)
	}
	l.e.metrics.setLoopState(l.idx, l.conns.n, l.wheel.Armed())
}

func (l *loop) pause(self pausable, other Peer) {
	for _, p := range l.paused {
		if p.self == self {
			return
		}
	}
	l.paused = append(l.paused, pausedPeer{self: self, other: other})
	l.e.addWaiting(1)
}

// addWaiting counts connections the ticker must look at soon and, on the
// first, wakes it from its slow tick.
func (e *Engine) addWaiting(n int64) {
	if e.waiting.Add(n) == n && n > 0 {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

func (l *loop) resumeDrained() {
	limit := l.e.cfg.MaxBufferedBytes / 2
	kept := l.paused[:0]
	var ready []pausedPeer
	for _, p := range l.paused {
		switch {
		case p.self.isClosed():
		case p.other == nil || p.other.Pending() <= limit || isClosedPeer(p.other):
			ready = append(ready, p)
		default:
			kept = append(kept, p)
		}
	}
	for i := len(kept); i < len(l.paused); i++ {
		l.paused[i] = pausedPeer{}
	}
	l.e.addWaiting(int64(len(kept) - len(l.paused)))
	l.paused = kept
	for _, p := range ready {
		p.self.resumeReading()
	}
}

func isClosedPeer(p Peer) bool {
	if c, ok := p.(pausable); ok {
		return c.isClosed()
	}
	return false
}

// lingerRead bounds how long a half-closed connection is read (and
// discarded) while waiting for the client to close.
const lingerRead = 2 * time.Second

func (l *loop) closeDrained(now time.Time) {
	kept := l.lingering[:0]
	for _, cc := range l.lingering {
		switch {
		case cc.closed:
		case now.After(cc.lingerUntil):
			cc.lingerRead = false
			cc.closeNow()
		case cc.Pending() > 0:
			kept = append(kept, cc)
		case cc.lingerRead:
			// Output is out: half-close so the client sees the end, and
			// wait (at the normal tick) for its close.
			if err := unix.Shutdown(cc.fd, unix.SHUT_WR); err != nil {
				cc.lingerRead = false
				cc.closeNow()
				continue
			}
			cc.shutWrite = true
			cc.lingerUntil = now.Add(min(lingerRead, l.e.cfg.IdleTimeout))
			l.halfClosed = append(l.halfClosed, cc)
		default:
			cc.closeNow()
		}
	}
	for i := len(kept); i < len(l.lingering); i++ {
		l.lingering[i] = nil
	}
	l.e.addWaiting(int64(len(kept) - len(l.lingering)))
	l.lingering = kept
	// Half-closed connections end when the client closes (gnet sees the
	// end of input) or when their time is up; they need no fast tick.
	open := l.halfClosed[:0]
	for _, cc := range l.halfClosed {
		switch {
		case cc.closed:
		case now.After(cc.lingerUntil):
			cc.lingerRead = false
			cc.closeNow()
		default:
			open = append(open, cc)
		}
	}
	for i := len(open); i < len(l.halfClosed); i++ {
		l.halfClosed[i] = nil
	}
	l.halfClosed = open
}

// closeIdle closes connections that wait for a request, for shutdown.
func (l *loop) closeIdle() {
	for cc := l.conns.head.next; cc != &l.conns.head; {
		next := cc.next
		if cc.state == stIdle {
			cc.closeNow()
		}
		cc = next
	}
}

// connList is an intrusive list of a loop's client connections.
type connList struct {
	head clientConn
	n    int
}

func (c *connList) init() { c.head.next, c.head.prev = &c.head, &c.head }

func (c *connList) add(cc *clientConn) {
	cc.prev, cc.next = c.head.prev, &c.head
	c.head.prev.next = cc
	c.head.prev = cc
	c.n++
}

func (c *connList) remove(cc *clientConn) {
	if cc.next == nil {
		return
	}
	cc.prev.next = cc.next
	cc.next.prev = cc.prev
	cc.next, cc.prev = nil, nil
	c.n--
}
