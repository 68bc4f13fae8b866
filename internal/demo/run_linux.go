package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// The topology: testnet numbers hosts in the order given, so the edge is
// 198.18.0.1 (the address edge-default serves), the client .2, the
// attacker .3 and the origin .4.
var (
	hostNames     = []string{"edge", "client", "attacker", "origin"}
	edgeAddr      = netip.MustParseAddr("198.18.0.1")
	originAddr    = netip.MustParseAddr("198.18.0.4")
	tcpOnlyAddr   = netip.MustParseAddr("198.18.0.10")
	blockedPrefix = netip.MustParsePrefix("198.19.128.0/17")
	reflectors    = netip.MustParsePrefix("198.18.64.0/18")
)

const (
	blockTTL   = 10 * time.Minute
	httpPort   = 80
	clientConc = 4 // concurrent client workers
)

// Result is what the demo observed.
type Result struct {
	Prefix   string // namespace name prefix ("rdemo1a2b3c4d")
	Mode     string // xdp.ModeNative or xdp.ModeGeneric
	Profile  string
	Baseline Latency // requests before the floods
	Legit    Latency // requests during the floods
	// EdgePID is the edge's pipeline process (`rampart run`), stopped
	// before Run returns; EdgeReady how long it took to serve the
	// origin's page after it was started.
	EdgePID   int
	EdgeReady time.Duration
	// OriginRequests is every request the origin answered (the readiness
	// check's included); OriginForwarded those the pipeline forwarded on
	// the client's behalf (Via: rampart, X-Forwarded-For the client).
	OriginRequests, OriginForwarded int64

	Floods []Flood
	// Stats are the filter's counters by reason (indexed by xdp.Reason)
	// since it was attached.
	Stats []xdp.Counter
	// ClientRateDropped is how many of the client's own packets its
	// per-source buckets dropped; the demo is designed to keep it 0.
	ClientRateDropped uint64
	Samples           int // drop samples read from the ring
	Elapsed           time.Duration
}

// Latency summarises a set of HTTP requests made through the edge.
type Latency struct {
	// Served counts the requests answered 200 with the origin's body.
	Requests, Served int
	// Statuses counts the responses by status code, served or not (a 502
	// from the edge lands here); NoAnswer the requests that got none
	// (refused, reset, timed out).
	Statuses map[int]int
	NoAnswer int
	// P50 to Max are the served requests' latencies.
	P50, P90, P99, Max time.Duration
	FirstErr           string
}

// Failed is how many requests were not served by the origin.
func (l Latency) Failed() int { return l.Requests - l.Served }

// Flood is one kind of attack traffic and what the filter made of it.
type Flood struct {
	Name    string
	From    string
	Sent    int
	Reasons []xdp.Reason // where its packets should be counted
	Dropped uint64       // sum of those reasons' counters
}

// Run builds the topology, runs the traffic, writes a report to w and
// removes everything it built. Progress goes to w as it happens; log
// receives lifecycle events. Elapsed in the result excludes clean-up.
func Run(ctx context.Context, w io.Writer, log *slog.Logger, opts Options) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return Result{}, fmt.Errorf("demo options: %w", err)
	}
	if os.Geteuid() != 0 {
		return Result{}, ErrNeedsRoot
	}
	exe := opts.Rampart
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return Result{}, fmt.Errorf("find the rampart binary for the edge's pipeline: %w", err)
		}
	}
	spec, err := profiles.Load(opts.Profile)
	if err != nil {
		return Result{}, err
	}
	cfg, err := demoConfig(spec.XDP, opts)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	d := &run{w: w, log: log, opts: opts, cfg: cfg, exe: exe, res: Result{Profile: spec.Name}, start: time.Now()}
	err = d.run(ctx) // returns only after everything it built is gone
	return d.res, err
}

// demoConfig is the profile's filter section plus a TCP-only served
// address and the origin on the allow list.
//
// edge-default serves UDP 443 on 198.18.0.1, and the filter only calls UDP
// from an amplification port "reflection" when it targets a served address
// with no UDP service; toward 198.18.0.1 the same packets would be dropped
// as not_served instead (or pass, aimed at UDP 443).
//
// With filter_services, the replies to the edge's own connections pass only
// from allowlisted prefixes: the pipeline's connections to the origin need
// the origin's address there.
func demoConfig(c xdp.Config, opts Options) (xdp.Config, error) {
	c.Services = append(slices.Clone(c.Services), xdp.Service{Addrs: []netip.Addr{tcpOnlyAddr}, TCP: []uint16{80, 443}})
	c.Allow = append(slices.Clone(c.Allow), netip.PrefixFrom(originAddr, 32))
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("demo filter config: %w", err)
	}
	if !c.RateLimit.Enabled || c.RateLimit.Normal.SYNsPerSecond == 0 {
		return c, errors.New("the demo needs a profile with per-source SYN rate limits on")
	}
	// The client opens one connection per request; staying well under the
	// per-source SYN allowance is the client's job, not the filter's.
	perSecond := float64(opts.Requests) / opts.Duration.Seconds()
	if limit := float64(c.RateLimit.Normal.SYNsPerSecond); perSecond > limit/2 {
		return c, fmt.Errorf("demo options: %d requests in %s is %.0f new connections/s, over half the profile's per-source limit of %.0f SYN/s: lower requests or lengthen the duration",
			opts.Requests, opts.Duration, perSecond, limit)
	}
	return c, nil
}

type run struct {
	w     io.Writer
	log   *slog.Logger
	opts  Options
	cfg   xdp.Config
	exe   string // the rampart binary the edge runs
	res   Result
	start time.Time

	edge, client, attacker, origin *testnet.Host
	filter                         *xdp.Filter
}

func (d *run) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

// run does the work; every resource is released by a deferred step whose
// error is joined into the result, so a failed step still cleans up.
func (d *run) run(ctx context.Context) (err error) {
	prefix := testnet.UniquePrefix("rdemo")
	d.res.Prefix = prefix
	d.printf("building namespaces %s-{lan,%s}: one bridge (a plain switch, bridge netfilter off), 198.18.0.0/24\n",
		prefix, strings.Join(hostNames, ","))
	n, err := testnet.New(ctx, prefix, hostNames...)
	if err != nil {
		return fmt.Errorf("build namespaces: %w", err)
	}
	defer func() {
		cerr := n.Close()
		if cerr == nil {
			cerr = checkGone(prefix)
		}
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove namespaces: %w", cerr))
		} else {
			d.printf("removed namespaces %s-*\n", prefix)
		}
	}()
	d.edge, d.client, d.attacker, d.origin = n.Host("edge"), n.Host("client"), n.Host("attacker"), n.Host("origin")
	if d.edge.Addr != edgeAddr || d.origin.Addr != originAddr {
		return fmt.Errorf("testnet gave the edge %s and the origin %s; the demo's filter config expects %s and %s",
			d.edge.Addr, d.origin.Addr, edgeAddr, originAddr)
	}
	if _, err := d.edge.Exec(ctx, "ip", "addr", "add", tcpOnlyAddr.String()+"/24", "dev", "eth0"); err != nil {
		return err
	}

	// Private maps: the demo's state dies with it and never touches a
	// running edge's pinned maps.
	f, err := xdp.Load(xdp.LoadOptions{Capacity: d.cfg.Capacity, Logger: d.log})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		} else {
			d.printf("detached the filter\n")
		}
	}()
	d.filter = f
	if err := f.Configure(d.cfg); err != nil {
		return fmt.Errorf("configure filter: %w", err)
	}
	if err := f.Maps().Add(xdp.Blocklist, blockedPrefix, blockTTL); err != nil {
		return err
	}
	// Attach resolves the interface and creates the link in the calling
	// thread's namespace.
	if err := d.edge.Do(func() error { return f.Attach(d.edge.Iface) }); err != nil {
		return err
	}
	d.res.Mode = f.Mode()
	d.describe()

	// The origin first, so that the pipeline's first request finds it.
	origin, err := d.serveOrigin()
	if err != nil {
		return err
	}
	defer origin.stop()
	d.printf("origin: Go net/http server in %s on %s:%d, answers 200 %q with %s: %s\n",
		d.origin.NS, d.origin.Addr, originPort, strings.TrimSpace(originBody), originHeader, d.origin.NS)

	target := netip.AddrPortFrom(d.edge.Addr, httpPort)
	originAP := netip.AddrPortFrom(d.origin.Addr, originPort)
	edge, err := startEdge(d.exe, d.edge, target, originAP)
	if err != nil {
		return err
	}
	d.res.EdgePID = edge.pid
	defer func() {
		took, serr := edge.stop()
		if serr != nil {
			err = errors.Join(err, serr)
			return
		}
		if edge.exitReported {
			return // in err already
		}
		d.printf("stopped the edge's pipeline (pid %d): SIGTERM, clean exit in %s\n", edge.pid, took.Round(time.Millisecond))
	}()
	d.printf("edge pipeline: %s run --profile %s --admin \"\" in %s (pid %d), log %s\n",
		filepath.Base(d.exe), edge.profile, d.edge.NS, edge.pid, edge.logPath)
	d.printf("  the embedded %s profile plus a pipeline on %s (one loop per CPU) and zone demo (%s, %s) -> origin %s;\n"+
		"  no --iface: the demo holds the filter on the same interface, to read its counters\n",
		profiles.DefaultName, target, d.edge.Addr, zoneHost, originAP)
	ready, err := edge.waitReady(ctx, edgeReadyTimeout, func() error {
		return d.client.Do(func() error {
			_, err := get(ctx, target)
			return err
		})
	})
	if err != nil {
		return err
	}
	d.res.EdgeReady = ready
	d.printf("  ready in %s: the client's GET http://%s/ came back with the origin's page\n", ready.Round(time.Millisecond), target.Addr())

	stopSamples, err := d.countSamples()
	if err != nil {
		return err
	}
	defer stopSamples()

	floods, err := d.buildFloods()
	if err != nil {
		return err
	}

	// The readiness check and the baseline also fill the neighbour tables
	// and the bridge's forwarding table before any raw frame is sent.
	if d.opts.Baseline > 0 {
		d.res.Baseline = d.requests(ctx, target, d.opts.Baseline, time.Duration(d.opts.Baseline)*20*time.Millisecond)
		d.printf("before the floods: %s\n", d.res.Baseline)
	}

	d.printf("for %s: the client makes %d HTTP requests (one connection each, %.0f/s) while the attacker sends %d raw frames\n",
		d.opts.Duration, d.opts.Requests, float64(d.opts.Requests)/d.opts.Duration.Seconds(), total(floods))
	var wg sync.WaitGroup
	var floodErr error
	wg.Go(func() { floodErr = d.flood(ctx, floods) })
	d.res.Legit = d.requests(ctx, target, d.opts.Requests, d.opts.Duration)
	wg.Wait()
	// Frames still in the bridge's queues reach the filter within
	// milliseconds; give them that before reading the counters.
	time.Sleep(200 * time.Millisecond)

	d.res.OriginRequests, d.res.OriginForwarded = origin.requests.Load(), origin.forwarded.Load()
	if err := edge.running(); err != nil {
		return errors.Join(floodErr, err)
	}

	stats, err := f.Maps().Stats()
	d.res.Samples = stopSamples()
	if err != nil {
		return errors.Join(floodErr, err)
	}
	d.res.Stats = stats
	for i := range floods {
		fl := &floods[i]
		for _, r := range fl.Reasons {
			fl.Dropped += stats[r].Packets
		}
		d.res.Floods = append(d.res.Floods, fl.Flood)
	}
	err = f.Maps().RateSources(func(s xdp.RateSource) bool {
		if s.Prefix.Addr() == d.client.Addr {
			d.res.ClientRateDropped = s.Dropped
			return false
		}
		return true
	})
	cerr := ctx.Err()
	if errors.Is(floodErr, cerr) {
		cerr = nil // said once is enough
	}
	if err := errors.Join(floodErr, err, cerr); err != nil {
		return err
	}
	d.res.Elapsed = time.Since(d.start)
	d.report() // the deferred clean-up steps print their lines after it
	return nil
}

// describe says what the filter runs with, before any traffic.
func (d *run) describe() {
	c := d.cfg
	d.printf("edge %s (and %s) · client %s · attacker %s · origin %s\n",
		d.edge.Addr, tcpOnlyAddr, d.client.Addr, d.attacker.Addr, d.origin.Addr)
	d.printf("filter: profile %s attached to %s eth0 in %s mode, private maps\n", d.res.Profile, d.edge.NS, d.res.Mode)
	for _, s := range c.Services[:len(c.Services)-1] {
		d.printf("  served (profile): %v tcp %v udp %v\n", s.Addrs, s.TCP, s.UDP)
	}
	d.printf("  served (added by the demo): %s tcp 80,443, no UDP: the reflection target, since the profile's\n"+
		"    %s serves UDP 443 and UDP toward a UDP-serving address is not classed as reflection\n", tcpOnlyAddr, d.edge.Addr)
	d.printf("  allowed (added by the demo): %s, the origin: with filter_services, replies to the edge's own\n"+
		"    connections (the pipeline's, to the origin) pass only from allowlisted prefixes\n", c.Allow[len(c.Allow)-1])
	l := c.RateLimit.Normal
	d.printf("  per-source limits (profile, unchanged): %d SYN/s burst %d, %d pkt/s burst %d, %d B/s burst %d\n",
		l.SYNsPerSecond, l.SYNBurst, l.PacketsPerSecond, l.PacketBurst, l.BytesPerSecond, l.ByteBurst)
	d.printf("  blocklist: %s for %s\n", blockedPrefix, blockTTL)
}

// countSamples drains the drop-sample ring while the demo runs; stop ends
// it (once; later calls return the same count) and returns how many
// samples were read.
func (d *run) countSamples() (stop func() int, err error) {
	r, err := d.filter.Maps().Samples()
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	n := 0
	go func() {
		defer close(ch)
		for {
			if _, err := r.Read(); err != nil {
				if errors.Is(err, xdp.ErrClosed) {
					return
				}
				continue // a short or undecodable record: skip it
			}
			n++
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() { r.Close() })
		<-ch
		return n
	}, nil
}

// checkGone confirms no namespace of this run is left behind.
func checkGone(prefix string) error {
	left, err := filepath.Glob(filepath.Join("/run/netns", prefix+"-*"))
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("namespaces left behind: %v", left)
	}
	return nil
}

func total(fs []floodFrames) int {
	n := 0
	for _, f := range fs {
		n += max(f.Sent, 0)
	}
	return n
}
