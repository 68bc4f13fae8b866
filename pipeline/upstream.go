package pipeline

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// upstreamConn is a connection the loop dialled toward an origin.
type upstreamConn struct {
	loop      *loop
	c         gnet.Conn
	fd        int
	remote    netip.AddrPort
	h         UpstreamHandler
	closed    bool
	paused    bool
	inTraffic bool
	wantClose bool
}

// Dial implements Loop. net.Dialer runs on a goroutine of its own (connect
// can take the whole timeout); the connected socket joins this loop through
// gnet's Enroll, and the handler hears of it on the loop.
func (l *loop) Dial(addr netip.AddrPort, timeout time.Duration, h UpstreamHandler) {
	l.e.metrics.dial()
	u := &upstreamConn{loop: l, remote: addr, h: h}
	go func() {
		d := net.Dialer{Timeout: timeout}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		nc, err := d.DialContext(ctx, "tcp", addr.String())
		if err == nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			var ch <-chan gnet.RegisteredResult
			ch, err = l.el.Enroll(gnet.NewContext(context.Background(), u), nc)
			if err == nil {
				res := <-ch
				err = res.Err
			}
			// Enroll duplicated the descriptor; this copy is not needed.
			nc.Close()
			if err == nil {
				return // opened() runs on the loop
			}
		}
		l.e.metrics.dialFailed()
		failErr := err
		if execErr := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			h.UpstreamFailed(addr, failErr)
			return nil
		})); execErr != nil {
			l.e.log.Warn("pipeline: dial failure lost: engine stopping", "origin", addr, "err", failErr)
		}
	}()
}

// opened runs in OnOpen on the loop.
func (u *upstreamConn) opened(c gnet.Conn) {
	u.c = c
	u.fd = c.Fd()
	u.loop.e.metrics.upstreamOpened()
	u.h.UpstreamOpened(u)
}

func (u *upstreamConn) onTraffic() gnet.Action {
	u.inTraffic = true
	defer func() { u.inTraffic = false }()
	if u.paused {
		u.repause()
	} else {
		u.h.UpstreamData(u)
	}
	if u.wantClose {
		return gnet.Close
	}
	return gnet.None
}

func (u *upstreamConn) onClose(err error) {
	if u.closed {
		return
	}
	u.closed = true
	u.loop.e.metrics.upstreamClosed()
	if err == nil {
		err = errUpstreamClosed
	}
	u.h.UpstreamClosed(u, err)
}

var errUpstreamClosed = errors.New("origin closed the connection")

// Remote implements Upstream.
func (u *upstreamConn) Remote() netip.AddrPort { return u.remote }

// SetHandler implements Upstream.
func (u *upstreamConn) SetHandler(h UpstreamHandler) { u.h = h }

// Close implements Upstream.
func (u *upstreamConn) Close() {
	if u.closed || u.c == nil {
		return
	}
	if u.inTraffic {
		u.wantClose = true
		return
	}
	_ = u.loop.el.Close(u.c)
}

func (u *upstreamConn) Input() []byte {
	if u.closed {
		return nil
	}
	b, _ := u.c.Peek(-1)
	return b
}

func (u *upstreamConn) Consume(n int) {
	if !u.closed {
		u.c.Discard(n)
	}
}

func (u *upstreamConn) Write(p []byte) error {
	if u.closed {
		return errClosed
	}
	_, err := u.c.Write(p)
	return err
}

func (u *upstreamConn) Pending() int {
	if u.closed {
		return 0
	}
	return u.c.OutboundBuffered()
}

func (u *upstreamConn) OverLimit() bool { return u.Pending() > u.loop.e.cfg.MaxBufferedBytes }

func (u *upstreamConn) PauseUntilDrained(other Peer) {
	if u.closed {
		return
	}
	if !u.paused {
		u.paused = true
		u.loop.e.metrics.paused()
	}
	u.repause()
	u.loop.pause(u, other)
}

func (u *upstreamConn) repause() {
	if err := u.loop.poll.pause(u.fd, u.c.OutboundBuffered() > 0); err != nil {
		u.loop.e.log.Warn("pipeline: pause origin", "err", err)
	}
}

func (u *upstreamConn) resumeReading() {
	if u.closed || !u.paused {
		return
	}
	u.paused = false
	if err := u.loop.poll.resume(u.fd, u.c.OutboundBuffered() > 0); err != nil {
		u.loop.e.log.Warn("pipeline: resume origin", "err", err)
	}
	if len(u.Input()) > 0 {
		u.h.UpstreamData(u)
		if u.wantClose && !u.inTraffic {
			u.wantClose = false
			_ = u.loop.el.Close(u.c)
		}
	}
}

func (u *upstreamConn) isClosed() bool { return u.closed }
