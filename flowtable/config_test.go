package flowtable_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

func validTableConfig() flowtable.Config {
	return flowtable.Config{Flows: 4096, Visitors: 1024, FlowIdleTimeout: 5 * time.Minute,
		VisitorIdleTimeout: 30 * time.Minute, ExpireInterval: 10 * time.Second}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *flowtable.Config)
		wantErr []string // substrings, one per problem
	}{
		{name: "valid", mutate: func(*flowtable.Config) {}},
		{name: "smallest", mutate: func(c *flowtable.Config) {
			*c = flowtable.Config{Flows: 1024, Visitors: 1024, FlowIdleTimeout: time.Second,
				VisitorIdleTimeout: time.Second, ExpireInterval: 100 * time.Millisecond}
		}},
		{name: "missing section", mutate: func(c *flowtable.Config) { *c = flowtable.Config{} },
			wantErr: []string{"section missing: it needs flows, visitors, flow_idle_timeout, visitor_idle_timeout and expire_interval"}},
		{name: "every field wrong", mutate: func(c *flowtable.Config) { *c = flowtable.Config{Flows: 1} },
			wantErr: []string{"flows: must be in 1024..268435456, got 1", "visitors: must be in 1024..67108864, got 0",
				"flow_idle_timeout: must be in 1s..24h0m0s, got 0s", "visitor_idle_timeout: must be in 1s..168h0m0s, got 0s",
				"expire_interval: must be in 100ms..10m0s, got 0s"}},
		{name: "too many flows", mutate: func(c *flowtable.Config) { c.Flows = 1<<28 + 1 },
			wantErr: []string{"flows: must be in 1024..268435456, got 268435457"}},
		{name: "interval above a timeout", mutate: func(c *flowtable.Config) { c.FlowIdleTimeout = 5 * time.Second },
			wantErr: []string{"expire_interval: must be at most the shorter idle timeout (5s), got 10s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validTableConfig()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.wantErr) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.wantErr), err)
			}
			for i, want := range tc.wantErr {
				if lines[i] != want {
					t.Errorf("problem %d = %q, want %q", i, lines[i], want)
				}
			}
		})
	}
}

func TestTablesExpireAndReconfigure(t *testing.T) {
	if _, err := flowtable.NewTables(flowtable.Config{}); err == nil {
		t.Fatal("NewTables accepted an invalid config")
	}
	tb, err := flowtable.NewTables(validTableConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	now := time.Unix(1_800_000_000, 0)
	for i := range 10 {
		seen := now.Add(-time.Duration(i) * time.Minute).UnixNano() // flow i idle for i minutes
		tb.Flows.Upsert(snapFlowKey(i), func(v *flowtable.Flow, _ bool) { v.LastSeen = seen })
		tb.Visitors.Upsert(flowtable.NewVisitorKey(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})),
			func(v *flowtable.Visitor, _ bool) {
				v.LastSeen = now.Add(-time.Duration(i) * 5 * time.Minute).UnixNano()
			})
	}
	// Idle for more than 5 minutes: flows 6..9; more than 30: visitors 7..9.
	if f, v := tb.ExpireIdle(now); f != 4 || v != 3 {
		t.Fatalf("ExpireIdle = %d flows, %d visitors; want 4, 3", f, v)
	}
	if tb.Flows.Len() != 6 || tb.Visitors.Len() != 7 {
		t.Fatalf("left %d flows, %d visitors; want 6, 7", tb.Flows.Len(), tb.Visitors.Len())
	}

	shorter := validTableConfig()
	shorter.FlowIdleTimeout = 150 * time.Second
	if err := tb.Reconfigure(shorter); err != nil {
		t.Fatal(err)
	}
	if f, _ := tb.ExpireIdle(now); f != 3 { // flows 3, 4, 5
		t.Fatalf("after Reconfigure ExpireIdle removed %d flows, want 3", f)
	}
	if tb.Config() != shorter {
		t.Errorf("Config() = %+v, want %+v", tb.Config(), shorter)
	}

	bigger := shorter
	bigger.Flows *= 2
	if err := tb.Reconfigure(bigger); !errors.Is(err, flowtable.ErrResize) {
		t.Errorf("Reconfigure with a new capacity: %v, want ErrResize", err)
	}
	invalid := shorter
	invalid.ExpireInterval = 0
	if err := tb.Reconfigure(invalid); err == nil {
		t.Error("Reconfigure accepted an invalid config")
	}
	if tb.Config() != shorter {
		t.Errorf("refused Reconfigure changed the config to %+v", tb.Config())
	}
}
