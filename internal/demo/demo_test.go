package demo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if rampartBin.dir != "" {
		os.RemoveAll(rampartBin.dir)
	}
	os.Exit(code)
}

// rampartBin is the rampart binary the demo's edge runs: the test binary
// is not one, so the first test that needs it builds it.
var rampartBin struct {
	once      sync.Once
	dir, path string
	err       error
}

func rampartBinary(t *testing.T) string {
	t.Helper()
	rampartBin.once.Do(func() {
		rampartBin.dir, rampartBin.err = os.MkdirTemp("", "rampart-demo-test-")
		if rampartBin.err != nil {
			return
		}
		path := filepath.Join(rampartBin.dir, "rampart")
		// go test puts its own go first on PATH.
		out, err := exec.Command("go", "build", "-o", path, "github.com/rampart-edge/rampart/cmd/rampart").CombinedOutput()
		if err != nil {
			rampartBin.err = errors.New("go build ./cmd/rampart: " + err.Error() + ": " + string(out))
			return
		}
		rampartBin.path = path
	})
	if rampartBin.err != nil {
		t.Fatal(rampartBin.err)
	}
	return rampartBin.path
}

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
			if !slices.Contains(c.Allow, netip.PrefixFrom(originAddr, 32)) {
				t.Fatalf("allow = %v, want the origin %s/32 there: its replies to the pipeline", c.Allow, originAddr)
			}
			if len(spec.XDP.Allow) != len(c.Allow)-1 {
				t.Fatal("demoConfig changed the profile's own allow list")
			}
			if !c.FilterServices || !servesTCP(c, edgeAddr, httpPort) {
				t.Fatalf("the filter must keep serving tcp/%d on %s and filter the rest", httpPort, edgeAddr)
			}
		})
	}
}

func servesTCP(c xdp.Config, addr netip.Addr, port uint16) bool {
	for _, s := range c.Services {
		if slices.Contains(s.Addrs, addr) && slices.Contains(s.TCP, port) {
			return true
		}
	}
	return false
}

func TestWriteEdgeProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edge.yaml")
	listen := netip.AddrPortFrom(edgeAddr, httpPort)
	origin := netip.AddrPortFrom(originAddr, originPort)
	if err := writeEdgeProfile(path, listen, origin); err != nil {
		t.Fatal(err)
	}
	spec, err := profiles.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Pipeline == nil || !slices.Equal(spec.Pipeline.Listeners, []string{listen.String()}) {
		t.Fatalf("pipeline = %+v, want one listener %s", spec.Pipeline, listen)
	}
	if spec.Pipeline.ShutdownTimeout >= edgeStopTimeout {
		t.Fatalf("shutdown_timeout %s must stay under the demo's SIGKILL deadline %s", spec.Pipeline.ShutdownTimeout, edgeStopTimeout)
	}
	z := spec.Zones.Zones
	if len(z) != 1 || !slices.Contains(z[0].Hosts, edgeAddr.String()) || !slices.Equal(z[0].Origins, []string{origin.String()}) {
		t.Fatalf("zones = %+v, want one zone for %s with origin %s", z, edgeAddr, origin)
	}
}

// TestRun runs a small demo end to end: real namespaces, the filter in
// native mode, the pipeline as a process of its own, real HTTP requests
// through it to the origin, and floods.
func TestRun(t *testing.T) {
	testnet.RequireRoot(t, "create network namespaces and attach XDP")
	exe := rampartBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	opts := Options{SYNFlood: 5000, Reflection: 2000, Blocked: 2000, Malformed: 1000,
		Requests: 30, Baseline: 5, Duration: time.Second, Timeout: 50 * time.Second, Rampart: exe}
	res, err := Run(ctx, &out, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if res.Mode != xdp.ModeNative {
		t.Errorf("mode %q, want native on veth", res.Mode)
	}
	if res.Legit.Served != opts.Requests || res.Baseline.Served != opts.Baseline {
		t.Errorf("legitimate requests: baseline %s; during floods %s; want every one served by the origin", res.Baseline, res.Legit)
	}
	if n := res.Legit.Statuses[200]; n != opts.Requests || len(res.Legit.Statuses) != 1 || res.Legit.NoAnswer != 0 {
		t.Errorf("statuses during the floods %s, want 200×%d only", res.Legit.StatusSummary(), opts.Requests)
	}
	// Every served request reached the origin through the pipeline; the
	// readiness check adds at least one more.
	if served := int64(opts.Requests + opts.Baseline); res.OriginForwarded <= served || res.OriginForwarded != res.OriginRequests {
		t.Errorf("the origin answered %d requests, %d forwarded by the pipeline for the client; want all of them, over %d",
			res.OriginRequests, res.OriginForwarded, served)
	}
	if res.EdgeReady <= 0 || res.Stats[xdp.ReasonAllowlist].Packets == 0 {
		t.Errorf("edge ready after %s, %d allowlisted packets: want the origin's replies let in", res.EdgeReady, res.Stats[xdp.ReasonAllowlist].Packets)
	}
	if err := unix.Kill(res.EdgePID, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("the edge's pipeline (pid %d) still exists after Run: kill 0 = %v", res.EdgePID, err)
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
	for _, want := range []string{"stopped the edge's pipeline", "removed namespaces " + res.Prefix} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not report the clean-up (%q)", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out.String())
	}
}

func TestRunCancelledCleansUp(t *testing.T) {
	testnet.RequireRoot(t, "create network namespaces and attach XDP")
	exe := rampartBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan struct{})
	var res Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(ctx, &out, nil, Options{Duration: 5 * time.Second, Requests: 100, Rampart: exe})
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
	if res.EdgePID == 0 {
		t.Fatal("cancelled after the floods began, yet no edge pipeline was started")
	}
	if err := unix.Kill(res.EdgePID, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("the edge's pipeline (pid %d) still exists after a cancelled Run: kill 0 = %v", res.EdgePID, err)
	}
}

// TestRunEdgeExits: an edge that dies at start fails the run with the end
// of its log, and everything is still removed.
func TestRunEdgeExits(t *testing.T) {
	testnet.RequireRoot(t, "create network namespaces and attach XDP")
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir) // the failed edge's folder is kept: keep it here
	fake := filepath.Join(dir, "fake-rampart")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'fake edge: refusing to start' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, &out, nil, Options{Requests: 10, Baseline: 1, Duration: time.Second, Timeout: 30 * time.Second, Rampart: fake})
	if err == nil || !strings.Contains(err.Error(), "exited on its own") || !strings.Contains(err.Error(), "fake edge: refusing to start") {
		t.Fatalf("Run = %v, want the edge's early exit with its log\n%s", err, out.String())
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
