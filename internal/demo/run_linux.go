package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// The topology: testnet numbers hosts in order, so edge is 198.18.0.1 (the
// address edge-default serves), client .2, attacker .3.
var (
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
	Floods   []Flood
	// Stats are the filter's counters by reason (indexed by xdp.Reason)
	// since it was attached.
	Stats []xdp.Counter
	// ClientRateDropped is how many of the client's own packets its
	// per-source buckets dropped; the demo is designed to keep it 0.
	ClientRateDropped uint64
	Samples           int // drop samples read from the ring
	Elapsed           time.Duration
}

// Latency summarises a set of HTTP requests.
type Latency struct {
	Requests, OK, Failed int
	P50, P99, Max        time.Duration
	FirstErr             string
}

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

	d := &run{w: w, log: log, opts: opts, cfg: cfg, res: Result{Profile: spec.Name}, start: time.Now()}
	err = d.run(ctx) // returns only after everything it built is gone
	return d.res, err
}

// demoConfig is the profile's filter section plus a TCP-only served
// address. edge-default serves UDP 443 on 198.18.0.1, and the filter only
// calls UDP from an amplification port "reflection" when it targets a
// served address with no UDP service; toward 198.18.0.1 the same packets
// would be dropped as not_served instead (or pass, aimed at UDP 443).
func demoConfig(c xdp.Config, opts Options) (xdp.Config, error) {
	c.Services = append(slices.Clone(c.Services), xdp.Service{Addrs: []netip.Addr{tcpOnlyAddr}, TCP: []uint16{80, 443}})
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
	res   Result
	start time.Time

	edge, client, attacker *testnet.Host
	filter                 *xdp.Filter
}

func (d *run) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

// run does the work; every resource is released by a deferred step whose
// error is joined into the result, so a failed step still cleans up.
func (d *run) run(ctx context.Context) (err error) {
	prefix := testnet.UniquePrefix("rdemo")
	d.res.Prefix = prefix
	d.printf("building namespaces %s-{lan,edge,client,attacker}: one bridge (a plain switch, bridge netfilter off), 198.18.0.0/24\n", prefix)
	n, err := testnet.New(ctx, prefix, "edge", "client", "attacker")
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
	d.edge, d.client, d.attacker = n.Host("edge"), n.Host("client"), n.Host("attacker")
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

	stopServer, err := d.serve()
	if err != nil {
		return err
	}
	defer stopServer()

	stopSamples, err := d.countSamples()
	if err != nil {
		return err
	}
	defer stopSamples()

	floods, err := d.buildFloods()
	if err != nil {
		return err
	}

	// The baseline also fills the neighbour tables and the bridge's
	// forwarding table before any raw frame is sent.
	target := netip.AddrPortFrom(d.edge.Addr, httpPort)
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
	if err := errors.Join(floodErr, err, ctx.Err()); err != nil {
		return err
	}
	d.res.Elapsed = time.Since(d.start)
	d.report() // the deferred clean-up steps print their lines after it
	return nil
}

// describe says what the filter runs with, before any traffic.
func (d *run) describe() {
	c := d.cfg
	d.printf("edge %s (and %s) · client %s · attacker %s\n", d.edge.Addr, tcpOnlyAddr, d.client.Addr, d.attacker.Addr)
	d.printf("filter: profile %s attached to %s eth0 in %s mode, private maps\n", d.res.Profile, d.edge.NS, d.res.Mode)
	for _, s := range c.Services[:len(c.Services)-1] {
		d.printf("  served (profile): %v tcp %v udp %v\n", s.Addrs, s.TCP, s.UDP)
	}
	d.printf("  served (added by the demo): %s tcp 80,443, no UDP: the reflection target, since the profile's\n"+
		"    %s serves UDP 443 and UDP toward a UDP-serving address is not classed as reflection\n", tcpOnlyAddr, d.edge.Addr)
	l := c.RateLimit.Normal
	d.printf("  per-source limits (profile, unchanged): %d SYN/s burst %d, %d pkt/s burst %d, %d B/s burst %d\n",
		l.SYNsPerSecond, l.SYNBurst, l.PacketsPerSecond, l.PacketBurst, l.BytesPerSecond, l.ByteBurst)
	d.printf("  blocklist: %s for %s\n", blockedPrefix, blockTTL)
}

// serve starts a tiny HTTP server on the edge's port 80 (every address).
func (d *run) serve() (stop func(), err error) {
	var ln net.Listener
	if err := d.edge.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", httpPort))
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", d.edge.NS, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "ok\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.With("component", "demo").Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return func() {
		srv.Close()
		<-done
	}, nil
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
