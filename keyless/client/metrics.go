package client

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/keyless"
)

// Metrics are the client's Prometheus series. One Metrics may serve
// several clients; series are labelled by server name, so each client
// needs its own names.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
	conns    *prometheus.GaugeVec
	dials    *prometheus.CounterVec
	retries  *prometheus.CounterVec
	rtt      *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them with reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "rampart_keyless_client_"
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "requests_total",
			Help: "Requests finished, by key server (\"none\" when none was chosen), opcode and result."},
			[]string{"server", "op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "request_duration_seconds",
			Help:    "Time from submitting a request to its result, queueing and retry included, by op type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"type"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "breaker_state",
			Help: "Circuit breaker of each key server: 0 closed, 1 half-open, 2 open."}, []string{"server"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "connections",
			Help: "Open connections to each key server."}, []string{"server"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "dials_total",
			Help: "Connection attempts to each key server, by result (ok, refused, error)."}, []string{"server", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "retries_total",
			Help: "Requests sent again after their connection failed, by the server that failed."}, []string{"server"}),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "rtt_ewma_seconds",
			Help: "Moving average of ping and request round trips per key server, the basis of server choice."}, []string{"server"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.breaker, m.conns, m.dials, m.retries, m.rtt)
	}
	return m
}

// Results, the values of the result label.
const (
	resultOK          = iota // answered with a result
	resultRemoteError        // answered with an error code
	resultTimeout
	resultTransport   // connection lost, retry used or not allowed
	resultProtocol    // the answer broke the protocol
	resultUnavailable // no server up
	resultOverloaded  // queues full
	resultClosed
	numResults
)

var resultNames = [numResults]string{"ok", "remote_error", "timeout", "transport", "protocol", "unavailable", "overloaded", "closed"}

// opTypes are the label values of the duration histogram.
var opTypes = []string{"rsa", "ecdsa", "ed25519", "rpc", "custom", "other", "unknown"}

// serverMetrics are one server's series, resolved once.
type serverMetrics struct {
	m         *Metrics
	name      string
	breaker   prometheus.Gauge
	conns     prometheus.Gauge
	dialOK    prometheus.Counter
	dialRefus prometheus.Counter
	dialErr   prometheus.Counter
	retries   prometheus.Counter
	rtt       prometheus.Gauge
	// requests caches the counter of each (op, result) on first use, so
	// that counting allocates nothing afterwards and only series that
	// happen are exported.
	requests [256][numResults]atomic.Pointer[prometheus.Counter]
}

func (m *Metrics) server(name string) *serverMetrics {
	return &serverMetrics{
		m: m, name: name,
		breaker:   m.breaker.WithLabelValues(name),
		conns:     m.conns.WithLabelValues(name),
		dialOK:    m.dials.WithLabelValues(name, "ok"),
		dialRefus: m.dials.WithLabelValues(name, "refused"),
		dialErr:   m.dials.WithLabelValues(name, "error"),
		retries:   m.retries.WithLabelValues(name),
		rtt:       m.rtt.WithLabelValues(name),
	}
}

func (s *serverMetrics) request(op keyless.Op, result int) {
	p := &s.requests[op][result]
	c := p.Load()
	if c == nil {
		v := s.m.requests.WithLabelValues(s.name, op.String(), resultNames[result])
		c = &v
		p.Store(c)
	}
	(*c).Inc()
}

// durations holds the histogram of each op type, resolved once.
type durations [256]prometheus.Observer

func (m *Metrics) durations() *durations {
	byType := map[string]prometheus.Observer{}
	for _, t := range opTypes {
		byType[t] = m.duration.WithLabelValues(t)
	}
	var d durations
	for op := range d {
		d[op] = byType[keyless.Op(op).Type()]
	}
	return &d
}
