package pipeline

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/internal/http1"
)

type rejectReason int

const (
	rejectDraining rejectReason = iota
	rejectListenerLimit
	rejectSourceLimit
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{"draining", "listener_limit", "source_limit"}

type timeoutKind int

const (
	timeoutHeader timeoutKind = iota
	timeoutIdle
	numTimeoutKinds
)

var timeoutNames = [numTimeoutKinds]string{"header", "idle"}

// Metrics are the engine's Prometheus series. Every labelled child is
// resolved once here, so counting on the data path allocates nothing.
type Metrics struct {
	accepts      prometheus.Counter
	rejects      [numRejectReasons]prometheus.Counter
	closes       prometheus.Counter
	timeouts     [numTimeoutKinds]prometheus.Counter
	malformedVec *prometheus.CounterVec
	malformedBy  map[int]prometheus.Counter
	duration     prometheus.Histogram
	pauses       prometheus.Counter
	dials        prometheus.Counter
	dialFails    prometheus.Counter
	upOpen       prometheus.Gauge
	loopConns    *prometheus.GaugeVec
	loopTimers   *prometheus.GaugeVec
	loopConnsBy  []prometheus.Gauge
	loopTimersBy []prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		accepts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_pipeline_connections_accepted_total", Help: "Client connections admitted."}),
		closes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_pipeline_connections_closed_total", Help: "Client connections closed."}),
		malformedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_pipeline_requests_rejected_total", Help: "Requests refused by the HTTP/1.1 codec, by status."}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rampart_pipeline_request_duration_seconds", Help: "From a complete request head to the end of its response.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_pipeline_backpressure_pauses_total", Help: "Times reading from a connection stopped because its peer was slow."}),
		dials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_pipeline_origin_dials_total", Help: "Origin connections dialled."}),
		dialFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_pipeline_origin_dial_failures_total", Help: "Origin dials that failed or timed out."}),
		upOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rampart_pipeline_origin_connections", Help: "Open origin connections."}),
		loopConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rampart_pipeline_loop_connections", Help: "Client connections per event loop."}, []string{"loop"}),
		loopTimers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rampart_pipeline_loop_timers", Help: "Armed timers per event loop."}, []string{"loop"}),
		malformedBy: map[int]prometheus.Counter{},
	}
	rejects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_pipeline_connections_rejected_total", Help: "Client connections refused at accept, by reason."}, []string{"reason"})
	for i, n := range rejectNames {
		m.rejects[i] = rejects.WithLabelValues(n)
	}
	timeouts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_pipeline_timeouts_total", Help: "Client connections timed out, by phase."}, []string{"phase"})
	for i, n := range timeoutNames {
		m.timeouts[i] = timeouts.WithLabelValues(n)
	}
	for _, s := range []int{400, 413, 414, 417, 431, 501, 505} {
		m.malformedBy[s] = m.malformedVec.WithLabelValues(strconv.Itoa(s))
	}
	for i := 0; i < 256; i++ {
		m.loopConnsBy = append(m.loopConnsBy, m.loopConns.WithLabelValues(strconv.Itoa(i)))
		m.loopTimersBy = append(m.loopTimersBy, m.loopTimers.WithLabelValues(strconv.Itoa(i)))
	}
	if reg != nil {
		reg.MustRegister(m.accepts, m.closes, rejects, timeouts, m.malformedVec, m.duration, m.pauses,
			m.dials, m.dialFails, m.upOpen, m.loopConns, m.loopTimers)
	}
	return m
}

func (m *Metrics) accepted()               { m.accepts.Inc() }
func (m *Metrics) closed()                 { m.closes.Inc() }
func (m *Metrics) rejected(r rejectReason) { m.rejects[r].Inc() }
func (m *Metrics) timeout(k timeoutKind)   { m.timeouts[k].Inc() }
func (m *Metrics) paused()                 { m.pauses.Inc() }
func (m *Metrics) dial()                   { m.dials.Inc() }
func (m *Metrics) dialFailed()             { m.dialFails.Inc() }
func (m *Metrics) upstreamOpened()         { m.upOpen.Inc() }
func (m *Metrics) upstreamClosed()         { m.upOpen.Dec() }

func (m *Metrics) malformed(e *http1.Error) {
	if c, ok := m.malformedBy[e.Status]; ok {
		c.Inc()
		return
	}
	m.malformedBy[400].Inc()
}

func (m *Metrics) served(start, end time.Time) {
	m.duration.Observe(end.Sub(start).Seconds())
}

func (m *Metrics) setLoopState(loop, conns, timers int) {
	if loop < len(m.loopConnsBy) {
		m.loopConnsBy[loop].Set(float64(conns))
		m.loopTimersBy[loop].Set(float64(timers))
	}
}
