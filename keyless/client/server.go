package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-edge/rampart/keyless"
)

// server is one key server: its pending queue, its connections, its
// latency average and breaker, and the maintainer goroutine that dials,
// probes and drains.
type server struct {
	cl   *Client
	name string
	addr string
	tls  *tls.Config
	log  *slog.Logger
	m    *serverMetrics

	queue       chan *call
	outstanding atomic.Int64 // queued or in a slot
	rtt         atomic.Int64 // EWMA of round trips, ns; 0 before the first
	br          breaker
	live        atomic.Int32

	mu    sync.Mutex
	conns []*conn

	wake    chan struct{}
	lastErr atomic.Pointer[error]
}

// routable: requests may be queued here now.
func (s *server) routable() bool { return s.live.Load() > 0 && s.br.allow() }

// score orders routable servers: lower is better. Latency times load
// prefers the fast server and spills to others as it fills up.
func (s *server) score() float64 {
	return float64(max(s.rtt.Load(), 1)) * float64(s.outstanding.Load()+1)
}

func (s *server) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// leave: c no longer occupies s (queue or slot). Pings are not counted.
func (s *server) leave(c *call) {
	if c.pinned == nil {
		s.outstanding.Add(-1)
	}
}

// ewmaShift sets the weight of a new round trip to 1/8.
const ewmaShift = 3

func (s *server) observe(rtt time.Duration) {
	for {
		old := s.rtt.Load()
		next := int64(rtt)
		if old != 0 {
			next = old + (int64(rtt)-old)>>ewmaShift
		}
		if s.rtt.CompareAndSwap(old, max(next, 1)) {
			s.m.rtt.Set(float64(next) / 1e9)
			return
		}
	}
}

func (s *server) lastFailure(err error) {
	if err == nil {
		return
	}
	s.lastErr.Store(&err)
	s.cl.rebuildUnavailable()
}

func (s *server) breakerChanged(from, to int32) {
	s.m.breaker.Set(float64(to))
	if to == breakerOpen {
		s.log.Warn("circuit breaker open", slog.String("from", breakerName(from)))
	} else {
		s.log.Info("circuit breaker "+breakerName(to), slog.String("from", breakerName(from)))
	}
	s.kick()
}

func (s *server) addConn(cn *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl.closing.Load() {
		cn.fail(ErrClosed)
		return false
	}
	s.conns = append(s.conns, cn)
	s.live.Add(1)
	s.m.conns.Inc()
	cn.start(&s.cl.wg)
	return true
}

func (s *server) connGone(cn *conn) {
	s.mu.Lock()
	if i := slices.Index(s.conns, cn); i >= 0 {
		s.conns = slices.Delete(s.conns, i, i+1)
		s.live.Add(-1)
		s.m.conns.Dec()
	}
	s.mu.Unlock()
	s.kick()
}

// maintain keeps ConnsPerServer connections open while the breaker
// allows, probes an open breaker after its cooldown, and hands queued
// requests to other servers whenever this one cannot take them. ready is
// closed after the first round of dials.
func (s *server) maintain(ready chan<- struct{}) {
	cfg := &s.cl.cfg
	var (
		backoff  time.Duration // between failed dials
		cooldown = cfg.BreakerCooldown
		timer    = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	for {
		wait := time.Duration(-1) // until kicked
		switch {
		case !s.br.allow():
			s.drain()
			opened := time.Unix(0, s.br.openedAt.Load())
			if d := time.Until(opened.Add(cooldown)); d > 0 {
				wait = d
				break
			}
			if err := s.probe(); err != nil {
				s.lastFailure(err)
				s.br.probed(false)
				cooldown = min(2*cooldown, cfg.BreakerCooldownMax)
				wait = cooldown
				s.log.Warn("probe failed", slog.Any("err", err), slog.Duration("next", cooldown))
				break
			}
			s.br.probed(true)
			cooldown, backoff, wait = cfg.BreakerCooldown, 0, 0
		case int(s.live.Load()) < cfg.ConnsPerServer:
			cn, err := s.dial()
			if err != nil {
				if s.cl.ctx.Err() != nil {
					return // closing: not a failure of the server
				}
				s.lastFailure(err)
				s.br.failure()
				if s.live.Load() == 0 {
					s.drain()
				}
				backoff = min(max(2*backoff, cfg.BreakerCooldown/8), cfg.BreakerCooldownMax)
				wait = backoff
				s.log.Warn("dial failed", slog.Any("err", err), slog.Duration("next", backoff))
				break
			}
			if !s.addConn(cn) {
				return
			}
			backoff, wait = 0, 0
			s.log.Info("connected", slog.String("version", tls.VersionName(cn.nc.(*tls.Conn).ConnectionState().Version)),
				slog.Int("conns", int(s.live.Load())))
		default:
			if !s.routable() {
				s.drain()
			}
		}
		if ready != nil && (wait != 0 || int(s.live.Load()) >= cfg.ConnsPerServer) {
			close(ready)
			ready = nil
		}
		if wait == 0 {
			if s.cl.ctx.Err() != nil {
				return
			}
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-s.wake:
		case <-tc:
		case <-s.cl.ctx.Done():
			return
		}
		timer.Stop()
	}
}

// probe checks an open server: a ping on a connection it still has, or
// else a new connection (which pings once before it counts).
func (s *server) probe() error {
	s.mu.Lock()
	var cn *conn
	if len(s.conns) > 0 {
		cn = s.conns[0]
	}
	s.mu.Unlock()
	if cn != nil {
		if _, err := cn.ping(); err != nil {
			cn.fail(fmt.Errorf("probe ping: %w", err))
			return fmt.Errorf("keyless client: server %s: probe ping: %w", s.name, err)
		}
		return nil
	}
	cn, err := s.dial()
	if err != nil {
		return err
	}
	if !s.addConn(cn) {
		return ErrClosed
	}
	return nil
}

// drain hands every queued request to another server, or fails it.
func (s *server) drain() {
	for {
		select {
		case c := <-s.queue:
			s.leave(c)
			s.cl.reroute(c, s)
		default:
			return
		}
	}
}

// firstPing is the payload of the ping every new connection must answer
// before it carries requests.
var firstPing = []byte("rampart keyless client")

// dial opens one connection: TCP, TLS handshake, and a first ping, all
// within DialTimeout.
func (s *server) dial() (*conn, error) {
	cfg := &s.cl.cfg
	ctx, cancel := context.WithTimeout(s.cl.ctx, cfg.DialTimeout)
	defer cancel()
	derr := func(stage string, err error) error {
		de := &DialError{Server: s.name, Addr: s.addr, Stage: stage, Err: err}
		if de.Refused() {
			s.m.dialRefus.Inc()
		} else {
			s.m.dialErr.Inc()
		}
		return de
	}
	raw, err := cfg.Dial(ctx, "tcp", s.addr)
	if err != nil {
		return nil, derr("connect", err)
	}
	tc := tls.Client(raw, s.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, derr("tls handshake", err)
	}
	start := time.Now()
	if err := pingOnce(tc, start.Add(cfg.DialTimeout)); err != nil {
		tc.Close()
		return nil, derr("first ping", err)
	}
	s.observe(time.Since(start))
	s.m.dialOK.Inc()
	return newConn(s, tc), nil
}

// pingOnce pings on a connection no goroutine reads yet. With TLS 1.3
// this is where a refused client certificate shows: the client's side of
// the handshake ends before the server has checked it.
func pingOnce(tc *tls.Conn, deadline time.Time) error {
	tc.SetDeadline(deadline)
	defer tc.SetDeadline(time.Time{})
	msg, err := keyless.AppendMessage(nil, &keyless.Message{Op: keyless.OpPing, Payload: firstPing})
	if err != nil {
		return err
	}
	if _, err := tc.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, keyless.MaxMessageLen)
	if _, err := io.ReadFull(tc, buf[:keyless.HeaderLen]); err != nil {
		return err
	}
	n, _ := keyless.Frame(buf[:keyless.HeaderLen])
	if _, err := io.ReadFull(tc, buf[keyless.HeaderLen:n]); err != nil {
		return err
	}
	var m keyless.Message
	if err := m.Decode(buf[:n]); err != nil {
		return err
	}
	if err := m.Err(); err != nil {
		return err
	}
	if m.ID != 0 || m.Op != keyless.OpPong || string(m.Payload) != string(firstPing) {
		return errors.New("keyless client: wrong answer to the first ping")
	}
	return nil
}
