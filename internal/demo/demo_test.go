package demo

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

func TestDemoConfig(t *testing.T) {
	spec, err := profiles.Load("edge-default")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "defaults stay under the client's SYN allowance", opts: Options{}},
		{name: "client would trip its own SYN limit", opts: Options{Requests: 1000, Duration: time.Second},
			wantErr: "over half the profile's per-source limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := demoConfig(spec.XDP, tc.opts.withDefaults())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("demoConfig = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := c.Services[len(c.Services)-1]
			if last.Addrs[0] != tcpOnlyAddr || len(last.UDP) != 0 {
				t.Fatalf("demo service = %+v, want %s TCP-only", last, tcpOnlyAddr)
			}
			if len(spec.XDP.Services) != len(c.Services)-1 {
				t.Fatal("demoConfig changed the profile's own services")
			}
		})
	}
}

// TestRun runs a small demo end to end: real namespaces, the filter in
// native mode, real HTTP requests and floods.
func TestRun(t *testing.T) {
	testnet.RequireRoot(t, "create network namespaces and attach XDP")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	opts := Options{SYNFlood: 5000, Reflection: 2000, Blocked: 2000, Malformed: 1000,
		Requests: 30, Baseline: 5, Duration: time.Second, Timeout: 50 * time.Second}
	res, err := Run(ctx, &out, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if res.Mode != xdp.ModeNative {
		t.Errorf("mode %q, want native on veth", res.Mode)
	}
	if res.Legit.OK != opts.Requests || res.Baseline.OK != opts.Baseline {
		t.Errorf("legitimate requests: baseline %s; during floods %s; want all ok", res.Baseline, res.Legit)
	}
	if res.ClientRateDropped != 0 {
		t.Errorf("the client's own buckets dropped %d packets, want 0", res.ClientRateDropped)
	}
	if len(res.Floods) != 4 {
		t.Fatalf("got %d floods, want 4", len(res.Floods))
	}
	for _, f := range res.Floods {
		// Everything arrives on veth; the SYN flood's source keeps its
		// allowance (burst 100 + 200/s), everything else is dropped whole.
		want := uint64(f.Sent) * 95 / 100
		if f.Reasons[0] == xdp.ReasonRateSYN {
			want = uint64(f.Sent) - 1000
		}
		if f.Dropped < want {
			t.Errorf("%s: %d of %d dropped, want at least %d", f.Name, f.Dropped, f.Sent, want)
		}
	}
	if err := checkGone(res.Prefix); err != nil {
		t.Error(err)
	}
	if !strings.Contains(out.String(), "removed namespaces "+res.Prefix) {
		t.Errorf("output does not report the clean-up:\n%s", out.String())
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out.String())
	}
}

func TestRunCancelledCleansUp(t *testing.T) {
	testnet.RequireRoot(t, "create network namespaces and attach XDP")
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan struct{})
	var res Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(ctx, &out, nil, Options{Duration: 5 * time.Second, Requests: 100})
	}()
	// Cancel once the floods have started.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "raw frames") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err == nil {
		t.Fatal("Run returned no error after cancel")
	}
	if res.Prefix == "" {
		t.Fatal("no prefix in the result")
	}
	if gone := checkGone(res.Prefix); gone != nil {
		t.Fatal(gone)
	}
}

// lockedBuffer lets the test read what Run has written so far.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
