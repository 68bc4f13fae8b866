package origin

import (
	"errors"
	"log/slog"

	"github.com/rampart-edge/rampart/internal/http1"
	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
)

// Options configure the stage.
type Options struct {
	// Loops is the number of event loops of the engine.
	Loops int
	// Limits bound origin response heads.
	Limits http1.Limits
	// Via is the edge's pseudonym in Via headers.
	Via string
	// Proto is the scheme clients used ("http" until the TLS stage).
	Proto   string
	Logger  *slog.Logger
	Metrics *Metrics
	// MaxWaiting bounds requests per loop and origin that wait for a
	// connection when the pool is at its limit; beyond it they get 503.
	MaxWaiting int
}

// Stage forwards exchanges to origins.
type Stage struct {
	opts    Options
	parser  *http1.Parser
	loops   []*loopState
	log     *slog.Logger
	metrics *Metrics
}

// New returns the stage.
func New(opts Options) (*Stage, error) {
	if opts.Loops < 1 {
		return nil, errors.New("origin: Loops must be at least 1")
	}
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	if opts.Via == "" {
		opts.Via = "rampart"
	}
	if opts.Proto == "" {
		opts.Proto = "http"
	}
	if opts.MaxWaiting == 0 {
		opts.MaxWaiting = 1024
	}
	parser, err := http1.NewParser(opts.Limits)
	if err != nil {
		return nil, err
	}
	s := &Stage{opts: opts, parser: parser, loops: make([]*loopState, opts.Loops), log: opts.Logger, metrics: opts.Metrics}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	return s, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return "origin" }

// loopState is what one loop owns: only that loop touches it.
type loopState struct {
	s        *Stage
	loop     pipeline.Loop
	pools    map[*zone.Origin]*pool
	free     []*task
	scratch  []byte
	rr       uint32 // rotating start among a zone's origins
	idleFree []*idleConn
	pipeFree []*pipe
}

func (s *Stage) state(l pipeline.Loop) *loopState {
	i := l.Index()
	if ls := s.loops[i]; ls != nil {
		return ls
	}
	ls := &loopState{s: s, loop: l, pools: map[*zone.Origin]*pool{}, scratch: make([]byte, 0, 8<<10)}
	s.loops[i] = ls
	return ls
}

func (ls *loopState) pool(z *zone.Zone, o *zone.Origin) *pool {
	p := ls.pools[o]
	if p == nil {
		p = &pool{ls: ls, zone: z, origin: o}
		ls.pools[o] = p
	}
	return p
}

func (ls *loopState) getTask() *task {
	if n := len(ls.free); n > 0 {
		t := ls.free[n-1]
		ls.free = ls.free[:n-1]
		t.free = false
		return t
	}
	t := &task{ls: ls, head: make([]byte, 0, 2<<10), resp: http1.NewResponse(ls.s.opts.Limits)}
	t.timer.Init(t, 0)
	return t
}

func (ls *loopState) putTask(t *task) {
	if t.free {
		// Two owners releasing one task would hand it to two exchanges.
		ls.s.log.Error("origin: task released twice", "loop", ls.loop.Index())
		return
	}
	t.free = true
	ls.loop.Cancel(&t.timer)
	t.x, t.zone, t.origin, t.pool, t.up, t.pipe, t.dial = nil, nil, nil, nil, nil, nil, nil
	t.fresh, t.headPending = false, false
	t.gen++
	ls.free = append(ls.free, t)
}

// Serve implements pipeline.Stage.
func (s *Stage) Serve(x *pipeline.Exchange) pipeline.Action {
	z := x.Zone
	if z == nil || len(z.Origins) == 0 {
		x.Status, x.Body = 502, noOrigin
		return pipeline.Respond
	}
	ls := s.state(x.Loop())
	t := ls.getTask()
	if err := t.start(x, z); err != nil {
		ls.putTask(t)
		x.Status, x.Body, x.Close = 400, []byte(err.Error()+"\n"), true
		return pipeline.Respond
	}
	x.SetParked(t)
	t.inServe = true
	t.connect()
	t.inServe = false
	return pipeline.Park
}

var noOrigin = []byte("no origin configured for this host\n")

// pickOrigin returns the next origin to try: healthy ones first, in zone
// order from a rotating start, never one already tried.
func (ls *loopState) pickOrigin(z *zone.Zone, tried uint64) *zone.Origin {
	n := len(z.Origins)
	start := int(ls.rr % uint32(n))
	ls.rr++
	var fallback *zone.Origin
	for i := 0; i < n; i++ {
		j := (start + i) % n
		if j < 64 && tried&(1<<j) != 0 {
			continue
		}
		o := z.Origins[j]
		if o.Healthy() {
			return o
		}
		if fallback == nil {
			fallback = o
		}
	}
	// Every untried origin is marked down: try one anyway rather than
	// fail a request the health checker may be wrong about.
	return fallback
}

func originIndex(z *zone.Zone, o *zone.Origin) int {
	for i, c := range z.Origins {
		if c == o {
			return i
		}
	}
	return -1
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// Timer kinds of a task.
const (
	timerConnect uint8 = iota + 1
	timerResponse
	timerIdle
	timerClientStall
)
