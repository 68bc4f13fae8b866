package zone

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer collects a Checker's log lines from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// origin is an httptest server answering the health path with a status
// the test sets (or after a delay), recording what it was sent.
type origin struct {
	srv      *httptest.Server
	status   atomic.Int32
	delay    atomic.Int64 // nanoseconds before answering
	requests atomic.Int32
	mu       sync.Mutex
	last     *http.Request
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	o.status.Store(http.StatusOK)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		o.mu.Lock()
		o.last = r
		o.mu.Unlock()
		if d := time.Duration(o.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if s := int(o.status.Load()); s >= 300 && s < 400 {
			http.Redirect(w, r, "/elsewhere", s)
			return
		}
		w.WriteHeader(int(o.status.Load()))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) addr() string { return o.srv.Listener.Addr().String() }

// checkedTable is one zone whose origins are addrs, checked with h (and
// millisecond timings no profile may use).
func checkedTable(h Health, addrs ...string) *Table {
	return build(Config{Zones: []Spec{{
		Name: "shop", Hosts: []string{"*.shop.example", "shop.example"}, Origins: addrs,
		Settings: Settings{Health: h},
	}}})
}

func testChecker(t *testing.T, tb *Table) (*Checker, *lockedBuffer) {
	logs := &lockedBuffer{}
	c := NewChecker(tb, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(c.Stop)
	return c, logs
}

func TestCheckerFallRise(t *testing.T) {
	srv := newOrigin(t)
	tb := checkedTable(Health{Path: "/healthz?deep=1", Interval: time.Second, Timeout: time.Second, Fall: 3, Rise: 2}, srv.addr())
	c, logs := testChecker(t, tb)
	o := tb.Zones()[0].Origins[0]
	tg := newTarget(o)
	ctx := t.Context()

	c.check(ctx, tg)
	srv.mu.Lock()
	r := srv.last
	srv.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.RequestURI() != "/healthz?deep=1" || r.Host != "shop.example" ||
		r.UserAgent() != userAgent || r.Proto != "HTTP/1.1" || !r.Close {
		t.Errorf("check sent %s %s host %q agent %q proto %s close %v", r.Method, r.URL, r.Host, r.UserAgent(), r.Proto, r.Close)
	}

	srv.status.Store(http.StatusServiceUnavailable)
	for i := 1; i <= 3; i++ {
		c.check(ctx, tg)
		if got, want := o.Healthy(), i < 3; got != want {
			t.Fatalf("after %d failed checks: healthy %v, want %v", i, got, want)
		}
	}
	if !strings.Contains(logs.String(), `level=WARN msg="origin down" component=stages/zone zone=shop origin=`+o.String()+` source=active result=bad_status detail="status 503"`) {
		t.Errorf("no down transition logged:\n%s", logs)
	}

	srv.status.Store(http.StatusFound) // 3xx is up
	c.check(ctx, tg)
	if o.Healthy() {
		t.Fatal("up after one good check, rise is 2")
	}
	c.check(ctx, tg)
	if !o.Healthy() {
		t.Fatal("still down after two good checks")
	}
	if !strings.Contains(logs.String(), `level=INFO msg="origin up" component=stages/zone zone=shop origin=`+o.String()+` source=active result=ok`) {
		t.Errorf("no up transition logged:\n%s", logs)
	}
	if got := o.checks[resultOK].Load(); got != 3 {
		t.Errorf("%d ok checks, want 3", got)
	}
	if got := o.checks[resultStatus].Load(); got != 3 {
		t.Errorf("%d bad_status checks, want 3", got)
	}
	if up, dn := o.Transitions(); up != 1 || dn != 1 {
		t.Errorf("transitions %d up, %d down", up, dn)
	}
	if n := strings.Count(logs.String(), "msg=\"origin "); n != 2 {
		t.Errorf("%d transitions logged, want 2:\n%s", n, logs)
	}
}

func TestCheckerTimeoutAndErrors(t *testing.T) {
	slow := newOrigin(t)
	slow.delay.Store(int64(5 * time.Second))
	// A listener that accepts nothing: connections are refused once closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	tb := checkedTable(Health{Path: "/", Interval: time.Second, Timeout: 100 * time.Millisecond, Fall: 1, Rise: 1}, slow.addr(), refused)
	c, logs := testChecker(t, tb)
	for i, want := range []result{resultTimeout, resultError} {
		o := tb.Zones()[0].Origins[i]
		start := time.Now()
		c.check(t.Context(), newTarget(o))
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("check of %v took %v with a 100ms timeout", o, took)
		}
		if o.Healthy() || o.checks[want].Load() != 1 {
			t.Errorf("%v: healthy %v, checks %v, want one %s", o, o.Healthy(), &o.checks, resultNames[want])
		}
	}
	if !strings.Contains(logs.String(), `result=timeout detail="no response within 100ms"`) ||
		!strings.Contains(logs.String(), `result=error detail=`) {
		t.Errorf("logs:\n%s", logs)
	}
}

// TestCheckerStop: a check cut short by Stop counts as nothing.
func TestCheckerStopMidCheck(t *testing.T) {
	slow := newOrigin(t)
	slow.delay.Store(int64(5 * time.Second))
	tb := checkedTable(Health{Path: "/", Interval: time.Second, Timeout: 10 * time.Second, Fall: 1, Rise: 1}, slow.addr())
	c, _ := testChecker(t, tb)
	o := tb.Zones()[0].Origins[0]
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	c.check(ctx, newTarget(o))
	if !o.Healthy() || o.checks[resultTimeout].Load()+o.checks[resultError].Load() != 0 {
		t.Errorf("an abandoned check counted: healthy %v", o.Healthy())
	}
}

// TestCheckerRuns drives the checker's own goroutines: down after fall
// failures, up after rise successes, on their schedule.
func TestCheckerRuns(t *testing.T) {
	a, b := newOrigin(t), newOrigin(t)
	tb := checkedTable(Health{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 2},
		a.addr(), b.addr())
	c, logs := testChecker(t, tb)
	c.workers = 1 // one worker must keep up with both origins
	oa, ob := tb.Zones()[0].Origins[0], tb.Zones()[0].Origins[1]
	c.Start(t.Context())
	c.Start(t.Context()) // no second set of goroutines

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("checks of both origins", func() bool { return a.requests.Load() >= 3 && b.requests.Load() >= 3 })
	a.status.Store(http.StatusInternalServerError)
	waitFor("a down", func() bool { return !oa.Healthy() })
	if !ob.Healthy() {
		t.Error("b went down with a")
	}
	if got := tb.Zones()[0].Next(0); got != ob {
		t.Errorf("Next picks %v while a is down", got)
	}
	a.status.Store(http.StatusNoContent)
	waitFor("a up", func() bool { return oa.Healthy() })
	c.Stop()
	n := a.requests.Load()
	time.Sleep(60 * time.Millisecond)
	if a.requests.Load() != n {
		t.Error("checks continue after Stop")
	}
	if oa.checks[resultStatus].Load() < 2 || oa.checks[resultOK].Load() < 5 {
		t.Errorf("checks of a: %d bad_status, %d ok", oa.checks[resultStatus].Load(), oa.checks[resultOK].Load())
	}
}

// TestCheckerPassive: a zone without a health path is never probed; its
// origins go down on the proxy's reports, the transition is logged, and
// they come back on probation after the interval.
func TestCheckerPassive(t *testing.T) {
	srv := newOrigin(t)
	tb := checkedTable(Health{Interval: 50 * time.Millisecond, Fall: 2, Rise: 2}, srv.addr())
	c, logs := testChecker(t, tb)
	c.sweepEvery = 5 * time.Millisecond
	o := tb.Zones()[0].Origins[0]
	c.Start(t.Context())
	o.MarkFailure()
	if !o.MarkFailure() {
		t.Fatal("two passive failures must take the origin down")
	}
	downAt := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for !o.Healthy() {
		if time.Now().After(deadline) {
			t.Fatalf("not readmitted; logs:\n%s", logs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if d := time.Since(downAt); d < 40*time.Millisecond {
		t.Errorf("readmitted after %v, before the 50ms interval", d)
	}
	if !o.MarkFailure() {
		t.Error("one failure must take a readmitted origin down again")
	}
	c.Stop()
	if srv.requests.Load() != 0 {
		t.Errorf("%d requests to an origin without a health path", srv.requests.Load())
	}
	want := []string{
		`level=WARN msg="origin down" component=stages/zone zone=shop origin=` + o.String() + ` source=passive`,
		`level=INFO msg="origin readmitted" component=stages/zone zone=shop origin=` + o.String() + ` source=passive`,
	}
	for _, w := range want {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("missing log %q in:\n%s", w, logs)
		}
	}
}

// TestCheckerLogsPassiveDown: on an actively checked origin, a down
// caused by the proxy is logged as passive at the next check.
func TestCheckerLogsPassiveDown(t *testing.T) {
	srv := newOrigin(t)
	srv.status.Store(http.StatusBadGateway)
	tb := checkedTable(Health{Path: "/", Interval: time.Second, Timeout: time.Second, Fall: 2, Rise: 2}, srv.addr())
	c, logs := testChecker(t, tb)
	o := tb.Zones()[0].Origins[0]
	tg := newTarget(o)
	o.MarkFailure()
	o.MarkFailure()
	c.check(t.Context(), tg)
	if !strings.Contains(logs.String(), `msg="origin down" component=stages/zone zone=shop origin=`+o.String()+` source=passive`) {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestStopWithoutStart(t *testing.T) {
	c := NewChecker(build(validConfig()), slog.New(slog.DiscardHandler))
	c.Stop()
	c.Start(t.Context()) // after Stop: nothing
	c.Stop()
}
