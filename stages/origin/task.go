package origin

import (
	"net/netip"

	"github.com/rampart-edge/rampart/internal/http1"
	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
)

type phase uint8

const (
	phaseConnecting phase = iota // waiting for a pooled or new connection
	phaseAwaitHead               // request (head) sent, no response yet
	phaseBody                    // response head forwarded, relaying its body
)

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyUntilClose
	bodyDechunk // chunked from the origin, raw to an HTTP/1.0 client
)

var (
	keepAliveField = []byte("Connection: keep-alive\r\n\r\n")
	getMethod      = []byte("GET")
	headMethod     = []byte("HEAD")
)

// task is one exchange on its way through an origin. Tasks are recycled
// per loop; gen tells a late dial result that its task moved on.
type task struct {
	ls     *loopState
	x      *pipeline.Exchange
	zone   *zone.Zone
	origin *zone.Origin
	pool   *pool
	up     pipeline.Upstream
	pipe   *pipe // up is a pipelined connection this task rides on
	dial   *dialing
	timer  pipeline.Timer
	gen    uint64
	phase  phase

	head        []byte // the forwarded request head, kept for a retry
	isHead      bool
	safe        bool // GET or HEAD
	idempot     bool
	hasBody     bool
	inServe     bool // connect runs synchronously inside Stage.Serve
	fresh       bool // a retry: dial, do not take a pooled connection
	free        bool // on the loop's free list
	headPending bool // the response head sits in the loop's scratch buffer
	keepAlive   bool // toward the client
	clientMinor int
	tried       uint64
	attempts    int

	reqLeft    int64 // Content-Length body bytes still to forward
	reqChunked bool
	reqDec     http1.ChunkedDecoder
	reqDone    bool

	resp      *http1.Response
	respKind  bodyKind
	respLeft  int64
	respDec   http1.ChunkedDecoder
	received  bool // any byte came back from the origin
	respBytes int
}

func (t *task) start(x *pipeline.Exchange, z *zone.Zone) error {
	req := x.Request
	t.x, t.zone = x, z
	t.phase = phaseConnecting
	t.tried, t.attempts, t.received, t.respBytes = 0, 0, false, 0
	t.isHead = string(req.Method) == "HEAD"
	t.safe = t.isHead || string(req.Method) == "GET"
	t.idempot = isIdempotent(req.Method)
	t.keepAlive = req.KeepAlive
	t.clientMinor = req.Minor
	t.reqChunked = req.Chunked
	t.reqLeft = req.BodyLength()
	t.hasBody = t.reqChunked || t.reqLeft > 0
	t.reqDone = !t.hasBody
	if t.reqChunked {
		t.reqDec.Reset(t.ls.s.opts.Limits)
	}
	t.head = http1.AppendForwardedRequest(t.head[:0], req, x.Remote.Addr(), t.ls.s.opts.Proto, t.ls.s.opts.Via)
	if req.Expect100 && t.hasBody {
		// The edge commits to reading the body now; the origin's own 100
		// is dropped below.
		if err := x.Client().Write(continue100); err != nil {
			return err
		}
	}
	return nil
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// connect finds a connection for the next attempt.
func (t *task) connect() {
	ls := t.ls
	o := ls.pickOrigin(t.zone, t.tried)
	if o == nil {
		t.fail(502, "no origin reachable")
		return
	}
	if i := originIndex(t.zone, o); i >= 0 && i < 64 {
		t.tried |= 1 << i
	}
	t.attempts++
	t.origin = o
	t.pool = ls.pool(t.zone, o)
	t.phase = phaseConnecting
	if t.pipelinable() && !t.fresh {
		if pp := t.pool.joinable(); pp != nil {
			pp.add(t)
			return
		}
		if t.pool.awaitDial(t) {
			ls.loop.Schedule(&t.timer, t.zone.Settings.ConnectTimeout)
			t.timer.Kind = timerConnect
			return
		}
	}
	if up := t.takePooled(); up != nil {
		ls.s.metrics.reused.Inc()
		t.attach(up)
		return
	}
	if !t.pool.canDial() {
		if !t.pool.wait(t) {
			t.fail(503, "origin connection limit reached")
			return
		}
		ls.loop.Schedule(&t.timer, t.zone.Settings.ConnectTimeout)
		t.timer.Kind = timerConnect
		return
	}
	t.startDial()
}

// pipelinable says whether t's request may share a connection with
// others in flight.
func (t *task) pipelinable() bool {
	return t.safe && !t.hasBody && t.zone.Settings.PipelineDepth > 1
}

// takePooled returns an idle connection unless this attempt is a retry,
// which must not meet another connection the origin may have closed.
func (t *task) takePooled() pipeline.Upstream {
	if t.fresh {
		return nil
	}
	return t.pool.take()
}

func (t *task) startDial() {
	t.pool.open++
	t.pool.dialing++
	t.dial = &dialing{t: t, gen: t.gen, pool: t.pool}
	t.timer.Kind = timerConnect
	t.ls.loop.Schedule(&t.timer, t.zone.Settings.ConnectTimeout)
	t.ls.loop.Dial(t.origin.Addr, t.zone.Settings.ConnectTimeout, t.dial)
}

// attach starts the request on up.
func (t *task) attach(up pipeline.Upstream) {
	if t.pipelinable() {
		pp := t.ls.newPipe(t.pool, up)
		pp.add(t)
		pp.fill()
		return
	}
	t.up = up
	t.dial = nil
	up.SetHandler(t)
	t.phase = phaseAwaitHead
	t.timer.Kind = timerResponse
	t.ls.loop.Schedule(&t.timer, t.zone.Settings.ResponseTimeout)
	if err := up.Write(t.head); err != nil {
		// gnet closed the connection inside Write, and UpstreamClosed
		// has already retried or failed the request.
		return
	}
	// Inside Serve the client's input still starts with the request head;
	// the runner hands over the body with ClientData once it is gone.
	if !t.inServe {
		t.pumpRequest()
	}
}

// pumpRequest forwards what the client sent of the body so far.
func (t *task) pumpRequest() {
	if t.reqDone || t.up == nil || t.x == nil {
		return
	}
	client := t.x.Client()
	in := client.Input()
	if len(in) == 0 {
		return
	}
	var n int
	if t.reqChunked {
		consumed, done, err := t.reqDec.Scan(in)
		if err != nil {
			// The request is already on its way; the origin sees a cut
			// body and the client a closed connection.
			t.ls.s.metrics.badRequestBody.Inc()
			t.abort()
			return
		}
		n = consumed
		t.reqDone = done
	} else {
		n = len(in)
		if int64(n) > t.reqLeft {
			n = int(t.reqLeft)
		}
		t.reqLeft -= int64(n)
		t.reqDone = t.reqLeft == 0
	}
	if n > 0 {
		if err := t.up.Write(in[:n]); err != nil {
			return // handled by UpstreamClosed, inside Write
		}
		client.Consume(n)
		// The origin is reading: the response timer measures silence,
		// and a long upload is not silence.
		t.ls.loop.Schedule(&t.timer, t.zone.Settings.ResponseTimeout)
	}
	if !t.reqDone && t.up.OverLimit() {
		client.PauseUntilDrained(t.up)
	}
}

// ClientData implements pipeline.ParkedHandler.
func (t *task) ClientData(*pipeline.Exchange) {
	if t.phase != phaseConnecting {
		t.pumpRequest()
	}
}

// ClientClosed implements pipeline.ParkedHandler.
func (t *task) ClientClosed(*pipeline.Exchange) {
	if t.x == nil {
		return
	}
	// Whatever the origin was doing for this client is of no use now; a
	// connection mid-response cannot be reused. A dial in progress
	// brings its connection to the pool (dialing.current fails).
	t.closeUpstream()
	if t.pool != nil && t.phase == phaseConnecting && t.dial == nil {
		t.pool.unwait(t)
	}
	t.x = nil
	t.ls.putTask(t)
}

// UpstreamOpened implements pipeline.UpstreamHandler; tasks get opened
// connections through their dialing record, not here.
func (t *task) UpstreamOpened(u pipeline.Upstream) { u.Close() }

// UpstreamFailed implements pipeline.UpstreamHandler.
func (t *task) UpstreamFailed(netip.AddrPort, error) {}

// UpstreamData implements pipeline.UpstreamHandler.
func (t *task) UpstreamData(u pipeline.Upstream) {
	if t.x == nil {
		u.Close()
		return
	}
	t.received = true
	if t.phase == phaseAwaitHead {
		if !t.readHead(u) {
			return
		}
	}
	if t.phase == phaseBody {
		t.relayBody(u)
	}
}

// readHead parses the origin's response head and forwards it; it reports
// whether the body relay should run.
func (t *task) readHead(u pipeline.Upstream) bool {
	for {
		in := u.Input()
		n, err := t.ls.s.parser.ParseResponse(in, t.resp)
		if err == http1.ErrIncomplete {
			t.ls.loop.Schedule(&t.timer, t.zone.Settings.ResponseTimeout)
			return false
		}
		if err != nil {
			t.ls.s.metrics.badResponse.Inc()
			t.origin.MarkFailure()
			t.closeUpstream()
			t.fail(502, "origin sent an invalid response")
			return false
		}
		status := t.resp.Status
		if status >= 100 && status < 200 {
			if status == 101 {
				t.closeUpstream()
				t.fail(502, "origin switched protocols")
				return false
			}
			u.Consume(n)
			continue
		}
		method := getMethod
		if t.isHead {
			method = headMethod
		}
		kind, length := t.resp.BodyFraming(method)
		switch kind {
		case http1.FramingNone:
			t.respKind = bodyNone
		case http1.FramingLength:
			t.respKind, t.respLeft = bodyLength, length
		case http1.FramingChunked:
			t.respKind = bodyChunked
			t.respDec.Reset(t.ls.s.opts.Limits)
			if t.clientMinor == 0 {
				// HTTP/1.0 has no chunked coding: the edge decodes and
				// the close ends the body.
				t.respKind = bodyDechunk
				t.keepAlive = false
				t.resp.Chunked = false
			}
		case http1.FramingClose:
			t.respKind = bodyUntilClose
			// The client learns where the body ends only by the close.
			t.keepAlive = false
		default:
			t.closeUpstream()
			t.fail(502, "origin switched protocols")
			return false
		}
		ls := t.ls
		if t.clientMinor == 0 {
			// Transfer codings mean nothing to an HTTP/1.0 client, even
			// as metadata of a HEAD or 304 response.
			t.resp.Chunked = false
		}
		ls.scratch = http1.AppendForwardedResponse(ls.scratch[:0], t.resp, ls.s.opts.Via, !t.keepAlive)
		if t.keepAlive && t.clientMinor == 0 {
			// An HTTP/1.0 client keeps the connection only when told so.
			ls.scratch = append(ls.scratch[:len(ls.scratch)-2], keepAliveField...)
		}
		u.Consume(n)
		t.phase = phaseBody
		t.origin.MarkSuccess()
		ls.s.metrics.status(status)
		// The head waits in the loop's scratch buffer for the body bytes
		// already here: one write (one TCP segment) for a small response.
		t.headPending = true
		t.respBytes += len(ls.scratch)
		return true
	}
}

// coalesceLimit bounds how much body is copied behind a response head to
// send both in one write; larger bodies go in a second write from the
// origin connection's buffer.
const coalesceLimit = 64 << 10

// flushHead writes a response head left pending by readHead; false means
// the client is gone.
func (t *task) flushHead() bool {
	if !t.headPending {
		return true
	}
	t.headPending = false
	// A failed write closed the client inside Write, and ClientClosed
	// has already released the task and its origin connection.
	return t.x.Client().Write(t.ls.scratch) == nil
}

// relayBody forwards the response body the origin sent so far.
func (t *task) relayBody(u pipeline.Upstream) {
	t.timer.Kind = timerResponse
	t.ls.loop.Schedule(&t.timer, t.zone.Settings.ResponseTimeout)
	client := t.x.Client()
	done := false
	in := u.Input()
	var n int
	switch t.respKind {
	case bodyNone:
		done = true
	case bodyLength:
		n = len(in)
		if int64(n) > t.respLeft {
			n = int(t.respLeft)
		}
		t.respLeft -= int64(n)
		done = t.respLeft == 0
	case bodyChunked:
		consumed, fin, err := t.respDec.Scan(in)
		if err != nil {
			t.ls.s.metrics.badResponse.Inc()
			t.closeUpstream()
			t.abort()
			return
		}
		n, done = consumed, fin
	case bodyUntilClose:
		n = len(in)
	case bodyDechunk:
		ls := t.ls
		if !t.flushHead() {
			return
		}
		consumed, produced, fin, err := t.respDec.Decode(in, ls.scratch[:cap(ls.scratch)])
		if err != nil {
			ls.s.metrics.badResponse.Inc()
			t.closeUpstream()
			t.abort()
			return
		}
		if produced > 0 {
			if err := client.Write(ls.scratch[:produced]); err != nil {
				return // ClientClosed ran inside Write
			}
			t.respBytes += produced
		}
		u.Consume(consumed)
		if fin {
			t.complete(u)
			return
		}
		if client.OverLimit() {
			t.stall(u, client)
			return
		}
		if consumed > 0 && len(u.Input()) > 0 {
			t.relayBody(u) // the scratch buffer filled before the input ran out
		}
		return
	}
	if t.headPending && n > 0 && len(t.ls.scratch)+n <= coalesceLimit {
		t.ls.scratch = append(t.ls.scratch, in[:n]...)
		t.respBytes += n
		u.Consume(n)
		n = 0
	}
	if !t.flushHead() {
		return
	}
	if n > 0 {
		if err := client.Write(in[:n]); err != nil {
			return // ClientClosed ran inside Write
		}
		u.Consume(n)
		t.respBytes += n
	}
	if done {
		t.complete(u)
		return
	}
	if client.OverLimit() {
		t.stall(u, client)
	}
}

// stall stops reading from the origin until the client has taken what is
// queued for it. The response timer then measures the client instead: a
// client that takes nothing for the origin idle timeout is dropped.
func (t *task) stall(u pipeline.Upstream, client pipeline.Peer) {
	u.PauseUntilDrained(client)
	t.timer.Kind = timerClientStall
	t.ls.loop.Schedule(&t.timer, t.zone.Settings.IdleTimeout)
}

// complete ends the exchange after the whole response went to the client.
func (t *task) complete(u pipeline.Upstream) {
	x := t.x
	if pp := t.pipe; pp != nil {
		// What follows in the input is the next task's response.
		t.up, t.pipe = nil, nil
		pp.finished(t, t.resp.KeepAlive)
	} else if t.resp.KeepAlive && t.reqDone && len(u.Input()) == 0 {
		// Reusable: both messages ended by their framing and nothing
		// extra arrived.
		t.pool.put(u)
	} else {
		t.closeUpstream()
	}
	t.up = nil
	x.AccountResponse(t.respBytes)
	keep := t.keepAlive && t.reqDone
	t.x = nil
	t.ls.putTask(t)
	x.Finish(keep)
}

// UpstreamClosed implements pipeline.UpstreamHandler.
func (t *task) UpstreamClosed(u pipeline.Upstream, err error) {
	if t.x == nil || t.up != u {
		return
	}
	t.up = nil
	t.pool.closed()
	if t.phase == phaseBody && t.respKind == bodyUntilClose {
		t.finishAtClose()
		return
	}
	t.upstreamBroke(err)
}

// finishAtClose ends an exchange whose response body ended with the
// origin's close.
func (t *task) finishAtClose() {
	t.up, t.pipe = nil, nil
	x := t.x
	x.AccountResponse(t.respBytes)
	t.x = nil
	t.ls.putTask(t)
	x.Finish(false)
}

// upstreamBroke handles a connection lost before the response ended.
func (t *task) upstreamBroke(err error) {
	if t.x == nil {
		return
	}
	if t.up != nil {
		t.closeUpstream()
	}
	switch {
	case t.phase == phaseBody:
		t.abort()
	case !t.received && t.idempot && !t.hasBody && t.attempts <= len(t.zone.Origins):
		// Nothing came back for a request that may safely run twice:
		// most often a pooled connection the origin had just closed.
		t.ls.s.metrics.retries.Inc()
		t.tried = 0
		t.fresh = true // another pooled connection may be as stale
		t.connect()
	default:
		t.fail(502, "origin closed the connection")
	}
}

// Expire implements pipeline.Expirer.
func (t *task) Expire(tm *pipeline.Timer) {
	if t.x == nil {
		return
	}
	switch tm.Kind {
	case timerConnect:
		t.ls.s.metrics.connectTimeouts.Inc()
		if t.dial != nil {
			// The origin did not accept in time: that counts against
			// it. Waiting for a slot of a busy pool does not.
			t.dial = nil
			t.origin.MarkFailure()
		} else {
			t.pool.unwait(t)
		}
		t.tryNextOrigin()
	case timerClientStall:
		t.ls.s.metrics.clientStalls.Inc()
		t.closeUpstream()
		t.abort()
	case timerResponse:
		t.ls.s.metrics.responseTimeouts.Inc()
		t.closeUpstream()
		if t.phase == phaseBody {
			t.abort()
			return
		}
		t.fail(504, "origin did not answer in time")
	}
}

// tryNextOrigin moves to an untried origin after a failed connect.
func (t *task) tryNextOrigin() {
	if t.attempts >= len(t.zone.Origins) {
		t.fail(502, "no origin reachable")
		return
	}
	t.connect()
}

func (t *task) closeUpstream() {
	if t.up == nil {
		return
	}
	if pp := t.pipe; pp != nil {
		// One response cannot be skipped on a pipelined connection: it
		// goes, and the requests behind this one go elsewhere.
		t.up, t.pipe = nil, nil
		pp.breakAll(t, false, errEdgeClosing)
		return
	}
	up := t.up
	t.up = nil
	up.SetHandler(discard{})
	up.Close()
	t.pool.closed()
}

func (t *task) fail(status int, reason string) {
	x := t.x
	if x == nil {
		return
	}
	t.closeUpstream()
	t.x = nil
	t.ls.putTask(t)
	t.ls.s.metrics.failures(status)
	x.Fail(status, reason)
}

func (t *task) abort() {
	x := t.x
	if x == nil {
		return
	}
	t.closeUpstream()
	t.x = nil
	t.ls.putTask(t)
	x.Abort()
}

// dialing is one connect attempt. It outlives its task when the connect
// timer fires first; the connection it brings then goes to the pool.
type dialing struct {
	t    *task
	gen  uint64
	pool *pool
}

func (d *dialing) current() bool { return d.t.dial == d && d.t.gen == d.gen && d.t.x != nil }

func (d *dialing) UpstreamOpened(u pipeline.Upstream) {
	d.pool.dialing--
	if d.current() {
		d.pool.origin.MarkSuccess()
		d.t.attach(u)
		return
	}
	// The connect timer gave up on it, but the connection is good.
	d.pool.put(u)
}

func (d *dialing) UpstreamFailed(_ netip.AddrPort, err error) {
	d.pool.open--
	d.pool.dialing--
	d.pool.origin.MarkFailure()
	d.pool.ls.s.metrics.dialFailures.Inc()
	d.pool.serveWaiter()
	if !d.current() {
		return
	}
	t := d.t
	t.dial = nil
	t.ls.loop.Cancel(&t.timer)
	t.tryNextOrigin()
}

func (d *dialing) UpstreamData(u pipeline.Upstream) { u.Close() }

func (d *dialing) UpstreamClosed(pipeline.Upstream, error) {}

// discard owns connections being closed.
type discard struct{}

func (discard) UpstreamOpened(u pipeline.Upstream)      { u.Close() }
func (discard) UpstreamFailed(netip.AddrPort, error)    {}
func (discard) UpstreamData(u pipeline.Upstream)        { u.Close() }
func (discard) UpstreamClosed(pipeline.Upstream, error) {}
