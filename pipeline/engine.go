package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/http1"
	"github.com/rampart-edge/rampart/pipeline/steer"
)

// Options assemble an engine.
type Options struct {
	Config Config
	Stages []Stage
	// Flows and Visitors are updated by every connection when set.
	Flows    *flowtable.Flows
	Visitors *flowtable.Visitors
	Logger   *slog.Logger
	Metrics  *Metrics
	// Via is the pseudonym in Via headers and error pages.
	Via string
}

// Engine runs the pipeline on gnet event loops.
type Engine struct {
	cfg      Config
	stages   []Stage
	flows    *flowtable.Flows
	visitors *flowtable.Visitors
	log      *slog.Logger
	metrics  *Metrics
	parser   *http1.Parser
	via      string

	loops      []atomic.Pointer[loop]
	nloops     int
	gloops     []gnet.EventLoop // set once the engine runs
	gloopsMu   sync.Mutex
	bootEngine *gnet.Engine

	listenerConns []atomic.Int64 // by listener index
	listenerIndex map[netip.AddrPort]int

	draining  atomic.Bool
	active    atomic.Int64 // client connections
	inFlight  atomic.Int64 // exchanges between head and finish
	booted    chan gnet.Engine
	stopped   chan struct{}
	runErr    error
	startOnce sync.Once
	bootErr   error         // set before the engine is reported booted
	kick      chan struct{} // wakes the ticker when a loop pauses a connection
	waiting   atomic.Int64  // paused and lingering connections over all loops
}

// New validates the configuration and prepares an engine; Start runs it.
func New(opts Options) (*Engine, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline config: %w", err)
	}
	addrs, err := opts.Config.ListenAddrs()
	if err != nil {
		return nil, err
	}
	parser, err := http1.NewParser(opts.Config.Limits())
	if err != nil {
		return nil, err
	}
	n := opts.Config.Loops
	if n == 0 {
		n = runtime.NumCPU()
	}
	e := &Engine{
		cfg:           opts.Config,
		stages:        opts.Stages,
		flows:         opts.Flows,
		visitors:      opts.Visitors,
		log:           opts.Logger,
		metrics:       opts.Metrics,
		parser:        parser,
		via:           opts.Via,
		loops:         make([]atomic.Pointer[loop], n),
		nloops:        n,
		listenerConns: make([]atomic.Int64, len(addrs)),
		listenerIndex: make(map[netip.AddrPort]int, len(addrs)),
		booted:        make(chan gnet.Engine, 1),
		kick:          make(chan struct{}, 1),
		stopped:       make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.metrics == nil {
		e.metrics = NewMetrics(nil)
	}
	if e.via == "" {
		e.via = "rampart"
	}
	for i, a := range addrs {
		e.listenerIndex[a] = i
	}
	return e, nil
}

// Start runs the engine in the background and returns once every listener
// accepts connections.
func (e *Engine) Start() error {
	addrs := make([]string, len(e.cfg.Listeners))
	for i, l := range e.cfg.Listeners {
		addrs[i] = "tcp://" + l
	}
	go func() {
		defer close(e.stopped)
		e.runErr = gnet.Rotate(&handler{e: e}, addrs,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(e.nloops),
			gnet.WithReusePort(true),
			gnet.WithLockOSThread(e.cfg.Steering != "off"),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReadBufferCap(64<<10),
			gnet.WithLogger(gnetLogger{e.log}),
		)
	}()
	select {
	case eng := <-e.booted:
		if e.bootErr != nil {
			// Without its loops' state the engine would run with no
			// timers and no backpressure: refuse to serve.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = eng.Stop(ctx)
			return fmt.Errorf("pipeline: %w", e.bootErr)
		}
		if e.cfg.Steering == "cpu" {
			if err := e.attachSteering(eng); err != nil {
				e.log.Warn("cpu steering unavailable; the kernel's reuseport hash picks loops", "err", err)
			}
		}
		return nil
	case <-e.stopped:
		if e.runErr == nil {
			e.runErr = errors.New("engine stopped during start")
		}
		return fmt.Errorf("pipeline: %w", e.runErr)
	}
}

func (e *Engine) attachSteering(eng gnet.Engine) error {
	prog, err := steer.Program(e.cpuToLoop())
	if err != nil {
		return err
	}
	for _, l := range e.cfg.Listeners {
		fd, err := eng.DupListener("tcp", l)
		if err != nil {
			return fmt.Errorf("listener %s: %w", l, err)
		}
		err = steer.Attach(fd, prog)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("listener %s: %w", l, err)
		}
	}
	return nil
}

// cpuToLoop maps each CPU to the loop pinned there (loop i on CPU i mod
// CPUs).
func (e *Engine) cpuToLoop() []int {
	cpus := runtime.NumCPU()
	m := make([]int, cpus)
	for c := range m {
		m[c] = c % e.nloops
	}
	return m
}

// Shutdown stops accepting, lets in-flight exchanges finish until ctx or
// the configured shutdown timeout ends, then closes every connection.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.draining.Store(true)
	deadline := time.Now().Add(e.cfg.ShutdownTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Idle keep-alive connections close now; busy ones close after their
	// exchange (finish sees draining).
	e.eachLoop(func(l *loop) { l.closeIdle() })
	for e.inFlight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n := e.inFlight.Load(); n > 0 {
		e.log.Warn("shutdown deadline passed with exchanges in flight", "in_flight", n)
	}
	eng, err := e.engine()
	if err != nil {
		return err
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Stop(stopCtx); err != nil {
		return fmt.Errorf("pipeline stop: %w", err)
	}
	<-e.stopped
	return nil
}

// Done is closed when the engine has stopped.
func (e *Engine) Done() <-chan struct{} { return e.stopped }

// Active is the number of open client connections.
func (e *Engine) Active() int64 { return e.active.Load() }

// InFlight is the number of exchanges between a complete head and their end.
func (e *Engine) InFlight() int64 { return e.inFlight.Load() }

func (e *Engine) engine() (gnet.Engine, error) {
	e.gloopsMu.Lock()
	defer e.gloopsMu.Unlock()
	if e.bootEngine == nil {
		return gnet.Engine{}, errors.New("pipeline: engine not started")
	}
	return *e.bootEngine, nil
}

// eachLoop runs fn on every loop's own goroutine and waits for all.
func (e *Engine) eachLoop(fn func(l *loop)) {
	e.gloopsMu.Lock()
	gl := e.gloops
	e.gloopsMu.Unlock()
	var wg sync.WaitGroup
	for _, el := range gl {
		wg.Add(1)
		err := el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			if l, err := e.loopOf(el); err == nil {
				fn(l)
			}
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	wg.Wait()
}

// loopOf returns the state of a loop, creating it on first use. It runs on
// the loop itself, so creation needs no lock.
func (e *Engine) loopOf(el gnet.EventLoop) (*loop, error) {
	idx, err := gnetLoopIndex(el)
	if err != nil {
		return nil, err
	}
	if idx < 0 || idx >= len(e.loops) {
		return nil, fmt.Errorf("gnet loop index %d out of 0..%d", idx, len(e.loops)-1)
	}
	if l := e.loops[idx].Load(); l != nil {
		return l, nil
	}
	l, err := newLoop(e, idx, el)
	if err != nil {
		return nil, err
	}
	e.loops[idx].Store(l)
	return l, nil
}

// handler adapts gnet's callbacks to connections.
type handler struct {
	gnet.BuiltinEventEngine
	e *Engine
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.e.gloopsMu.Lock()
	h.e.bootEngine = &eng
	h.e.gloopsMu.Unlock()
	return gnet.None
}

// OnTick runs once, on gnet's ticker goroutine, which gnet starts only
// after every loop is registered: the first point where the loops can be
// read without racing gnet. It creates (and pins) every loop, then hands
// ticking to the engine's own ticker and sleeps for good.
func (h *handler) OnTick() (time.Duration, gnet.Action) {
	e := h.e
	e.startOnce.Do(func() {
		e.gloopsMu.Lock()
		eng := *e.bootEngine
		e.gloopsMu.Unlock()
		gl, err := gnetLoops(eng)
		if err != nil {
			e.bootErr = fmt.Errorf("cannot reach gnet's event loops (is gnet still v2.9.4?): %w", err)
			e.booted <- eng
			return
		}
		e.gloopsMu.Lock()
		e.gloops = gl
		e.gloopsMu.Unlock()
		// Create (and pin) every loop before reporting the engine started.
		e.eachLoop(func(*loop) {})
		for i := range e.loops {
			if e.loops[i].Load() == nil {
				var why error = errors.New("gnet has fewer loops than configured")
				if i < len(gl) {
					_, why = gnetPollerFD(gl[i])
				}
				e.bootErr = fmt.Errorf("event loop %d has no state (is gnet still v2.9.4?): %v", i, why)
				e.booted <- eng
				return
			}
		}
		go e.runTicker(gl)
		e.booted <- eng
	})
	return 24 * time.Hour, gnet.None
}

// fastTick is the tick while a connection waits for its peer to drain:
// resuming it is what limits a transfer to a client slower than its origin
// (half the buffer limit per tick), so it must not wait a whole tick.
const fastTick = time.Millisecond

// runTicker drives every loop's timer wheel and paused connections: every
// Tick, or every fastTick while any loop has a paused or lingering
// connection. A loop that pauses one kicks it awake.
func (e *Engine) runTicker(gl []gnet.EventLoop) {
	t := time.NewTimer(e.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case <-e.kick:
		case <-t.C:
		}
		for _, el := range gl {
			if l, _ := e.loopIndexed(el); l != nil {
				if err := el.Execute(context.Background(), l.tickRunnable); err != nil {
					return // the engine is shutting down
				}
			}
		}
		d := e.cfg.Tick
		if e.waiting.Load() > 0 {
			d = min(d, fastTick)
		}
		t.Reset(d)
	}
}

func (e *Engine) loopIndexed(el gnet.EventLoop) (*loop, error) {
	idx, err := gnetLoopIndex(el)
	if err != nil || idx >= len(e.loops) {
		return nil, err
	}
	return e.loops[idx].Load(), nil
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if u, ok := c.Context().(*upstreamConn); ok {
		u.opened(c)
		return nil, gnet.None
	}
	l, err := h.e.loopOf(c.EventLoop())
	if err != nil {
		h.e.log.Error("pipeline: loop state", "err", err)
		return nil, gnet.Close
	}
	return nil, l.accept(c)
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *clientConn:
		return x.onTraffic()
	case *upstreamConn:
		return x.onTraffic()
	}
	return gnet.Close
}

func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	switch x := c.Context().(type) {
	case *clientConn:
		x.onClose(err)
	case *upstreamConn:
		x.onClose(err)
	}
	return gnet.None
}

// gnetLogger sends gnet's own messages to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Info("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }

func addrPort(a net.Addr) netip.AddrPort {
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(t.IP)
		return netip.AddrPortFrom(ip.Unmap(), uint16(t.Port))
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
