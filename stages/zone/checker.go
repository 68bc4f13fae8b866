package zone

import (
	"container/heap"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// result is the outcome of one active health check.
type result uint8

const (
	resultOK      result = iota // 2xx or 3xx in time
	resultStatus                // any other status
	resultTimeout               // no response head within Health.Timeout
	resultError                 // connect refused, reset, malformed response
	numResults
)

var resultNames = [numResults]string{"ok", "bad_status", "timeout", "error"}

const (
	// checkWorkers bounds the health checks in flight, and so the
	// checker's sockets and goroutines, whatever the number of origins.
	checkWorkers = 32
	// sweepEvery is how often origins of zones without a health path are
	// looked at for readmission.
	sweepEvery = time.Second
	userAgent  = "rampart-health-check/1"
)

// Checker keeps the health of one Table's origins on its own goroutines,
// never on an event loop: a scheduler, at most 32 workers sending
// HTTP/1.1 health checks (one connection per check, no keep-alive), and a
// sweeper that readmits passively failed origins of zones without a
// health path after their Health.Interval.
//
// Transitions are counted on the Origin and logged here: Warn "origin
// down", Info "origin up" and "origin readmitted", with source "active"
// (this checker's checks) or "passive" (the proxy's MarkFailure and
// MarkSuccess, logged when next seen).
//
// A reload makes a new Table and a new Checker: Start the new one (after
// Table.CopyHealth) and Stop the old one.
type Checker struct {
	table      *Table
	logger     *slog.Logger
	rt         http.RoundTripper
	workers    int
	sweepEvery time.Duration

	mu    sync.Mutex
	queue targetHeap // checks not in flight, by due time; guarded by mu
	wake  chan struct{}

	startOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// target is one origin under active checks. A worker owns it while its
// check is in flight; the queue owns it otherwise.
type target struct {
	o        *Origin
	url      string
	host     string
	due      time.Time
	loggedUp bool // the state last logged, to log each transition once
}

func newTarget(o *Origin) *target {
	return &target{
		o:        o,
		url:      "http://" + o.name + o.Zone.Settings.Health.Path,
		host:     o.Zone.healthHost,
		loggedUp: o.Healthy(),
	}
}

// NewChecker returns a Checker for t's origins; Start runs it.
func NewChecker(t *Table, logger *slog.Logger) *Checker {
	return &Checker{
		table:      t,
		logger:     logger.With("component", "stages/zone"),
		rt:         newTransport(),
		workers:    checkWorkers,
		sweepEvery: sweepEvery,
		wake:       make(chan struct{}, 1),
	}
}

// newTransport is the checks' own HTTP/1.1 transport: a new connection
// per check, no proxy from the environment, no compression, small heads.
// The check's context bounds dial, write and response head together.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// Start begins checking in the background and returns at once; the
// checks stop when ctx ends or Stop is called. Active checks of an
// origin start at a random point of its first interval, so that checks
// spread out. Only the first call does anything.
func (c *Checker) Start(ctx context.Context) {
	c.startOnce.Do(func() {
		ctx, c.cancel = context.WithCancel(ctx)
		now := time.Now()
		var passive []*Origin
		for _, z := range c.table.zones {
			h := z.Settings.Health
			if h.Path == "" {
				passive = append(passive, z.Origins...)
				continue
			}
			for _, o := range z.Origins {
				tg := newTarget(o)
				tg.due = now.Add(rand.N(h.Interval))
				c.queue = append(c.queue, tg)
			}
		}
		heap.Init(&c.queue)
		active := len(c.queue)
		c.logger.Info("health checks started", slog.Int("active_origins", active),
			slog.Int("passive_origins", len(passive)))
		if n := min(c.workers, active); n > 0 {
			work := make(chan *target)
			c.wg.Go(func() { c.schedule(ctx, work) })
			for range n {
				c.wg.Go(func() { c.work(ctx, work) })
			}
		}
		if len(passive) > 0 {
			loggedUp := make([]bool, len(passive))
			for i, o := range passive {
				loggedUp[i] = o.Healthy()
			}
			c.wg.Go(func() { c.sweep(ctx, passive, loggedUp) })
		}
	})
}

// Stop ends the checks, abandoning those in flight (they count as
// nothing), and waits for the goroutines to return.
func (c *Checker) Stop() {
	c.startOnce.Do(func() {}) // a Start after Stop does nothing
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// schedule hands due targets to the workers. Handing out blocks while
// every worker is busy: checks then run late rather than pile up.
func (c *Checker) schedule(ctx context.Context, work chan<- *target) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*target
	for {
		now := time.Now()
		next := time.Hour
		due = due[:0]
		c.mu.Lock()
		for len(c.queue) > 0 && !c.queue[0].due.After(now) {
			due = append(due, heap.Pop(&c.queue).(*target))
		}
		if len(c.queue) > 0 {
			next = c.queue[0].due.Sub(now)
		}
		c.mu.Unlock()
		for _, tg := range due {
			select {
			case work <- tg:
			case <-ctx.Done():
				return
			}
		}
		if len(due) > 0 {
			continue // time passed while handing out
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.wake:
		}
	}
}

func (c *Checker) work(ctx context.Context, work <-chan *target) {
	for {
		select {
		case <-ctx.Done():
			return
		case tg := <-work:
			c.check(ctx, tg)
			c.mu.Lock()
			tg.due = time.Now().Add(tg.o.Zone.Settings.Health.Interval)
			heap.Push(&c.queue, tg)
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

// check runs one health check of tg and records it.
func (c *Checker) check(ctx context.Context, tg *target) {
	o := tg.o
	res, detail := c.probe(ctx, tg)
	if ctx.Err() != nil {
		return // stopping: not the origin's fault
	}
	o.checks[res].Add(1)
	var changed bool
	if res == resultOK {
		changed = o.MarkSuccess()
	} else {
		changed = o.MarkFailure()
	}
	up := o.Healthy()
	if up == tg.loggedUp {
		return
	}
	tg.loggedUp = up
	attrs := []slog.Attr{slog.String("zone", o.Zone.Name), slog.String("origin", o.name)}
	if changed {
		attrs = append(attrs, slog.String("source", "active"), slog.String("result", resultNames[res]))
		if detail != "" {
			attrs = append(attrs, slog.String("detail", detail))
		}
	} else {
		attrs = append(attrs, slog.String("source", "passive"))
	}
	c.logTransition(up, attrs)
}

func (c *Checker) logTransition(up bool, attrs []slog.Attr) {
	if up {
		c.logger.LogAttrs(context.Background(), slog.LevelInfo, "origin up", attrs...)
	} else {
		c.logger.LogAttrs(context.Background(), slog.LevelWarn, "origin down", attrs...)
	}
}

// probe sends one GET of the health path and classifies the answer;
// detail says what went wrong, for the log.
func (c *Checker) probe(ctx context.Context, tg *target) (res result, detail string) {
	timeout := tg.o.Zone.Settings.Health.Timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.url, nil)
	if err != nil {
		return resultError, err.Error()
	}
	if tg.host != "" {
		req.Host = tg.host
	}
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		var ne net.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return resultTimeout, "no response within " + timeout.String()
		}
		return resultError, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return resultOK, ""
	}
	return resultStatus, "status " + strconv.Itoa(resp.StatusCode)
}

// sweep logs the proxy's verdicts on origins of zones without a health
// path and readmits, on probation, those down for their Health.Interval.
// loggedUp holds the state last logged of each origin.
func (c *Checker) sweep(ctx context.Context, origins []*Origin, loggedUp []bool) {
	ticker := time.NewTicker(c.sweepEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now := time.Now()
		for i, o := range origins {
			attrs := func() []slog.Attr {
				return []slog.Attr{slog.String("zone", o.Zone.Name), slog.String("origin", o.name), slog.String("source", "passive")}
			}
			if up := o.Healthy(); up != loggedUp[i] {
				loggedUp[i] = up
				c.logTransition(up, attrs())
			}
			if !loggedUp[i] && o.readmit(now.Add(-o.Zone.Settings.Health.Interval)) {
				loggedUp[i] = true
				c.logger.LogAttrs(ctx, slog.LevelInfo, "origin readmitted", attrs()...)
			}
		}
	}
}

// targetHeap orders targets by due time (container/heap).
type targetHeap []*target

func (h targetHeap) Len() int           { return len(h) }
func (h targetHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h targetHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *targetHeap) Push(x any)        { *h = append(*h, x.(*target)) }
func (h *targetHeap) Pop() any {
	old := *h
	tg := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return tg
}
