package flowtable

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rampart-edge/rampart/internal/check"
)

// Config is the tables' section of a profile. It is plain data: Validate
// checks it without touching the machine; NewTables builds from it.
type Config struct {
	// Flows and Visitors are the tables' capacities in entries. A full
	// table evicts (CLOCK) rather than grow; resizing needs a restart.
	Flows    int `yaml:"flows"`
	Visitors int `yaml:"visitors"`
	// FlowIdleTimeout and VisitorIdleTimeout: an entry not seen for this
	// long is removed by the next expiry pass.
	FlowIdleTimeout    time.Duration `yaml:"flow_idle_timeout"`
	VisitorIdleTimeout time.Duration `yaml:"visitor_idle_timeout"`
	// ExpireInterval is the time between expiry passes; each pass walks
	// both tables whole, so it should not be much shorter than needed.
	ExpireInterval time.Duration `yaml:"expire_interval"`
}

// Validate returns every problem in the section, each with its field path.
func (c *Config) Validate() error {
	if *c == (Config{}) {
		// One problem, not five: the whole section is absent.
		return errors.New("section missing: it needs flows, visitors, flow_idle_timeout, visitor_idle_timeout and expire_interval")
	}
	p := check.New("")
	check.Range(p, "flows", c.Flows, 1024, 1<<28)
	check.Range(p, "visitors", c.Visitors, 1024, 1<<26)
	duration := func(field string, d, lo, hi time.Duration) bool {
		if d < lo || d > hi {
			p.Addf(field, "must be in %s..%s, got %s", lo, hi, d)
			return false
		}
		return true
	}
	flowOK := duration("flow_idle_timeout", c.FlowIdleTimeout, time.Second, 24*time.Hour)
	visitorOK := duration("visitor_idle_timeout", c.VisitorIdleTimeout, time.Second, 7*24*time.Hour)
	if duration("expire_interval", c.ExpireInterval, 100*time.Millisecond, 10*time.Minute) {
		// A pass less often than the shortest timeout would keep idle
		// entries up to twice their timeout.
		if flowOK && visitorOK && c.ExpireInterval > min(c.FlowIdleTimeout, c.VisitorIdleTimeout) {
			p.Addf("expire_interval", "must be at most the shorter idle timeout (%s), got %s",
				min(c.FlowIdleTimeout, c.VisitorIdleTimeout), c.ExpireInterval)
		}
	}
	return p.Err()
}

// Tables is the daemon's pair of tables, built from a Config, with the
// expiry that keeps them to live entries. Every method may be called from
// any goroutine.
type Tables struct {
	Flows    *Flows
	Visitors *Visitors

	cfg             atomic.Pointer[Config]
	expiredFlows    atomic.Uint64
	expiredVisitors atomic.Uint64
}

// ErrResize is returned by Reconfigure for a change of capacity, which
// needs a restart: the tables are sized when built.
var ErrResize = errors.New("flowtable capacity changes need a restart (tables are sized at start)")

// NewTables validates c and maps both tables. The caller closes them.
func NewTables(c Config) (*Tables, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	flows, err := NewFlows(c.Flows)
	if err != nil {
		return nil, fmt.Errorf("flow table: %w", err)
	}
	visitors, err := NewVisitors(c.Visitors)
	if err != nil {
		flows.Close()
		return nil, fmt.Errorf("visitor table: %w", err)
	}
	t := &Tables{Flows: flows, Visitors: visitors}
	t.cfg.Store(&c)
	return t, nil
}

// Config is the configuration in force.
func (t *Tables) Config() Config { return *t.cfg.Load() }

// Reconfigure applies new timeouts and interval. Capacities must not
// change (ErrResize); nothing changes when c is refused.
func (t *Tables) Reconfigure(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	cur := t.cfg.Load()
	if c.Flows != cur.Flows || c.Visitors != cur.Visitors {
		return fmt.Errorf("%w: flows %d → %d, visitors %d → %d", ErrResize, cur.Flows, c.Flows, cur.Visitors, c.Visitors)
	}
	t.cfg.Store(&c)
	return nil
}

// ExpireIdle removes the flows and visitors last seen longer ago than
// their idle timeouts at now, and returns how many of each it removed.
// Both tables are walked whole: call it every ExpireInterval, from one
// goroutine at a time.
func (t *Tables) ExpireIdle(now time.Time) (flows, visitors int) {
	c := t.cfg.Load()
	flowCut := now.Add(-c.FlowIdleTimeout).UnixNano()
	visitorCut := now.Add(-c.VisitorIdleTimeout).UnixNano()
	flows = t.Flows.Expire(func(_ *FlowKey, v *Flow) bool { return v.LastSeen < flowCut })
	visitors = t.Visitors.Expire(func(_ *VisitorKey, v *Visitor) bool { return v.LastSeen < visitorCut })
	t.expiredFlows.Add(uint64(flows))
	t.expiredVisitors.Add(uint64(visitors))
	return flows, visitors
}

// Close releases both tables' memory.
func (t *Tables) Close() error {
	return errors.Join(t.Flows.Close(), t.Visitors.Close())
}
