//go:build linux

package xdp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/flood"
	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// TestNetnsFloodAndLegitimate attaches the filter natively to the edge's
// veth and sends real traffic across a bridge: a client's TCP connections
// must all complete while a flood from a blocked prefix and a SYN flood
// from one source over its SYN limit are dropped, as the counters show.
func TestNetnsFloodAndLegitimate(t *testing.T) {
	testnet.RequireRoot(t, "attach XDP to veth interfaces in network namespaces")
	n := testnet.NewT(t, "edge", "client", "attacker")
	edge, client, attacker := n.Host("edge"), n.Host("client"), n.Host("attacker")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	spec, err := profiles.Load("edge-default") // serves edge's 198.18.0.1 on tcp/80
	if err != nil {
		t.Fatal(err)
	}
	cfg := spec.XDP
	f, err := xdp.Load(xdp.LoadOptions{Capacity: cfg.Capacity, Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, xdp.ErrNotSupported) {
		t.Skipf("xdp: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close filter: %v", err)
		}
	})
	if err := f.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	blocked := netip.MustParsePrefix("198.19.128.0/17")
	if err := f.Maps().Add(xdp.Blocklist, blocked, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := edge.Do(func() error { return f.Attach(edge.Iface) }); err != nil {
		t.Fatal(err)
	}
	if f.Mode() != xdp.ModeNative {
		t.Fatalf("attached in %q mode, want native: veth has native XDP since Linux 4.19", f.Mode())
	}

	target := netip.AddrPortFrom(edge.Addr, 80).String()
	serveEcho(t, edge, target)

	blockedFrames, synFrames := floodFrames(t, edge, attacker, blocked)
	var s *flood.Sender
	if err := attacker.Do(func() (err error) { s, err = flood.Open(attacker.Iface); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// One connection before the floods fills the neighbour tables and the
	// bridge's forwarding table, so that no raw frame is flooded to every port.
	if err := client.Do(func() error { return pingPong(ctx, target) }); err != nil {
		t.Fatalf("connection before the floods: %v", err)
	}

	const (
		legit      = 20
		perFlood   = 20000
		rounds     = 10
		roundPause = 40 * time.Millisecond
	)
	var sentBlocked, sentSYN int
	var floodErr error
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for range rounds {
			k, err := s.Send(ctx, blockedFrames, perFlood/rounds)
			sentBlocked += k
			if err != nil {
				floodErr = err
				return
			}
			k, err = s.Send(ctx, synFrames, perFlood/rounds)
			sentSYN += k
			if err != nil {
				floodErr = err
				return
			}
			time.Sleep(roundPause)
		}
	})
	var completed int
	var legitErrs []error
	if err := client.Do(func() error {
		for range legit {
			if err := pingPong(ctx, target); err != nil {
				legitErrs = append(legitErrs, err)
			} else {
				completed++
			}
			time.Sleep(roundPause / 2)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if floodErr != nil {
		t.Fatalf("flood: %v", floodErr)
	}
	time.Sleep(100 * time.Millisecond) // frames still crossing the bridge

	if completed != legit {
		t.Errorf("%d of %d legitimate connections completed during the floods; errors: %v", completed, legit, legitErrs)
	}
	stats, err := f.Maps().Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is lost between sender and filter on an idle veth bridge in
	// practice; the margin only absorbs a busy machine.
	if got := stats[xdp.ReasonBlocklist].Packets; got < uint64(sentBlocked)*9/10 {
		t.Errorf("blocklist drops %d, want at least 90%% of the %d sent from %s", got, sentBlocked, blocked)
	}
	// The flooding source keeps its allowance: the burst plus the rate over
	// the flood's duration; the rest must be dropped.
	l := cfg.RateLimit.Normal
	allowance := l.SYNBurst + uint64(elapsed.Seconds()*float64(l.SYNsPerSecond)) + 1
	got := stats[xdp.ReasonRateSYN].Packets
	if got == 0 || got+allowance < uint64(sentSYN)*9/10 {
		t.Errorf("rate_syn drops %d of %d SYNs sent, want all but the allowance of %d (minus 10%%)", got, sentSYN, allowance)
	}
	t.Logf("%s mode; sent %d from %s and %d SYNs from %s in %s; dropped blocklist %d, rate_syn %d; passed %d; legitimate %d/%d",
		f.Mode(), sentBlocked, blocked, sentSYN, attacker.Addr, elapsed.Round(time.Millisecond),
		stats[xdp.ReasonBlocklist].Packets, got, stats[xdp.ReasonPass].Packets, completed, legit)
	if stats[xdp.ReasonPass].Packets == 0 {
		t.Error("no packet passed: the legitimate connections did not go through the filter")
	}
	err = f.Maps().RateSources(func(r xdp.RateSource) bool {
		if r.Prefix.Addr() == client.Addr && r.Dropped != 0 {
			t.Errorf("the client's own buckets dropped %d packets: per-source limits leaked across sources", r.Dropped)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serveEcho answers "ping" with "pong" on addr inside h's namespace until
// the test ends.
func serveEcho(t *testing.T, h *testnet.Host, addr string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil && line == "ping\n" {
					_, _ = io.WriteString(c, "pong\n")
				}
			})
		}
	})
}

// pingPong opens one TCP connection and exchanges a line; it runs on a
// thread inside the client's namespace.
func pingPong(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "pong\n" {
		return errors.New("unexpected answer " + line)
	}
	return nil
}

// floodFrames builds SYNs to the edge's port 80 from spoofed sources in
// blocked, and SYNs from the attacker's own address on many source ports.
func floodFrames(t *testing.T, edge, attacker *testnet.Host, blocked netip.Prefix) (fromBlocked, syn [][]byte) {
	t.Helper()
	var edgeMAC, attackerMAC net.HardwareAddr
	if err := edge.Do(func() (err error) { edgeMAC, err = flood.MAC(edge.Iface); return err }); err != nil {
		t.Fatal(err)
	}
	if err := attacker.Do(func() (err error) { attackerMAC, err = flood.MAC(attacker.Iface); return err }); err != nil {
		t.Fatal(err)
	}
	base := blocked.Addr().As4()
	for i := range 256 {
		src := netip.AddrFrom4([4]byte{base[0], base[1], base[2] + byte(i%128), byte(i)})
		b := packets.MustBuild(packets.Spec{Src: src, Dst: edge.Addr, Proto: packets.TCP,
			SrcPort: uint16(30000 + i), DstPort: 80, Flags: "S"})
		flood.SetMACs(b, edgeMAC, attackerMAC)
		fromBlocked = append(fromBlocked, b)
		b = packets.MustBuild(packets.Spec{Src: attacker.Addr, Dst: edge.Addr, Proto: packets.TCP,
			SrcPort: uint16(10000 + i), DstPort: 80, Flags: "S"})
		flood.SetMACs(b, edgeMAC, attackerMAC)
		syn = append(syn, b)
	}
	return fromBlocked, syn
}
