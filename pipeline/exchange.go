package pipeline

import (
	"net/netip"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/http1"
	"github.com/rampart-edge/rampart/stages/zone"
)

// Action is what a stage tells the runner after looking at an exchange.
type Action uint8

const (
	// Continue passes the exchange to the next stage.
	Continue Action = iota
	// Respond ends the exchange with Exchange.Status and Exchange.Body.
	Respond
	// Park hands the exchange to the stage, which finishes it later on the
	// connection's own loop (Exchange.Finish or Exchange.Abort) without
	// blocking it: an origin response, a keyless signature.
	Park
)

// Stage is one step of the pipeline. It sees exchanges, never sockets or
// event loops, and must not block: work that waits parks.
type Stage interface {
	Name() string
	Serve(x *Exchange) Action
}

// ParkedHandler is told what happens on the client side of a parked
// exchange: more request bytes (a body, or a pipelined request it must
// leave alone), or the client going away.
type ParkedHandler interface {
	ClientData(x *Exchange)
	ClientClosed(x *Exchange)
}

// Exchange is one request and its answer. The runner reuses one per
// connection; nothing in it survives Finish.
type Exchange struct {
	// Request is valid during Serve only: it points into the connection's
	// input, which the runner discards after the stages ran. A stage that
	// parks copies (or serializes) what it needs before returning.
	Request *http1.Request
	// HeadLength is the size of the request head in the client's input.
	HeadLength int
	Remote     netip.AddrPort
	Local      netip.AddrPort
	// Zone is set by the zone stage; nil before it, or for an unknown host.
	Zone *zone.Zone
	// Verdict and Score are set by the threat stages.
	Verdict flowtable.Verdict
	Score   uint8
	// Start is when the request head was complete.
	Start time.Time

	// Status, Body, and Header describe the response of a stage that
	// returns Respond.
	Status int
	Body   []byte
	Header []http1.Header
	// Close asks for the connection to close after this exchange.
	Close bool

	conn   *clientConn
	parked ParkedHandler
	// Stage-private slot: a parked stage keeps its per-exchange state here
	// so that resuming needs no lookup.
	StageState any
}

// Loop is the event loop the exchange runs on.
func (x *Exchange) Loop() Loop { return x.conn.loop }

// Client is the client side of the exchange, for stages that stream.
func (x *Exchange) Client() Peer { return x.conn }

// SetParked names who hears of the client while the exchange is parked.
func (x *Exchange) SetParked(h ParkedHandler) { x.parked = h }

// Finish ends a parked exchange whose response has been written in full;
// the connection reads its next request, or closes when keepAlive is false.
func (x *Exchange) Finish(keepAlive bool) { x.conn.finish(keepAlive) }

// Abort ends a parked exchange by closing the client connection, for a
// response that cannot be completed (the origin died mid-body).
func (x *Exchange) Abort() { x.conn.abort() }

// Fail ends a parked exchange that has written nothing yet with a
// runner-made error response (502, 504) and closes when the request body
// was not consumed.
func (x *Exchange) Fail(status int, reason string) { x.conn.fail(status, reason) }

// Peer is one side of a relay: the client, or an origin connection. Its
// methods run on the loop only.
type Peer interface {
	// Input is every byte received and not yet consumed; valid until the
	// next call that consumes or returns to the loop.
	Input() []byte
	Consume(n int)
	// Write queues p (copied) for sending.
	Write(p []byte) error
	// Pending is what is queued and not yet sent.
	Pending() int
	// PauseUntilDrained stops reading from this peer until other has at
	// most half the buffer limit pending; the loop resumes it and calls
	// the data handler again. Backpressure both ways.
	PauseUntilDrained(other Peer)
	// OverLimit reports whether Pending exceeds the buffer limit.
	OverLimit() bool
}

// Loop is what a stage may ask of the event loop that runs it.
type Loop interface {
	Index() int
	Now() time.Time
	Schedule(t *Timer, d time.Duration)
	Cancel(t *Timer)
	// Dial connects to an origin off the loop and reports to h on the loop:
	// UpstreamOpened, or UpstreamFailed after timeout or refusal.
	Dial(addr netip.AddrPort, timeout time.Duration, h UpstreamHandler)
}

// Upstream is a connection the loop dialled for a stage.
type Upstream interface {
	Peer
	Remote() netip.AddrPort
	// SetHandler switches who hears of this connection (a pool while idle,
	// an exchange while busy).
	SetHandler(h UpstreamHandler)
	Close()
}

// UpstreamHandler hears of one upstream connection, always on its loop.
type UpstreamHandler interface {
	UpstreamOpened(u Upstream)
	UpstreamFailed(addr netip.AddrPort, err error)
	UpstreamData(u Upstream)
	UpstreamClosed(u Upstream, err error)
}
