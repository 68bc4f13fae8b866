package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rampart-edge/rampart/internal/flood"
	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/xdp"
)

// floodFrames is a flood with the frames it cycles through.
type floodFrames struct {
	Flood
	frames [][]byte
}

// distinct frames per flood: enough source ports and addresses to look
// like a flood to the edge's stack, few enough to stay in cache.
const distinct = 1024

// buildFloods builds every flood's frames, addressed to the edge's MAC from
// the attacker's, so the bridge delivers them to the edge alone.
func (d *run) buildFloods() ([]floodFrames, error) {
	var edgeMAC, attackerMAC net.HardwareAddr
	if err := d.edge.Do(func() (err error) { edgeMAC, err = flood.MAC(d.edge.Iface); return err }); err != nil {
		return nil, err
	}
	if err := d.attacker.Do(func() (err error) { attackerMAC, err = flood.MAC(d.attacker.Iface); return err }); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: the same frames every run
	edge, attacker := d.edge.Addr, d.attacker.Addr
	randomIn := func(p netip.Prefix) netip.Addr {
		a := p.Addr().As4()
		host := rng.Uint32() & (1<<(32-p.Bits()) - 1)
		v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	ampPorts := []uint16{53, 123, 11211, 1900, 389, 19, 161}

	var out []floodFrames
	add := func(fl Flood, count int, spec func(i int) (packets.Spec, func([]byte))) error {
		ff := floodFrames{Flood: fl}
		ff.Sent = count // the plan; flood() replaces it with what was sent
		for i := range distinct {
			s, edit := spec(i)
			b, err := packets.Build(s)
			if err != nil {
				return fmt.Errorf("build %s frame: %w", fl.Name, err)
			}
			if edit != nil {
				edit(b)
			}
			flood.SetMACs(b, edgeMAC, attackerMAC)
			ff.frames = append(ff.frames, b)
		}
		out = append(out, ff)
		return nil
	}
	err := add(Flood{Name: "SYN flood", From: fmt.Sprintf("%s (one source) to %s:80", attacker, edge),
		Reasons: []xdp.Reason{xdp.ReasonRateSYN}}, d.opts.SYNFlood,
		func(i int) (packets.Spec, func([]byte)) {
			return packets.Spec{Src: attacker, Dst: edge, Proto: packets.TCP,
				SrcPort: uint16(10000 + i), DstPort: httpPort, Flags: "S"}, nil
		})
	if err == nil {
		err = add(Flood{Name: "UDP reflection", From: fmt.Sprintf("ports 53/123/11211/1900/389/19/161 of %s to %s", reflectors, tcpOnlyAddr),
			Reasons: []xdp.Reason{xdp.ReasonUDPReflection}}, d.opts.Reflection,
			func(i int) (packets.Spec, func([]byte)) {
				return packets.Spec{Src: randomIn(reflectors), Dst: tcpOnlyAddr, Proto: packets.UDP,
					SrcPort: ampPorts[i%len(ampPorts)], DstPort: uint16(1024 + rng.IntN(60000)),
					Payload: make([]byte, 468)}, nil // the size of a typical amplified DNS answer
			})
	}
	if err == nil {
		err = add(Flood{Name: "blocked prefix", From: fmt.Sprintf("spoofed %s to %s tcp/80 and udp/443", blockedPrefix, edge),
			Reasons: []xdp.Reason{xdp.ReasonBlocklist}}, d.opts.Blocked,
			func(i int) (packets.Spec, func([]byte)) {
				s := packets.Spec{Src: randomIn(blockedPrefix), Dst: edge, Proto: packets.TCP,
					SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: httpPort, Flags: "S"}
				if i%2 == 1 { // served too: only the blocklist stops it
					s.Proto, s.DstPort, s.Flags = packets.UDP, 443, ""
				}
				return s, nil
			})
	}
	if err == nil {
		err = add(Flood{Name: "malformed", From: fmt.Sprintf("%s to %s: null/Xmas/SYN+FIN flags, IHL 4, fragments", attacker, edge),
			Reasons: []xdp.Reason{xdp.ReasonTCPFlags, xdp.ReasonIPv4BadIHL, xdp.ReasonFragmentDropped}}, d.opts.Malformed,
			func(i int) (packets.Spec, func([]byte)) {
				s := packets.Spec{Src: attacker, Dst: edge, Proto: packets.TCP, SrcPort: uint16(20000 + i), DstPort: httpPort}
				switch i % 5 {
				case 0: // null scan
				case 1:
					s.Flags = "FPU" // Xmas
				case 2:
					s.Flags = "SF"
				case 3: // header length 16 bytes: shorter than any IPv4 header
					s.Proto, s.DstPort = packets.UDP, 443
					return s, func(b []byte) { b[packets.L3Offset(0)] = 0x44 }
				case 4:
					s.Proto, s.DstPort, s.MoreFragments = packets.UDP, 443, true
					s.Payload = make([]byte, 64)
				}
				return s, nil
			})
	}
	return out, err
}

// floodRound is how often the attacker sends each flood's next share, so
// that the floods overlap the client's requests from start to end.
const floodRound = 50 * time.Millisecond

// flood sends every flood's packets spread over the demo's window, from
// one packet socket per flood in the attacker's namespace.
func (d *run) flood(ctx context.Context, fs []floodFrames) error {
	senders := make([]*flood.Sender, len(fs))
	defer func() {
		for _, s := range senders {
			if s != nil {
				s.Close()
			}
		}
	}()
	if err := d.attacker.Do(func() error {
		for i := range senders {
			s, err := flood.Open(d.attacker.Iface)
			if err != nil {
				return err
			}
			senders[i] = s
		}
		return nil
	}); err != nil {
		return err
	}
	planned := make([]int, len(fs))
	for i := range fs {
		planned[i] = max(fs[i].Sent, 0)
		fs[i].Sent = 0
	}
	rounds := max(int(d.opts.Duration/floodRound), 1)
	start := time.Now()
	for r := range rounds {
		for i := range fs {
			share := planned[i]*(r+1)/rounds - planned[i]*r/rounds
			sent, err := senders[i].Send(ctx, fs[i].frames, share)
			fs[i].Sent += sent
			if err != nil {
				return fmt.Errorf("send %s: %w", fs[i].Name, err)
			}
		}
		if !sleepUntil(ctx, start.Add(time.Duration(r+1)*floodRound)) {
			return ctx.Err()
		}
	}
	return nil
}

// requests makes n HTTP requests to target (the edge's pipeline) from the
// client, each on a new TCP connection, started evenly over window by a
// few workers.
func (d *run) requests(ctx context.Context, target netip.AddrPort, n int, window time.Duration) Latency {
	workers := min(clientConc, n)
	interval := window / time.Duration(n)
	type outcome struct {
		took   time.Duration
		status int // 0: no response
		err    error
	}
	results := make([][]outcome, workers)
	done := make(chan struct{}, workers)
	start := time.Now()
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			// Each worker's thread stays in the client's namespace, so every
			// socket it opens is the client's.
			err := d.client.Do(func() error {
				for i := w; i < n; i += workers {
					if !sleepUntil(ctx, start.Add(time.Duration(i)*interval)) {
						return ctx.Err()
					}
					t0 := time.Now()
					status, err := get(ctx, target)
					results[w] = append(results[w], outcome{time.Since(t0), status, err})
				}
				return nil
			})
			if err != nil && ctx.Err() == nil {
				results[w] = append(results[w], outcome{err: err})
			}
		}()
	}
	for range workers {
		<-done
	}
	l := Latency{Statuses: map[int]int{}}
	var took []time.Duration
	for _, rs := range results {
		for _, r := range rs {
			l.Requests++
			if r.status == 0 {
				l.NoAnswer++
			} else {
				l.Statuses[r.status]++
			}
			if r.err != nil {
				if l.FirstErr == "" {
					l.FirstErr = r.err.Error()
				}
				continue
			}
			l.Served++
			took = append(took, r.took)
		}
	}
	l.P50, l.P90, l.P99, l.Max = percentile(took, 50), percentile(took, 90), percentile(took, 99), percentile(took, 100)
	return l
}

// get makes one HTTP/1.1 request on a fresh connection and checks that the
// origin's page came back: any other answer (a 502 from the edge, say) is
// an error, with the status it had (0 when there was no response). It
// runs on a thread inside the client's namespace, which is why it dials
// itself: net/http's Transport dials on goroutines of its own.
func get(ctx context.Context, target netip.AddrPort) (status int, err error) {
	dialer := net.Dialer{Timeout: 3 * time.Second}
	c, err := dialer.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + target.Addr().String() + "\r\nUser-Agent: rampart-demo\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return 0, fmt.Errorf("send request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read body of a %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != originBody {
		return resp.StatusCode, fmt.Errorf("not the origin's page: %s %q", resp.Status, body)
	}
	return resp.StatusCode, nil
}

// percentile is the nearest-rank percentile of ds (p in 1..100).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 · n)
	return s[max(rank, 1)-1]
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// String is one line: served, latency, statuses, the first failure.
func (l Latency) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d requests served by the origin", l.Served, l.Requests)
	if l.Served > 0 {
		fmt.Fprintf(&b, ", latency p50 %s p90 %s p99 %s max %s", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	}
	fmt.Fprintf(&b, "; statuses %s", l.StatusSummary())
	if l.FirstErr != "" {
		fmt.Fprintf(&b, " (first failure: %s)", l.FirstErr)
	}
	return b.String()
}

// StatusSummary lists the responses by status, then those with none:
// "200×198 502×2 no-answer×1".
func (l Latency) StatusSummary() string {
	codes := slices.Sorted(maps.Keys(l.Statuses))
	parts := make([]string, 0, len(codes)+1)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, l.Statuses[c]))
	}
	if l.NoAnswer > 0 {
		parts = append(parts, fmt.Sprintf("no-answer×%d", l.NoAnswer))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
