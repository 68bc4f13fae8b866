package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/keyless"
)

// metrics are the key server's Prometheus metrics. Labels come from small
// fixed sets: opcode names, error-code names, listener kinds, reasons.
type metrics struct {
	requests        *prometheus.CounterVec   // op, result
	requestDuration *prometheus.HistogramVec // op
	opDuration      *prometheus.HistogramVec // op
	pending         prometheus.Gauge
	backpressure    prometheus.Counter
	connections     *prometheus.GaugeVec   // listener
	accepted        *prometheus.CounterVec // listener
	closed          *prometheus.CounterVec // listener, reason
	handshakeFails  *prometheus.CounterVec // listener, reason
	malformed       *prometheus.CounterVec // reason
	keys            *prometheus.GaugeVec   // type
	reloads         *prometheus.CounterVec // result
	reloadOK        prometheus.Gauge
	workers         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "rampart", "keyserver"
	// Latency buckets from 10 µs (an ECDSA signature with queueing) to
	// 1 s (an overloaded RSA-4096 pool).
	buckets := prometheus.ExponentialBucketsRange(10e-6, 1, 16)
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests answered, by opcode and result (ok or the error code sent).",
		}, []string{"op", "result"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from a request read to its response handed to the connection's writer, queueing included, by opcode.",
			Buckets: buckets,
		}, []string{"op"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "operation_duration_seconds",
			Help:    "Time spent in the signing or decryption itself on a worker, by opcode.",
			Buckets: buckets,
		}, []string{"op"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "pending_requests",
			Help: "Requests read and not yet answered, over all connections.",
		}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "backpressure_waits_total",
			Help: "Times a connection's reader stopped reading because max_pending_per_conn requests were pending.",
		}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "connections",
			Help: "Open connections that completed their handshake, by listener (tcp, unix).",
		}, []string{"listener"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "connections_accepted_total",
			Help: "Connections accepted, before the handshake, by listener.",
		}, []string{"listener"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "connections_closed_total",
			Help: "Connections closed after their handshake, by listener and reason (eof, idle, malformed, read_error, write_error, shutdown).",
		}, []string{"listener", "reason"}),
		handshakeFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "handshake_failures_total",
			Help: "Failed TLS handshakes, by listener and reason (no_certificate, bad_certificate, timeout, other).",
		}, []string{"listener", "reason"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "malformed_messages_total",
			Help: "Malformed messages received, each closing its connection, by the rule broken.",
		}, []string{"reason"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "keys",
			Help: "Keys in the active key store, by type (rsa, ecdsa, ed25519).",
		}, []string{"type"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reloads_total",
			Help: "Key store reloads, by result (ok, error).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_reload_successful",
			Help: "1 if the last key store reload succeeded (or none was tried), 0 if the old store is still serving after a failed one.",
		}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "workers",
			Help: "Goroutines in the signing worker pool.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestDuration, m.opDuration, m.pending, m.backpressure,
			m.connections, m.accepted, m.closed, m.handshakeFails, m.malformed,
			m.keys, m.reloads, m.reloadOK, m.workers)
	}
	return m
}

// opLabel is the op metric label: the opcode's name for the values the
// protocol defines, "unknown" for the rest, so the set stays fixed.
func opLabel(op keyless.Op) string {
	switch op {
	case keyless.OpResponse, keyless.OpPong, keyless.OpError:
		return op.String()
	}
	if op.CheckRequest() != nil {
		return "unknown"
	}
	return op.String()
}

// resultLabel is "ok" or the snake_case name of the error code sent.
func resultLabel(code keyless.ErrCode) string {
	switch code {
	case keyless.ErrNone:
		return "ok"
	case keyless.ErrCrypto:
		return "crypto"
	case keyless.ErrKeyNotFound:
		return "key_not_found"
	case keyless.ErrBadOpcode:
		return "bad_opcode"
	case keyless.ErrUnexpectedOpcode:
		return "unexpected_opcode"
	case keyless.ErrInternal:
		return "internal"
	}
	return "other"
}
