package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-edge/rampart/keyless"
)

// Client sends keyless requests to a set of key servers. It is safe for
// use by any number of goroutines; see doc.go for what runs where.
type Client struct {
	cfg       Config
	log       *slog.Logger
	servers   []*server
	pool      sync.Pool
	durations *durations
	noServer  *serverMetrics // counts requests refused before a server was chosen

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	closing atomic.Bool
	wg      sync.WaitGroup

	unavail      atomic.Pointer[unavailableError]
	epoch        time.Time
	abandonAfter time.Duration // see conn.oldestInFlight
}

// New validates cfg, starts connecting to every key server and returns
// once each has either connected or failed its first attempt (at most
// DialTimeout). A server that is down is retried in the background, so
// New succeeds even when none is up yet; requests then fail fast with
// ErrUnavailable until one is.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keyless client config: %w", err)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	cl := &Client{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "keyless/client"),
		durations:    cfg.Metrics.durations(),
		noServer:     cfg.Metrics.server("none"),
		epoch:        time.Now(),
		abandonAfter: max(3*cfg.RequestTimeout, 30*time.Second),
	}
	cl.pool.New = func() any { return newCall(cl) }
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	for i, sc := range cfg.Servers {
		name := sc.Name
		if name == "" {
			name = strconv.Itoa(i)
		}
		s := &server{
			cl: cl, name: name, addr: sc.Addr, tls: cfg.tlsConfig(sc),
			log:   cl.log.With(slog.String("server", name), slog.String("addr", sc.Addr)),
			m:     cfg.Metrics.server(name),
			queue: make(chan *call, cfg.QueueLen),
			wake:  make(chan struct{}, 1),
		}
		s.br = breaker{threshold: int32(cfg.BreakerFailures), halfOpenN: int32(cfg.BreakerHalfOpenSuccesses), onChange: s.breakerChanged}
		s.m.breaker.Set(float64(breakerClosed))
		cl.servers = append(cl.servers, s)
	}
	cl.rebuildUnavailable()
	readies := make([]chan struct{}, len(cl.servers))
	for i, s := range cl.servers {
		readies[i] = make(chan struct{})
		cl.wg.Add(1)
		go func() { defer cl.wg.Done(); s.maintain(readies[i]) }()
	}
	for _, r := range readies {
		<-r
	}
	up := 0
	for _, s := range cl.servers {
		if s.routable() {
			up++
		}
	}
	cl.log.Info("started", slog.Int("servers", len(cl.servers)), slog.Int("up", up))
	return cl, nil
}

// Close fails every pending request with ErrClosed (their callbacks run
// before Close returns), closes all connections and stops every
// goroutine of the client.
func (cl *Client) Close() error {
	if cl.closing.Swap(true) {
		return nil
	}
	cl.cancel()
	for _, s := range cl.servers {
		s.mu.Lock()
		conns := append([]*conn(nil), s.conns...)
		s.mu.Unlock()
		for _, cn := range conns {
			cn.fail(ErrClosed)
		}
	}
	cl.wg.Wait()
	for _, s := range cl.servers {
		s.drain()
	}
	cl.log.Info("closed")
	return nil
}

// now is a monotonic clock in ns, never 0 (0 means "not sent").
func (cl *Client) now() int64 { return int64(time.Since(cl.epoch)) + 1 }

func (cl *Client) rebuildUnavailable() {
	var causes []error
	for _, s := range cl.servers {
		if p := s.lastErr.Load(); p != nil {
			causes = append(causes, *p)
		}
	}
	cl.unavail.Store(newUnavailable(causes))
}

// maxRequestPayload keeps a request with an SKI within the body limit.
const maxRequestPayload = keyless.MaxBodyLen - (keyless.ItemHeaderLen + 1) - keyless.ItemHeaderLen - (keyless.ItemHeaderLen + len(keyless.SKI{}))

// Do sends one request and waits for its result: op, the key's SKI and
// the payload as KEYLESS.md defines them. The result is a new slice; an
// error answer is a *keyless.RemoteError. Sign and Decrypt of Signer are
// built on it.
func (cl *Client) Do(op keyless.Op, ski keyless.SKI, payload []byte) ([]byte, error) {
	if err := checkRequest(op, payload); err != nil {
		return nil, err
	}
	c, err := cl.submit(op, ski, payload, nil, nil, cl.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return cl.wait(c, true)
}

// DoAsync sends one request and returns without waiting. If it returns an
// error, the request was refused (bad arguments, ErrOverloaded,
// ErrUnavailable, ErrClosed) and done is never called. Otherwise done is
// called exactly once, on a client goroutine (a connection's reader, a
// timer, or a maintainer), never on the caller's: a caller that owns an
// event loop hands the result back to it itself (gnet: Execute), and done
// must return quickly because it holds up that connection's answers.
//
// res is the result and is valid only until done returns: copy it to
// keep it. payload is copied before DoAsync returns.
func (cl *Client) DoAsync(op keyless.Op, ski keyless.SKI, payload []byte, done func(res []byte, err error)) error {
	if done == nil {
		return errors.New("keyless client: DoAsync needs a done function")
	}
	if err := checkRequest(op, payload); err != nil {
		return err
	}
	_, err := cl.submit(op, ski, payload, done, nil, cl.cfg.RequestTimeout)
	return err
}

func checkRequest(op keyless.Op, payload []byte) error {
	if err := op.CheckRequest(); err != nil {
		return fmt.Errorf("keyless client: cannot send opcode %v: %w", op, err)
	}
	if len(payload) > maxRequestPayload {
		return fmt.Errorf("%w: payload of %d bytes, at most %d fit", keyless.ErrTooLarge, len(payload), maxRequestPayload)
	}
	return nil
}

// submit starts a call. With pinned set it goes to that connection only
// (pings); otherwise to the best server.
func (cl *Client) submit(op keyless.Op, ski keyless.SKI, payload []byte, done func([]byte, error), pinned *conn, timeout time.Duration) (*call, error) {
	if cl.closing.Load() {
		cl.noServer.request(op, resultClosed)
		return nil, ErrClosed
	}
	c := cl.pool.Get().(*call)
	c.op, c.ski, c.done, c.pinned = op, ski, done, pinned
	c.in = append(c.in[:0], payload...)
	c.payload = c.in
	c.start = time.Now()
	c.state.Store(statePending)
	c.refs.Store(3)
	c.timer.Reset(timeout)
	var err error
	if pinned != nil {
		c.srv.Store(pinned.srv)
		select {
		case pinned.direct <- c:
		default:
			err = errors.New("keyless client: a ping is already waiting on this connection")
		}
	} else {
		err = cl.enqueue(c, nil)
	}
	if err == nil {
		return c, nil
	}
	if !c.state.CompareAndSwap(statePending, stateDone) {
		// The timer went off first and delivered; done has been or will
		// be called, so this is not a refusal.
		c.release() // the transport's
		return c, nil
	}
	if c.timer.Stop() {
		c.refs.Add(-1)
	}
	m := cl.noServer
	if s := c.srv.Load(); s != nil {
		m = s.m
	}
	m.request(op, resultOf(err))
	c.refs.Add(-1) // the transport's
	c.release()    // the owner's
	return nil, err
}

// wait blocks until c is delivered; keep copies the result out.
func (cl *Client) wait(c *call, keep bool) ([]byte, error) {
	<-c.wake
	err := c.err
	var res []byte
	if err == nil && keep {
		res = bytes.Clone(c.out)
	}
	c.release()
	return res, err
}

func resultOf(err error) int {
	switch {
	case errors.Is(err, ErrOverloaded):
		return resultOverloaded
	case errors.Is(err, ErrUnavailable):
		return resultUnavailable
	case errors.Is(err, ErrClosed):
		return resultClosed
	case errors.Is(err, ErrTimeout):
		return resultTimeout
	}
	return resultTransport
}

// enqueue puts c in the queue of the best routable server other than
// exclude; if that queue is full, in any other routable one with room.
func (cl *Client) enqueue(c *call, exclude *server) error {
	var best *server
	var bestScore float64
	for _, s := range cl.servers {
		if s == exclude || !s.routable() {
			continue
		}
		if sc := s.score(); best == nil || sc < bestScore {
			best, bestScore = s, sc
		}
	}
	if best == nil {
		return cl.unavail.Load()
	}
	if cl.offer(best, c) {
		return nil
	}
	for _, s := range cl.servers {
		if s != best && s != exclude && s.routable() && cl.offer(s, c) {
			return nil
		}
	}
	return ErrOverloaded
}

func (cl *Client) offer(s *server, c *call) bool {
	c.srv.Store(s)
	s.outstanding.Add(1)
	select {
	case s.queue <- c:
		if !s.routable() {
			s.kick() // it went down meanwhile: let its maintainer drain
		}
		return true
	default:
		s.outstanding.Add(-1)
		return false
	}
}

// retry handles a call whose connection failed: once more on a fresh
// connection, of another server if one is up, if it was sent only once;
// else the connection's error.
func (cl *Client) retry(c *call, from *server, cause error) {
	switch {
	case c.isDone():
	case cl.closing.Load():
		c.finish(nil, ErrClosed, resultClosed)
	case c.pinned != nil || c.attempts >= 2:
		c.finish(nil, &connError{server: from.name, err: cause}, resultTransport)
	default:
		if c.attempts > 0 {
			from.m.retries.Inc()
		}
		// Another server first: what broke one connection may well break
		// the others to the same server (a restart, a network cut).
		err := cl.enqueue(c, from)
		if errors.Is(err, ErrUnavailable) {
			err = cl.enqueue(c, nil)
		}
		if err == nil {
			return
		}
		c.finish(nil, err, resultOf(err))
	}
	c.release()
}

// reroute moves a queued call, never sent from there, away from a server
// that cannot take it.
func (cl *Client) reroute(c *call, from *server) {
	switch {
	case c.isDone():
	case cl.closing.Load():
		c.finish(nil, ErrClosed, resultClosed)
	default:
		err := cl.enqueue(c, from)
		if err == nil {
			return
		}
		c.finish(nil, err, resultOf(err))
	}
	c.release()
}

// ServerStatus describes one key server as the client sees it.
type ServerStatus struct {
	Name        string
	Addr        string
	Breaker     string // "closed", "half-open" or "open"
	Conns       int
	Outstanding int           // requests queued or in flight
	RTT         time.Duration // moving average; 0 before the first
	LastErr     error         // last failure, nil if none yet
}

// Servers reports the state of every key server, in configuration order.
func (cl *Client) Servers() []ServerStatus {
	out := make([]ServerStatus, 0, len(cl.servers))
	for _, s := range cl.servers {
		st := ServerStatus{Name: s.name, Addr: s.addr, Breaker: breakerName(s.br.state.Load()),
			Conns: int(s.live.Load()), Outstanding: int(s.outstanding.Load()), RTT: time.Duration(s.rtt.Load())}
		if p := s.lastErr.Load(); p != nil {
			st.LastErr = *p
		}
		out = append(out, st)
	}
	return out
}
