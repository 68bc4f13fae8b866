package pipeline

import (
	"errors"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/http1"
)

type connState uint8

const (
	stIdle    connState = iota // waiting for the first byte of a request
	stHead                     // a request head is arriving
	stParked                   // a stage owns the exchange
	stClosing                  // the last response is out; closing
)

const (
	timerHeader uint8 = iota + 1
	timerIdle
)

// clientConn is one client connection and its current exchange.
type clientConn struct {
	next, prev  *clientConn
	loop        *loop
	c           gnet.Conn
	fd          int
	state       connState
	closed      bool
	inTraffic   bool // inside this connection's own OnTraffic
	wantClose   bool // close when control returns to gnet
	paused      bool
	inputPaused bool // paused for its own input, not for a peer
	lingerRead  bool // close by half-closing and reading until the client closes
	shutWrite   bool // the half-close is done
	lingering   bool
	lingerUntil time.Time
	listener    int
	remote      netip.AddrPort
	local       netip.AddrPort
	flowKey     flowtable.FlowKey
	visitorKey  flowtable.VisitorKey
	acctReqs    uint32 // counted since the last flush to the tables
	acctIn      uint64
	acctOut     uint64
	acctAt      time.Time // last flush
	inFlight    bool
	timer       Timer
	req         *http1.Request
	x           Exchange
}

func (l *loop) getConn() *clientConn {
	if n := len(l.free); n > 0 {
		cc := l.free[n-1]
		l.free = l.free[:n-1]
		return cc
	}
	cc := &clientConn{req: http1.NewRequest(l.e.cfg.Limits())}
	cc.timer.Init(cc, 0)
	return cc
}

// accept admits a new client connection or refuses it.
func (l *loop) accept(c gnet.Conn) gnet.Action {
	e := l.e
	m := e.metrics
	if e.draining.Load() {
		m.rejected(rejectDraining)
		return gnet.Close
	}
	local := addrPort(c.LocalAddr())
	li, ok := e.listenerIndex[local]
	if !ok {
		li = 0
	}
	if e.listenerConns[li].Add(1) > int64(e.cfg.MaxConnsPerListener) {
		e.listenerConns[li].Add(-1)
		m.rejected(rejectListenerLimit)
		return gnet.Close
	}
	remote := addrPort(c.RemoteAddr())
	now := l.Now()
	vk := flowtable.NewVisitorKey(remote.Addr())
	if e.visitors != nil {
		over := false
		limit := uint32(e.cfg.MaxConnsPerSource)
		e.visitors.Upsert(vk, func(v *flowtable.Visitor, existed bool) {
			if !existed {
				v.FirstSeen = now.UnixNano()
			}
			v.LastSeen = now.UnixNano()
			if v.Connections >= limit {
				over = true
				return
			}
			v.Connections++
		})
		if over {
			e.listenerConns[li].Add(-1)
			m.rejected(rejectSourceLimit)
			return gnet.Close
		}
	}
	cc := l.getConn()
	*cc = clientConn{
		loop: l, c: c, fd: c.Fd(), listener: li, remote: remote, local: local,
		visitorKey: vk, req: cc.req, timer: cc.timer, acctAt: now,
	}
	cc.flowKey = flowtable.NewFlowKey(remote, local, 6)
	if e.flows != nil {
		loopIdx := uint16(l.idx)
		e.flows.Upsert(cc.flowKey, func(f *flowtable.Flow, _ bool) {
			*f = flowtable.Flow{Created: now.UnixNano(), LastSeen: now.UnixNano(), Loop: loopIdx}
		})
	}
	c.SetContext(cc)
	l.conns.add(cc)
	e.active.Add(1)
	m.accepted()
	// The first request gets the header timeout from the connect, so a
	// client that connects and says nothing is gone as fast as a slow one.
	l.wheel.Schedule(&cc.timer, e.cfg.HeaderTimeout)
	cc.timer.Kind = timerHeader
	return gnet.None
}

// onTraffic runs inside gnet's OnTraffic for this connection.
func (cc *clientConn) onTraffic() gnet.Action {
	cc.inTraffic = true
	defer func() { cc.inTraffic = false }()
	if cc.paused {
		// gnet turned reading back on when it flushed; keep the bytes and
		// stop again.
		cc.repause()
		return cc.action()
	}
	switch cc.state {
	case stParked:
		if cc.x.parked != nil {
			cc.x.parked.ClientData(&cc.x)
		}
		if !cc.closed && !cc.paused && cc.state == stParked && len(cc.Input()) > cc.loop.e.cfg.MaxBufferedBytes {
			// Input beyond the limit (a body the stage cannot take yet,
			// or pipelined requests) waits instead of piling up; reading
			// resumes when the stage consumes it or the exchange ends.
			cc.pauseSelf(nil)
			cc.inputPaused = true
		}
	case stClosing:
		cc.c.Discard(-1)
	default:
		cc.serve()
	}
	return cc.action()
}

func (cc *clientConn) action() gnet.Action {
	if cc.wantClose {
		return gnet.Close
	}
	return gnet.None
}

// serve parses and runs requests until one parks, input runs out, or the
// connection is to close.
func (cc *clientConn) serve() {
	l := cc.loop
	e := l.e
	for !cc.closed && !cc.wantClose && (cc.state == stIdle || cc.state == stHead) {
		in := cc.Input()
		if len(in) == 0 {
			return
		}
		if cc.state == stIdle {
			cc.state = stHead
			cc.timer.Kind = timerHeader
			l.wheel.Schedule(&cc.timer, e.cfg.HeaderTimeout)
		}
		n, err := e.parser.Parse(in, cc.req)
		if err == http1.ErrIncomplete {
			return
		}
		if err != nil {
			var he *http1.Error
			if !errors.As(err, &he) {
				he = &http1.Error{Status: 400, Reason: "bad request"}
			}
			e.metrics.malformed(he)
			cc.countError()
			l.scratch = http1.AppendErrorResponse(l.scratch[:0], he)
			cc.writeAndClose(l.scratch)
			return
		}
		l.wheel.Cancel(&cc.timer)
		cc.run(n)
	}
}

// run passes a parsed request through the stages.
func (cc *clientConn) run(headLen int) {
	l := cc.loop
	e := l.e
	now := l.Now()
	x := &cc.x
	*x = Exchange{Request: cc.req, HeadLength: headLen, Remote: cc.remote, Local: cc.local, Start: now, conn: cc}
	cc.inFlight = true
	e.inFlight.Add(1)
	cc.account(now, uint64(headLen))
	if cc.req.ContentLength > e.cfg.MaxBodyBytes {
		x.Status, x.Body, x.Close = 413, bodyTooLarge, true
		cc.respond()
		return
	}
	for _, s := range e.stages {
		action := s.Serve(x)
		if cc.closed || cc.state == stClosing || !cc.inFlight {
			// The exchange ended inside Serve: a stage failed it
			// (Exchange.Fail clears parked), or a write made gnet close the
			// connection, which a parking stage must still hear of.
			if action == Park && cc.closed && x.parked != nil {
				p := x.parked
				x.parked = nil
				p.ClientClosed(x)
			}
			return
		}
		switch action {
		case Continue:
			continue
		case Respond:
			cc.respond()
			return
		case Park:
			cc.Consume(headLen)
			cc.state = stParked
			if x.parked != nil && len(cc.Input()) > 0 {
				x.parked.ClientData(x)
			}
			return
		}
	}
	x.Status, x.Body = 503, noStage
	cc.respond()
}

var (
	bodyTooLarge = []byte("request body too large\n")
	noStage      = []byte("no stage answered this request\n")
)

// respond writes a stage's response and ends the exchange.
func (cc *clientConn) respond() {
	l := cc.loop
	x := &cc.x
	req := cc.req
	// Everything read from the request happens before its head is
	// discarded: the bytes may go back to gnet's shared pools.
	head := isHead(req.Method)
	// An unread request body would be taken for the next request.
	if req.Chunked || req.ContentLength > 0 {
		x.Close = true
		cc.lingerRead = true
	}
	keep := req.KeepAlive && !x.Close && !l.e.draining.Load()
	cc.Consume(x.HeadLength)
	buf := l.scratch[:0]
	hs := append(l.headers[:0], x.Header...)
	if !keep {
		hs = append(hs, http1.Header{Name: connectionName, Value: closeValue})
	} else if req.Minor == 0 {
		// An HTTP/1.0 client keeps the connection only when told so.
		hs = append(hs, http1.Header{Name: connectionName, Value: keepAliveValue})
	}
	l.headers = hs
	body := x.Body
	if head {
		buf = http1.AppendResponseHead(buf, x.Status, int64(len(body)), hs...)
		body = nil
	} else {
		buf = http1.AppendResponseHead(buf, x.Status, int64(len(body)), hs...)
	}
	buf = append(buf, body...)
	l.scratch = buf
	if x.Status >= 400 {
		cc.countError()
	}
	if err := cc.Write(buf); err != nil {
		return
	}
	cc.finish(keep)
}

var (
	connectionName = []byte("Connection")
	closeValue     = []byte("close")
	keepAliveValue = []byte("keep-alive")
)

func isHead(m []byte) bool { return len(m) == 4 && string(m) == "HEAD" }

// finish ends the current exchange.
func (cc *clientConn) finish(keepAlive bool) {
	l := cc.loop
	e := l.e
	if cc.inFlight {
		cc.inFlight = false
		e.inFlight.Add(-1)
		e.metrics.served(cc.x.Start, l.Now())
	}
	cc.x = Exchange{conn: cc}
	if cc.closed {
		return
	}
	if !keepAlive || e.draining.Load() {
		cc.state = stClosing
		cc.closeNow()
		return
	}
	cc.state = stIdle
	cc.timer.Kind = timerIdle
	l.wheel.Schedule(&cc.timer, e.cfg.IdleTimeout)
	if cc.paused {
		cc.resumeReading()
		return
	}
	if len(cc.Input()) > 0 {
		cc.serve()
		if cc.wantClose && !cc.inTraffic {
			cc.closeNow()
		}
	}
}

// abort closes the connection of a parked exchange that cannot complete.
func (cc *clientConn) abort() {
	// The stage is done with the exchange: onClose must not hand it back.
	cc.x.parked = nil
	if cc.inFlight {
		cc.inFlight = false
		cc.loop.e.inFlight.Add(-1)
	}
	if !cc.closed {
		cc.state = stClosing
	}
	cc.closeNow()
}

// fail answers a parked exchange with an error made here.
func (cc *clientConn) fail(status int, reason string) {
	if cc.closed {
		cc.abort()
		return
	}
	cc.x.parked = nil
	l := cc.loop
	l.scratch = http1.AppendErrorResponse(l.scratch[:0], &http1.Error{Status: status, Reason: reason})
	cc.countError()
	if cc.inFlight {
		cc.inFlight = false
		l.e.inFlight.Add(-1)
		l.e.metrics.served(cc.x.Start, l.Now())
	}
	cc.writeAndClose(l.scratch)
}

func (cc *clientConn) writeAndClose(p []byte) {
	cc.state = stClosing
	// The client may still be sending what was refused.
	cc.lingerRead = true
	if err := cc.Write(p); err != nil {
		return
	}
	cc.closeNow()
}

// closeNow closes the connection: through gnet's return value inside its
// own OnTraffic (closing there directly would free it under gnet's feet),
// directly elsewhere on the loop.
func (cc *clientConn) closeNow() {
	if cc.closed {
		return
	}
	if !cc.lingering && (cc.c.OutboundBuffered() > 0 || cc.lingerRead) {
		// gnet's close gives up on output the socket cannot take at once,
		// so a response still draining to a slow client would lose its
		// tail; and closing with unread input makes the kernel send a
		// reset that can destroy a response the client has not read yet
		// (a 413 or 400 sent while the client still uploads). So: drain,
		// then half-close and read (discarding) until the client closes,
		// both bounded in time.
		l := cc.loop
		cc.lingering = true
		cc.state = stClosing
		cc.lingerUntil = l.now.Add(l.e.cfg.IdleTimeout)
		if !cc.lingerRead {
			cc.pauseSelf(nil)
		}
		l.lingering = append(l.lingering, cc)
		l.e.addWaiting(1)
		return
	}
	if cc.inTraffic {
		cc.wantClose = true
		return
	}
	_ = cc.loop.el.Close(cc.c)
}

// Expire implements Expirer.
func (cc *clientConn) Expire(t *Timer) {
	switch {
	case cc.closed:
	case cc.state == stHead:
		cc.loop.e.metrics.timeout(timeoutHeader)
		cc.countError()
		cc.writeAndClose(requestTimeout)
	case cc.state == stIdle:
		cc.loop.e.metrics.timeout(timeoutIdle)
		cc.closeNow()
	}
}

var requestTimeout = []byte("HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n")

func (cc *clientConn) onClose(error) {
	if cc.closed {
		return
	}
	l := cc.loop
	e := l.e
	cc.closed = true
	l.wheel.Cancel(&cc.timer)
	l.conns.remove(cc)
	if cc.state == stParked && cc.x.parked != nil {
		cc.x.parked.ClientClosed(&cc.x)
	}
	if cc.inFlight {
		cc.inFlight = false
		e.inFlight.Add(-1)
	}
	e.active.Add(-1)
	e.listenerConns[cc.listener].Add(-1)
	if cc.acctReqs > 0 && e.visitors != nil {
		cc.flushAccounting(l.Now())
	}
	if e.flows != nil {
		e.flows.Delete(cc.flowKey)
	}
	if e.visitors != nil {
		e.visitors.Upsert(cc.visitorKey, func(v *flowtable.Visitor, existed bool) {
			if existed && v.Connections > 0 {
				v.Connections--
			}
		})
	}
	e.metrics.closed()
	cc.x = Exchange{}
	cc.c = nil
	l.dead = append(l.dead, cc)
}

// accountEvery bounds how stale the tables may be for a busy connection.
// Each flush costs a miss in each table (hundreds of ns): per request it
// was 5 % of a proxied request's CPU; per connection and interval it is
// nothing, and a dump still sees a keep-alive connection's last 100 ms.
const accountEvery = 100 * time.Millisecond

// account counts a request toward the flow and the visitor, writing the
// tables at most every accountEvery per connection (and on close).
func (cc *clientConn) account(now time.Time, n uint64) {
	cc.acctReqs++
	cc.acctIn += n
	if now.Sub(cc.acctAt) >= accountEvery {
		cc.flushAccounting(now)
	}
}

// flushAccounting writes the counts gathered since the last flush.
func (cc *clientConn) flushAccounting(now time.Time) {
	e := cc.loop.e
	cc.acctAt = now
	reqs, in, out := cc.acctReqs, cc.acctIn, cc.acctOut
	if reqs == 0 && in == 0 && out == 0 {
		return
	}
	cc.acctReqs, cc.acctIn, cc.acctOut = 0, 0, 0
	ns := now.UnixNano()
	if e.flows != nil {
		loopIdx := uint16(cc.loop.idx)
		e.flows.Upsert(cc.flowKey, func(f *flowtable.Flow, existed bool) {
			if !existed {
				f.Created = ns
				f.Loop = loopIdx
			}
			f.LastSeen = ns
			f.RequestsIn += reqs
			f.BytesIn += in
			f.BytesOut += out
		})
	}
	if e.visitors != nil && reqs > 0 {
		sec := now.Unix()
		e.visitors.Upsert(cc.visitorKey, func(v *flowtable.Visitor, existed bool) {
			if !existed {
				v.FirstSeen = ns
			}
			v.LastSeen = ns
			v.Count(sec, reqs)
		})
	}
}

func (cc *clientConn) countError() {
	e := cc.loop.e
	if e.visitors != nil {
		e.visitors.Upsert(cc.visitorKey, func(v *flowtable.Visitor, _ bool) { v.Errors++ })
	}
}

// AccountResponse charges response bytes to the flow; the origin stage
// calls it as it relays.
func (x *Exchange) AccountResponse(n int) {
	x.conn.acctOut += uint64(n)
}

// Peer implementation for the client side.

func (cc *clientConn) Input() []byte {
	if cc.closed {
		return nil
	}
	b, _ := cc.c.Peek(-1)
	return b
}

func (cc *clientConn) Consume(n int) {
	if cc.closed {
		return
	}
	cc.c.Discard(n)
	if cc.inputPaused && len(cc.Input()) <= cc.loop.e.cfg.MaxBufferedBytes/2 {
		// A parked stage took what was waiting (a request body, say):
		// read again, without re-entering the stage, which is consuming
		// right now.
		cc.inputPaused = false
		cc.paused = false
		if err := cc.loop.poll.resume(cc.fd, cc.c.OutboundBuffered() > 0); err != nil {
			cc.loop.e.log.Warn("pipeline: resume", "err", err)
		}
	}
}

func (cc *clientConn) Write(p []byte) error {
	if cc.closed {
		return errClosed
	}
	_, err := cc.c.Write(p)
	return err
}

func (cc *clientConn) Pending() int {
	if cc.closed {
		return 0
	}
	return cc.c.OutboundBuffered()
}

func (cc *clientConn) OverLimit() bool { return cc.Pending() > cc.loop.e.cfg.MaxBufferedBytes }

func (cc *clientConn) PauseUntilDrained(other Peer) { cc.pauseSelf(other) }

func (cc *clientConn) pauseSelf(other Peer) {
	if cc.closed {
		return
	}
	if !cc.paused {
		cc.paused = true
		cc.loop.e.metrics.paused()
	}
	cc.repause()
	if other != nil {
		cc.loop.pause(cc, other)
	}
}

func (cc *clientConn) repause() {
	if err := cc.loop.poll.pause(cc.fd, cc.c.OutboundBuffered() > 0); err != nil {
		cc.loop.e.log.Warn("pipeline: pause", "err", err)
	}
}

func (cc *clientConn) resumeReading() {
	if cc.closed || !cc.paused {
		return
	}
	cc.paused = false
	cc.inputPaused = false
	if err := cc.loop.poll.resume(cc.fd, cc.c.OutboundBuffered() > 0); err != nil {
		cc.loop.e.log.Warn("pipeline: resume", "err", err)
	}
	// Bytes that arrived before the pause wait in gnet's buffer and no
	// read event will announce them.
	if len(cc.Input()) == 0 {
		return
	}
	switch cc.state {
	case stParked:
		if cc.x.parked != nil {
			cc.x.parked.ClientData(&cc.x)
		}
	case stIdle, stHead:
		cc.serve()
	}
	if cc.wantClose && !cc.inTraffic {
		cc.closeNow()
	}
}

func (cc *clientConn) isClosed() bool { return cc.closed }

var errClosed = errors.New("pipeline: connection closed")
