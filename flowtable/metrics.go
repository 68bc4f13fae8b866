package flowtable

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the tables' sizes and counters, read from the tables
// at scrape time (never copied into gauges on a timer). The table label
// is "flows" or "visitors".
type Collector struct {
	tables    *Tables
	entries   *prometheus.Desc
	capacity  *prometheus.Desc
	memory    *prometheus.Desc
	evictions *prometheus.Desc
	expired   *prometheus.Desc
}

// NewCollector returns a Prometheus collector over t.
func NewCollector(t *Tables) *Collector {
	label := []string{"table"}
	return &Collector{
		tables: t,
		entries: prometheus.NewDesc("rampart_flowtable_entries",
			"Entries in the table (exact when no write is in flight).", label, nil),
		capacity: prometheus.NewDesc("rampart_flowtable_capacity",
			"Slots of the table: it evicts rather than hold more entries.", label, nil),
		memory: prometheus.NewDesc("rampart_flowtable_memory_bytes",
			"Memory the table maps (slots, meta words, bucket words), fixed at start.", label, nil),
		evictions: prometheus.NewDesc("rampart_flowtable_evictions_total",
			"Entries evicted to make room for new ones because the table was full.", label, nil),
		expired: prometheus.NewDesc("rampart_flowtable_expired_total",
			"Entries removed by the expiry pass after their idle timeout.", label, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.capacity
	ch <- c.memory
	ch <- c.evictions
	ch <- c.expired
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(table string, entries, capacity, memory int, evictions, expired uint64) {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(entries), table)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(capacity), table)
		ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(memory), table)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(evictions), table)
		ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(expired), table)
	}
	t := c.tables
	emit("flows", max(t.Flows.Len(), 0), t.Flows.Capacity(), t.Flows.MemoryBytes(), t.Flows.Evictions(), t.expiredFlows.Load())
	emit("visitors", max(t.Visitors.Len(), 0), t.Visitors.Capacity(), t.Visitors.MemoryBytes(), t.Visitors.Evictions(), t.expiredVisitors.Load())
}
