package zone

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the zones' origin health, read from the Table in
// force at scrape time (never copied into gauges on a timer).
//
// Its series are per origin, labelled by zone name and origin address
// ("192.0.2.10:8080"): both come from the profile, never from a request,
// but there is one series set per configured origin, so the count grows
// with the profile.
type Collector struct {
	current     func() *Table
	zones       *prometheus.Desc
	hosts       *prometheus.Desc
	up          *prometheus.Desc
	checks      *prometheus.Desc
	transitions *prometheus.Desc
}

// NewCollector returns a Prometheus collector over the table current
// returns (typically an atomic.Pointer[Table]'s Load, so that one
// registration survives reloads); a nil table exports nothing.
func NewCollector(current func() *Table) *Collector {
	origin := []string{"zone", "origin"}
	return &Collector{
		current: current,
		zones: prometheus.NewDesc("rampart_zone_zones",
			"Zones in the table in force.", nil, nil),
		hosts: prometheus.NewDesc("rampart_zone_hosts",
			"Host entries (exact, wildcard and address) in the table in force.", nil, nil),
		up: prometheus.NewDesc("rampart_zone_origin_up",
			"1 when the origin takes requests, 0 when health checks or the proxy's connect failures took it down.", origin, nil),
		checks: prometheus.NewDesc("rampart_zone_health_checks_total",
			"Active health checks of the origin by result: ok (2xx/3xx), bad_status, timeout or error.",
			append(origin, "result"), nil),
		transitions: prometheus.NewDesc("rampart_zone_origin_transitions_total",
			"Changes of the origin's health, to up or down, by active checks or passive reports.",
			append(origin, "to"), nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.zones
	ch <- c.hosts
	ch <- c.up
	ch <- c.checks
	ch <- c.transitions
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t := c.current()
	if t == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.zones, prometheus.GaugeValue, float64(len(t.zones)))
	ch <- prometheus.MustNewConstMetric(c.hosts, prometheus.GaugeValue, float64(t.hosts))
	for _, z := range t.zones {
		active := z.Settings.Health.Path != ""
		for _, o := range z.Origins {
			up := 0.0
			if o.Healthy() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, z.Name, o.name)
			if active {
				for r := range numResults {
					ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue,
						float64(o.checks[r].Load()), z.Name, o.name, resultNames[r])
				}
			}
			toUp, toDown := o.Transitions()
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(toUp), z.Name, o.name, "up")
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(toDown), z.Name, o.name, "down")
		}
	}
}
