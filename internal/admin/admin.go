package admin

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

// Defaults for Options.
const (
	DefaultLimit         = 10000
	DefaultMaxTop        = 100000
	DefaultFlushInterval = 100 * time.Millisecond
)

// Options bound and tune the handlers; zero fields take the defaults.
type Options struct {
	// DefaultLimit is how many lines a query without limit= gets, so that
	// dumping a table of ten million flows has to be asked for.
	DefaultLimit int
	// MaxLimit bounds limit=. 0 leaves it unbounded, and limit=0 then
	// streams the whole table: memory stays constant (nothing is held),
	// only the walk takes time. Otherwise limit must be in 1..MaxLimit.
	MaxLimit int
	// MaxTop bounds top=: a ranked dump holds that many entries (about
	// 90 bytes each) until the walk ends.
	MaxTop int
	// FlushInterval is the longest time a streamed line waits in the
	// buffer, so that a reader sees a sparse filter's matches as they come.
	FlushInterval time.Duration
	// Now is the clock visitor rates are taken at.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = DefaultLimit
	}
	if o.MaxTop <= 0 {
		o.MaxTop = DefaultMaxTop
	}
	if o.MaxLimit > 0 {
		o.DefaultLimit = min(o.DefaultLimit, o.MaxLimit)
		o.MaxTop = min(o.MaxTop, o.MaxLimit)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Response headers besides the lines: the table's size when the dump
// started, and the most lines this query can get (0: no bound), so that a
// client can tell a dump cut by its limit from a whole table.
const (
	HeaderTableLen      = "Rampart-Table-Len"
	HeaderTableCapacity = "Rampart-Table-Capacity"
	HeaderLimit         = "Rampart-Limit"
)

// Flows serves GET /flows: the flow table as JSON lines of FlowRecord,
// filtered by the query (ParseFlowQuery). A bad query gets 400 and every
// problem in the body.
func Flows(t *flowtable.Flows, o Options) http.Handler {
	o = o.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		q, err := ParseFlowQuery(r.URL.RawQuery, o)
		if err != nil {
			badQuery(w, err)
			return
		}
		s := startStream(w, r, o, t.Len(), t.Capacity(), q.Limit)
		if s == nil {
			return
		}
		f := q.FlowFilter()
		keep := func(k *flowtable.FlowKey, v *flowtable.Flow) bool { return s.tick() && f.Match(k, v) }
		if q.Top > 0 {
			by, _ := flowtable.ParseFlowOrder(q.By)
			for _, e := range t.TopN(q.Top, keep, flowtable.FlowRank(by)) {
				if !s.tick() || !s.write(appendFlowJSON(s.buf[:0], &e.Key, &e.Value)) {
					break
				}
			}
		} else {
			n := 0
			t.Range(func(k *flowtable.FlowKey, v *flowtable.Flow) bool {
				if !keep(k, v) {
					return s.err == nil
				}
				n++
				return s.write(appendFlowJSON(s.buf[:0], k, v)) && (q.Limit == 0 || n < q.Limit)
			})
		}
		s.finish()
	})
}

// Visitors serves GET /visitors: the visitor table as JSON lines of
// VisitorRecord, filtered by the query (ParseVisitorQuery).
func Visitors(t *flowtable.Visitors, o Options) http.Handler {
	o = o.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		q, err := ParseVisitorQuery(r.URL.RawQuery, o)
		if err != nil {
			badQuery(w, err)
			return
		}
		now := o.Now()
		s := startStream(w, r, o, t.Len(), t.Capacity(), q.Limit)
		if s == nil {
			return
		}
		f := q.VisitorFilter()
		keep := func(k *flowtable.VisitorKey, v *flowtable.Visitor) bool { return s.tick() && f.Match(k, v) }
		sec := now.Unix()
		if q.Top > 0 {
			by, _ := flowtable.ParseVisitorOrder(q.By)
			for _, e := range t.TopN(q.Top, keep, flowtable.VisitorRank(by, now)) {
				if !s.tick() || !s.write(appendVisitorJSON(s.buf[:0], &e.Key, &e.Value, sec)) {
					break
				}
			}
		} else {
			n := 0
			t.Range(func(k *flowtable.VisitorKey, v *flowtable.Visitor) bool {
				if !keep(k, v) {
					return s.err == nil
				}
				n++
				return s.write(appendVisitorJSON(s.buf[:0], k, v, sec)) && (q.Limit == 0 || n < q.Limit)
			})
		}
		s.finish()
	})
}

func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method "+r.Method+" not allowed: use GET", http.StatusMethodNotAllowed)
	return false
}

func badQuery(w http.ResponseWriter, err error) {
	http.Error(w, "bad query: "+strings.ReplaceAll(err.Error(), "\n", "; "), http.StatusBadRequest)
}

// stream writes lines through a buffer, flushing it to the client at
// least every FlushInterval while lines come, and stops at the first write
// error or when the client goes away.
type stream struct {
	ctx   context.Context
	w     *bufio.Writer
	rc    *http.ResponseController
	every time.Duration
	last  time.Time
	walk  int
	buf   []byte
	err   error
}

// startStream sends the headers at once, so that a client sees the answer
// start even while a ranked dump walks a large table. It returns nil for
// HEAD.
func startStream(w http.ResponseWriter, r *http.Request, o Options, tableLen, capacity, limit int) *stream {
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(HeaderTableLen, strconv.Itoa(max(tableLen, 0)))
	h.Set(HeaderTableCapacity, strconv.Itoa(capacity))
	h.Set(HeaderLimit, strconv.Itoa(limit))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	s := &stream{ctx: r.Context(), w: bufio.NewWriterSize(w, 64<<10), rc: http.NewResponseController(w),
		every: o.FlushInterval, buf: make([]byte, 0, 512)}
	s.flush()
	return s
}

// tick is called for every entry walked (and line sent); every 256th call
// it checks the client is still there and flushes if the interval passed.
// It reports whether to go on.
func (s *stream) tick() bool {
	if s.err != nil {
		return false
	}
	s.walk++
	if s.walk&255 != 0 {
		return true
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return false
	}
	if time.Since(s.last) >= s.every {
		s.flush()
	}
	return s.err == nil
}

func (s *stream) write(line []byte) bool {
	s.buf = line[:0] // keep the grown buffer for the next line
	if s.err != nil {
		return false
	}
	if _, err := s.w.Write(line); err != nil {
		s.err = err
		return false
	}
	return true
}

func (s *stream) flush() {
	if s.err != nil {
		return
	}
	if err := s.w.Flush(); err != nil {
		s.err = err
		return
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
	s.last = time.Now()
}

// finish flushes what is left. A client that went away mid-dump is not
// an error worth reporting: it cut the dump short itself.
func (s *stream) finish() { s.flush() }
