package client

import (
	"sync/atomic"
	"time"

	"github.com/rampart-edge/rampart/keyless"
)

// A call is one request from submission to result. Calls are pooled: the
// steady state allocates none.
//
// Ownership is counted. A live call has three references, each released
// exactly once:
//   - the owner's: released after the result was handed over (after done
//     returns, or after the blocking waiter copied it);
//   - the timer's: released by the timeout function when it has run, or by
//     whoever stops the timer before it fires;
//   - the transport's: held by whatever holds the call (a server queue, a
//     connection slot, a retry in progress) and released when it lets go.
//
// The result is delivered once: whoever moves state from pending to done
// (an answer, the timer, a lost connection, a rejection) writes out and
// err and then delivers. The call returns to the pool when the last
// reference goes, so a late answer or a timer that fires during delivery
// never sees a recycled call.
type call struct {
	cl *Client

	// Set by the submitter, read-only while the call is live.
	op      keyless.Op
	ski     keyless.SKI
	payload []byte // aliases in
	in      []byte // owned copy of the caller's input
	done    func(res []byte, err error)
	pinned  *conn // pings go to one connection, never rerouted
	start   time.Time

	// Written by the one who delivers.
	out []byte
	err error

	wake  chan struct{} // blocking waiters; capacity 1
	timer *time.Timer   // runs onTimeout

	state atomic.Uint32
	refs  atomic.Int32
	srv   atomic.Pointer[server] // where the call is queued or was sent

	// Written by a connection's writer before it publishes the call in a
	// slot, read after taking it out of the slot.
	attempts int
	sent     atomic.Int64 // monotonic ns (Client.now) when written
}

const (
	statePending uint32 = iota
	stateDone
)

func newCall(cl *Client) any {
	c := &call{cl: cl, wake: make(chan struct{}, 1), out: make([]byte, 0, 512)}
	c.timer = time.AfterFunc(time.Hour, c.onTimeout)
	c.timer.Stop()
	return c
}

// release drops one reference; the last one returns c to the pool.
func (c *call) release() {
	if c.refs.Add(-1) != 0 {
		return
	}
	c.done, c.pinned, c.payload, c.err = nil, nil, nil, nil
	c.srv.Store(nil)
	c.attempts = 0
	c.sent.Store(0)
	c.cl.pool.Put(c)
}

func (c *call) isDone() bool { return c.state.Load() == stateDone }

// onTimeout runs on the timer's goroutine.
func (c *call) onTimeout() {
	if c.state.CompareAndSwap(statePending, stateDone) {
		s := c.srv.Load()
		if s != nil && c.sent.Load() != 0 {
			// Sent and not answered in time: the server is slow or gone.
			s.br.failure()
		}
		c.deliver(nil, ErrTimeout, resultTimeout)
	}
	c.release()
}

// finish delivers the result if nobody did yet, and reports whether it
// did. res is copied, so it may alias a read buffer.
func (c *call) finish(res []byte, err error, result int) bool {
	if !c.state.CompareAndSwap(statePending, stateDone) {
		return false
	}
	if c.timer.Stop() {
		c.refs.Add(-1) // the timer's; the owner's is still held, so not the last
	}
	c.deliver(res, err, result)
	return true
}

func (c *call) deliver(res []byte, err error, result int) {
	c.err = err
	c.out = append(c.out[:0], res...)
	cl := c.cl
	if s := c.srv.Load(); s != nil {
		s.m.request(c.op, result)
	} else {
		cl.noServer.request(c.op, result)
	}
	cl.durations[c.op].Observe(time.Since(c.start).Seconds())
	if c.done == nil {
		c.wake <- struct{}{}
		return
	}
	if err != nil {
		c.done(nil, err)
	} else {
		c.done(c.out, nil)
	}
	c.release()
}
