package xdp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the filter's per-CPU counters, summed at scrape time
// (never copied into gauges on a timer).
type Collector struct {
	maps    *Maps
	packets *prometheus.Desc
	bytes   *prometheus.Desc
	errors  *prometheus.Desc
}

// NewCollector returns a Prometheus collector over m.
func NewCollector(m *Maps) *Collector {
	return &Collector{
		maps: m,
		packets: prometheus.NewDesc("rampart_xdp_packets_total",
			"Packets the XDP filter judged, by verdict and reason.", []string{"verdict", "reason"}, nil),
		bytes: prometheus.NewDesc("rampart_xdp_bytes_total",
			"Bytes of the packets the XDP filter judged, by verdict and reason.", []string{"verdict", "reason"}, nil),
		errors: prometheus.NewDesc("rampart_xdp_scrape_errors_total",
			"1 when reading the XDP counters failed during this scrape.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	ch <- c.errors
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.maps.Stats()
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, failed)
	for r, s := range stats {
		reason := Reason(r)
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), reason.Verdict(), reason.String())
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), reason.Verdict(), reason.String())
	}
}
