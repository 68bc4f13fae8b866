package origin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the stage's Prometheus series, resolved once so that
// counting on the data path allocates nothing.
type Metrics struct {
	reused           prometheus.Counter
	retries          prometheus.Counter
	connectTimeouts  prometheus.Counter
	responseTimeouts prometheus.Counter
	clientStalls     prometheus.Counter
	dialFailures     prometheus.Counter
	badResponse      prometheus.Counter
	badRequestBody   prometheus.Counter
	pipelined        prometheus.Counter
	requeued         prometheus.Counter
	byClass          [6]prometheus.Counter
	byFailure        map[int]prometheus.Counter
}

// NewMetrics creates the series and registers them with reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_origin_" + name, Help: help})
	}
	m := &Metrics{
		reused:           c("connections_reused_total", "Requests sent over a pooled keep-alive connection."),
		retries:          c("retries_total", "Idempotent requests retried after a connection broke before any response."),
		connectTimeouts:  c("connect_timeouts_total", "Origin connects or pool waits that timed out."),
		responseTimeouts: c("response_timeouts_total", "Origins that did not answer within the response timeout."),
		clientStalls:     c("client_stalls_total", "Responses abandoned because the client took nothing for the origin idle timeout."),
		dialFailures:     c("dial_failures_total", "Origin connects refused or failed."),
		badResponse:      c("invalid_responses_total", "Origin responses refused by the HTTP/1.1 codec."),
		badRequestBody:   c("invalid_request_bodies_total", "Client request bodies with broken chunked framing."),
		pipelined:        c("pipelined_requests_total", "Requests sent on a connection that had others in flight (pipeline_depth)."),
		requeued:         c("pipeline_requeued_total", "Pipelined requests sent again on another connection because theirs closed before their turn."),
		byFailure:        map[int]prometheus.Counter{},
	}
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_origin_responses_total", Help: "Origin responses relayed, by status class."}, []string{"class"})
	for i := range m.byClass {
		m.byClass[i] = responses.WithLabelValues(strconv.Itoa(i) + "xx")
	}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_origin_errors_total", Help: "Responses made by the edge because the origin failed, by status."}, []string{"status"})
	for _, s := range []int{502, 503, 504} {
		m.byFailure[s] = failures.WithLabelValues(strconv.Itoa(s))
	}
	if reg != nil {
		reg.MustRegister(m.reused, m.retries, m.connectTimeouts, m.responseTimeouts, m.clientStalls, m.dialFailures,
			m.badResponse, m.badRequestBody, m.pipelined, m.requeued, responses, failures)
	}
	return m
}

func (m *Metrics) status(s int) {
	if c := s / 100; c >= 0 && c < len(m.byClass) {
		m.byClass[c].Inc()
	}
}

func (m *Metrics) failures(s int) {
	if c, ok := m.byFailure[s]; ok {
		c.Inc()
	}
}
