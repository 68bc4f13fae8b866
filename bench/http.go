package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The HTTP benchmark puts Rampart, nginx and HAProxy, each as a reverse
// proxy with one event loop (one worker, one thread), in front of the same
// origin on loopback and drives each with the same wrk load: 64 keep-alive
// connections asking for a 1 KiB body. The proxies run side by side for the
// whole benchmark and are measured in interleaved rounds, the order
// rotating each round (A B C, B C A, C A B, ...); figures are medians over
// rounds and ratios medians of per-round ratios.
//
// The proxy under test is pinned to one CPU, wrk and the origin (an nginx
// with one worker answering from memory) to the other. On two cores wrk
// often saturates its CPU before the proxy does, so beside requests/s the
// result gives each proxy's CPU time per request (utime + stime of its
// whole process tree over the wrk run, from /proc) and how busy each side
// was. On loopback the kernel runs much of the receive path of a packet in
// the sender's context, so a proxy's CPU time includes part of the TCP
// work of the other side and the other side's includes part of the
// proxy's; the error is the same for every proxy.

// Proxy names, stable: they are JSON keys.
const (
	proxyRampart = "rampart"
	proxyNginx   = "nginx"
	proxyHAProxy = "haproxy"
)

// Saturation labels of HTTPResult.Saturated, stable.
const (
	saturatedProxy = "proxy"
	saturatedLoad  = "load"
	saturatedBoth  = "both"
	saturatedNone  = "none"
)

// saturatedUtil is the share of its CPU above which a side counts as
// saturated: the rest goes to interrupts, other work and sampling slack.
const saturatedUtil = 0.9

// otherWorkWarn is the share of a benchmark CPU taken by other work above
// which the table warns that the machine was busy.
const otherWorkWarn = 0.1

// maxHTTPConnections keeps two connections per client connection within
// the proxies' 4096; maxHTTPBodyBytes keeps the origin's body within one
// token of an nginx configuration (a 4 KiB buffer).
const (
	maxHTTPConnections = 2000
	maxHTTPBodyBytes   = 4000
)

// wrkThreads is wrk's thread count: one load thread on the load CPU.
const wrkThreads = 1

// HTTPOptions sizes `rampart bench http`.
type HTTPOptions struct {
	// Rounds of the interleaved measurement; figures are medians.
	Rounds int
	// Duration of one wrk run, whole seconds (wrk's unit).
	Duration time.Duration
	// WarmUp is a discarded wrk run of each proxy before the first round
	// (whole seconds; 0 skips it).
	WarmUp time.Duration
	// Connections is wrk's keep-alive connection count.
	Connections int
	// BodyBytes is the size of the origin's response body.
	BodyBytes int
	// ProxyCPU runs the proxy under test (every process and thread of
	// it); LoadCPU runs wrk and the origin.
	ProxyCPU int
	LoadCPU  int
	// Rampart returns the command that runs Rampart as a reverse proxy in
	// the foreground (not daemonised): listening for HTTP/1.1 on listen,
	// forwarding to origin (plain HTTP/1.1, keep-alive), with one event
	// loop, no access log. The harness sets its stdout and stderr (when
	// nil) to a log file, starts it in its own process group from a
	// thread pinned to ProxyCPU (so a Go binary sees one CPU and sets
	// GOMAXPROCS to 1), checks every thread stays on that CPU, waits
	// until GET / answers the origin's body, and stops it (SIGTERM, then
	// SIGKILL to its group after StopTimeout) at the end. Nil skips
	// Rampart, and the result says so.
	Rampart func(listen, origin netip.AddrPort) *exec.Cmd
	// Paths of the tools; empty looks them up in PATH, then /usr/sbin and
	// /usr/bin.
	NginxPath   string
	HAProxyPath string
	WrkPath     string
	// StartTimeout bounds how long a daemon may take to answer its first
	// request; StopTimeout how long it may take to exit after SIGTERM
	// before it is killed.
	StartTimeout time.Duration
	StopTimeout  time.Duration
	// AllowErrors reports wrk's errors (non-2xx/3xx responses, socket
	// errors) in the result instead of failing the run on the first one.
	AllowErrors bool
	// Dir receives the generated configuration files and the daemons'
	// logs; it must exist and is left in place. Empty uses a new
	// temporary directory, removed at the end.
	Dir    string
	Logger *slog.Logger
}

// DefaultHTTPOptions are what `rampart bench http` runs without flags: the
// load of the issue (64 connections, 1 KiB), proxy on CPU 0, load on CPU 1.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{Rounds: 5, Duration: 5 * time.Second, WarmUp: time.Second, Connections: 64, BodyBytes: 1024,
		ProxyCPU: 0, LoadCPU: 1, StartTimeout: 10 * time.Second, StopTimeout: 5 * time.Second}
}

func (o HTTPOptions) validate() error {
	var errs []error
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds: must be at least 1, got %d", o.Rounds))
	}
	if o.Duration < time.Second || o.Duration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("duration: must be whole seconds, at least 1s, got %s", o.Duration))
	}
	if o.WarmUp < 0 || o.WarmUp%time.Second != 0 {
		errs = append(errs, fmt.Errorf("warm-up: must be whole seconds or 0, got %s", o.WarmUp))
	}
	// A proxy holds two connections per client connection; the
	// configurations allow 4096.
	if o.Connections < wrkThreads || o.Connections > maxHTTPConnections {
		errs = append(errs, fmt.Errorf("connections: must be in %d..%d, got %d", wrkThreads, maxHTTPConnections, o.Connections))
	}
	if o.BodyBytes < 1 || o.BodyBytes > maxHTTPBodyBytes {
		errs = append(errs, fmt.Errorf("body bytes: must be in 1..%d (the origin returns it from its configuration), got %d", maxHTTPBodyBytes, o.BodyBytes))
	}
	if o.ProxyCPU < 0 || o.LoadCPU < 0 || o.ProxyCPU == o.LoadCPU {
		errs = append(errs, fmt.Errorf("cpus: proxy and load need two different CPUs, got %d and %d", o.ProxyCPU, o.LoadCPU))
	}
	if o.StartTimeout <= 0 || o.StopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("start and stop timeouts: must be positive, got %s and %s", o.StartTimeout, o.StopTimeout))
	}
	return errors.Join(errs...)
}

// HTTPResult is the outcome of the HTTP benchmark. Field names are stable:
// scripts read them. Maps are keyed by proxy name ("rampart", "nginx",
// "haproxy"); a proxy that did not run has no key.
type HTTPResult struct {
	Name string `json:"name"`
	// Proxies lists the measured proxies in the order of the first round.
	Proxies []string `json:"proxies"`
	// Medians over rounds.
	RPS         map[string]float64 `json:"rps"`
	CPUUsPerReq map[string]float64 `json:"cpu_us_per_req"`
	P50Ms       map[string]float64 `json:"p50_ms"`
	P99Ms       map[string]float64 `json:"p99_ms"`
	// RatioVsNginx is Rampart's requests/s over nginx's, CPURatioVsNginx
	// Rampart's CPU per request over nginx's (lower is better); the same
	// against HAProxy. Each is the median of per-round ratios; null
	// without Rampart.
	RatioVsNginx      *float64 `json:"ratio_vs_nginx"`
	CPURatioVsNginx   *float64 `json:"cpu_ratio_vs_nginx"`
	RatioVsHAProxy    *float64 `json:"ratio_vs_haproxy"`
	CPURatioVsHAProxy *float64 `json:"cpu_ratio_vs_haproxy"`
	RampartSkipped    string   `json:"rampart_skipped,omitempty"`
	// ProxyCPUUtil is the share of its CPU the proxy's processes used
	// over a run; LoadCPUUtil the same for wrk and the origin together.
	// ProxyCPUBusy and LoadCPUBusy are how busy those CPUs were, by
	// anything (/proc/stat: all but idle and iowait; steal counts as
	// busy): busy minus util is other work, interrupts and ksoftirqd.
	// Saturated says which CPU was at least 90 % busy: "proxy", "load",
	// "both" or "none".
	ProxyCPUUtil map[string]float64 `json:"proxy_cpu_util"`
	LoadCPUUtil  map[string]float64 `json:"load_cpu_util"`
	ProxyCPUBusy map[string]float64 `json:"proxy_cpu_busy"`
	LoadCPUBusy  map[string]float64 `json:"load_cpu_busy"`
	Saturated    map[string]string  `json:"saturated"`
	// Errors sums wrk's errors over the measured runs (all zero unless
	// AllowErrors; otherwise the first error fails the run).
	Errors map[string]HTTPErrors `json:"errors"`
	// Samples holds every round's figures, for spread.
	Samples     map[string]*HTTPSamples `json:"samples"`
	Rounds      int                     `json:"rounds"`
	DurationS   float64                 `json:"duration_s"`
	WarmUpS     float64                 `json:"warm_up_s"`
	Connections int                     `json:"connections"`
	WrkThreads  int                     `json:"wrk_threads"`
	BodyBytes   int                     `json:"body_bytes"`
	// ProxyCPU ran the proxies, LoadCPU wrk and the origin.
	ProxyCPU int `json:"proxy_cpu"`
	LoadCPU  int `json:"load_cpu"`
	// Versions of nginx, HAProxy and wrk, as they print them.
	Versions map[string]string `json:"versions"`
	Machine  Machine           `json:"machine"`
}

// HTTPSamples are one proxy's per-round figures.
type HTTPSamples struct {
	RPS          []float64 `json:"rps"`
	CPUUsPerReq  []float64 `json:"cpu_us_per_req"`
	P50Ms        []float64 `json:"p50_ms"`
	P99Ms        []float64 `json:"p99_ms"`
	ProxyCPUUtil []float64 `json:"proxy_cpu_util"`
	LoadCPUUtil  []float64 `json:"load_cpu_util"`
	ProxyCPUBusy []float64 `json:"proxy_cpu_busy"`
	LoadCPUBusy  []float64 `json:"load_cpu_busy"`
	Requests     []int64   `json:"requests"`
}

// HTTPErrors are wrk's error counts.
type HTTPErrors struct {
	// Status counts responses outside 2xx and 3xx.
	Status  int64 `json:"non_2xx_3xx"`
	Connect int64 `json:"connect"`
	Read    int64 `json:"read"`
	Write   int64 `json:"write"`
	Timeout int64 `json:"timeout"`
}

// Total is the sum of all counts.
func (e HTTPErrors) Total() int64 { return e.Status + e.Connect + e.Read + e.Write + e.Timeout }

func (e HTTPErrors) add(o HTTPErrors) HTTPErrors {
	return HTTPErrors{e.Status + o.Status, e.Connect + o.Connect, e.Read + o.Read, e.Write + o.Write, e.Timeout + o.Timeout}
}

func (e HTTPErrors) String() string {
	return fmt.Sprintf("%d non-2xx/3xx responses; socket errors: connect %d, read %d, write %d, timeout %d",
		e.Status, e.Connect, e.Read, e.Write, e.Timeout)
}

// httpSample is one proxy's figures from one wrk run.
type httpSample struct {
	wrk          wrkRun
	cpuUsPerReq  float64
	proxyCPUUtil float64
	loadCPUUtil  float64
	proxyCPUBusy float64
	loadCPUBusy  float64
}

func (s *HTTPSamples) add(x httpSample) {
	s.RPS = append(s.RPS, x.wrk.RPS)
	s.CPUUsPerReq = append(s.CPUUsPerReq, x.cpuUsPerReq)
	s.P50Ms = append(s.P50Ms, durationMs(x.wrk.P50))
	s.P99Ms = append(s.P99Ms, durationMs(x.wrk.P99))
	s.ProxyCPUUtil = append(s.ProxyCPUUtil, x.proxyCPUUtil)
	s.LoadCPUUtil = append(s.LoadCPUUtil, x.loadCPUUtil)
	s.ProxyCPUBusy = append(s.ProxyCPUBusy, x.proxyCPUBusy)
	s.LoadCPUBusy = append(s.LoadCPUBusy, x.loadCPUBusy)
	s.Requests = append(s.Requests, x.wrk.Requests)
}

func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newHTTPResult is a result with the run's settings and no figures.
func newHTTPResult(opts HTTPOptions) *HTTPResult {
	return &HTTPResult{Name: "http", RPS: map[string]float64{}, CPUUsPerReq: map[string]float64{}, P50Ms: map[string]float64{},
		P99Ms: map[string]float64{}, ProxyCPUUtil: map[string]float64{}, LoadCPUUtil: map[string]float64{},
		ProxyCPUBusy: map[string]float64{}, LoadCPUBusy: map[string]float64{},
		Saturated: map[string]string{}, Errors: map[string]HTTPErrors{}, Samples: map[string]*HTTPSamples{},
		Rounds: opts.Rounds, DurationS: opts.Duration.Seconds(), WarmUpS: opts.WarmUp.Seconds(), Connections: opts.Connections,
		WrkThreads: wrkThreads, BodyBytes: opts.BodyBytes, ProxyCPU: opts.ProxyCPU, LoadCPU: opts.LoadCPU,
		Versions: map[string]string{}, Machine: ThisMachine()}
}

// summarise fills the medians and ratios from Samples.
func (r *HTTPResult) summarise() {
	for name, s := range r.Samples {
		r.RPS[name] = median(s.RPS)
		r.CPUUsPerReq[name] = median(s.CPUUsPerReq)
		r.P50Ms[name] = median(s.P50Ms)
		r.P99Ms[name] = median(s.P99Ms)
		r.ProxyCPUUtil[name] = median(s.ProxyCPUUtil)
		r.LoadCPUUtil[name] = median(s.LoadCPUUtil)
		r.ProxyCPUBusy[name] = median(s.ProxyCPUBusy)
		r.LoadCPUBusy[name] = median(s.LoadCPUBusy)
		r.Saturated[name] = saturation(r.ProxyCPUBusy[name], r.LoadCPUBusy[name])
	}
	ratio := func(a, b *HTTPSamples, pick func(*HTTPSamples) []float64) *float64 {
		if a == nil || b == nil {
			return nil
		}
		rs := ratios(pick(a), pick(b))
		if len(rs) == 0 {
			return nil
		}
		v := median(rs)
		return &v
	}
	rps := func(s *HTTPSamples) []float64 { return s.RPS }
	cpu := func(s *HTTPSamples) []float64 { return s.CPUUsPerReq }
	ra, ng, ha := r.Samples[proxyRampart], r.Samples[proxyNginx], r.Samples[proxyHAProxy]
	r.RatioVsNginx, r.CPURatioVsNginx = ratio(ra, ng, rps), ratio(ra, ng, cpu)
	r.RatioVsHAProxy, r.CPURatioVsHAProxy = ratio(ra, ha, rps), ratio(ra, ha, cpu)
}

func saturation(proxy, load float64) string {
	switch p, l := proxy >= saturatedUtil, load >= saturatedUtil; {
	case p && l:
		return saturatedBoth
	case p:
		return saturatedProxy
	case l:
		return saturatedLoad
	}
	return saturatedNone
}

// WriteTable prints the result for a person.
func (r *HTTPResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "HTTP reverse proxies: wrk -t%d -c%d, %gs per run, GET / of a %d-byte body from an nginx origin on loopback;\n",
		r.WrkThreads, r.Connections, r.DurationS, r.BodyBytes)
	fmt.Fprintf(w, "median of %d interleaved rounds (order rotating), after a %gs warm-up per proxy;\n", r.Rounds, r.WarmUpS)
	fmt.Fprintf(w, "each proxy one worker/thread/event loop on CPU %d; wrk and the origin on CPU %d\n\n", r.ProxyCPU, r.LoadCPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\treq/s\tCPU µs/req\tp50 ms\tp99 ms\tproxy CPU\tload CPU\tother work\tsaturated\treq/s min..max\terrors\t")
	var otherMax float64
	for _, name := range httpProxyOrder(r.Proxies) {
		s := r.Samples[name]
		if s == nil {
			continue
		}
		po, lo := max(0, r.ProxyCPUBusy[name]-r.ProxyCPUUtil[name]), max(0, r.LoadCPUBusy[name]-r.LoadCPUUtil[name])
		otherMax = max(otherMax, po, lo)
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f%%\t%.0f%%\t%.0f%% / %.0f%%\t%s\t%s\t%d\t\n", name, r.RPS[name],
			r.CPUUsPerReq[name], r.P50Ms[name], r.P99Ms[name], 100*r.ProxyCPUUtil[name], 100*r.LoadCPUUtil[name],
			100*po, 100*lo, r.Saturated[name], spread(s.RPS), r.Errors[name].Total())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nCPU µs/req: utime+stime of the proxy's process tree over the run, per request served. proxy CPU, load CPU:")
	fmt.Fprintf(w, "share of CPU %d used by the proxy, of CPU %d by wrk + origin; other work: the rest of each CPU's busy time\n", r.ProxyCPU, r.LoadCPU)
	fmt.Fprintln(w, "(other processes, interrupts, ksoftirqd); saturated: which CPU was at least 90 % busy")
	if otherMax > otherWorkWarn {
		fmt.Fprintf(w, "warning: other work took up to %.0f%% of a benchmark CPU: the machine was busy, absolute figures are low; trust the ratios more\n", 100*otherMax)
	}
	if r.RatioVsNginx != nil {
		fmt.Fprintf(w, "\nrampart vs nginx:   %.2fx req/s, %.2fx CPU per request (lower is better)\n", *r.RatioVsNginx, deref(r.CPURatioVsNginx))
	}
	if r.RatioVsHAProxy != nil {
		fmt.Fprintf(w, "rampart vs haproxy: %.2fx req/s, %.2fx CPU per request (lower is better)\n", *r.RatioVsHAProxy, deref(r.CPURatioVsHAProxy))
	}
	if r.RampartSkipped != "" {
		fmt.Fprintf(w, "\nrampart skipped: %s\n", r.RampartSkipped)
	}
	for _, name := range httpProxyOrder(r.Proxies) {
		if e := r.Errors[name]; e.Total() > 0 {
			fmt.Fprintf(w, "%s errors: %s\n", name, e)
		}
	}
	if len(r.Versions) > 0 {
		fmt.Fprintf(w, "\nversions: nginx %s, haproxy %s, wrk %s\n", r.Versions[proxyNginx], r.Versions[proxyHAProxy], r.Versions["wrk"])
	}
	m := r.Machine
	_, err := fmt.Fprintf(w, "machine: %s, %d cores, kernel %s, %s\n", m.CPU, m.Cores, m.Kernel, m.Go)
	return err
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// httpProxyOrder lists names with Rampart first, then the baselines, each
// once: the table's row order.
func httpProxyOrder(names []string) []string {
	out := slices.Clone(names)
	rank := func(n string) int {
		if i := slices.Index([]string{proxyRampart, proxyNginx, proxyHAProxy}, n); i >= 0 {
			return i
		}
		return 3
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return slices.Compact(out)
}

// wrkRun is what one wrk run with --latency printed.
type wrkRun struct {
	Requests int64
	Elapsed  time.Duration
	RPS      float64
	P50, P99 time.Duration
	Errors   HTTPErrors
}

// parseWrk reads wrk 4's report (run with --latency): the total requests,
// requests/s, the 50th and 99th latency percentiles and the error lines,
// which wrk prints only when a count is not zero.
func parseWrk(out string) (wrkRun, error) {
	var r wrkRun
	var haveRequests, haveRPS, haveP50, haveP99 bool
	inDist := false
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "Latency Distribution" {
			inDist = true
			continue
		}
		if inDist {
			if pct, val, ok := strings.Cut(line, "%"); ok && !strings.ContainsAny(pct, " \t") {
				p, err := strconv.ParseFloat(pct, 64)
				if err != nil {
					return wrkRun{}, fmt.Errorf("wrk latency percentile %q: %w", line, err)
				}
				d, err := parseWrkTime(strings.TrimSpace(val))
				if err != nil {
					return wrkRun{}, fmt.Errorf("wrk latency percentile %q: %w", line, err)
				}
				switch p {
				case 50:
					r.P50, haveP50 = d, true
				case 99:
					r.P99, haveP99 = d, true
				}
				continue
			}
			inDist = false
		}
		switch {
		case strings.Contains(line, " requests in "):
			// 199612 requests in 5.00s, 234.45MB read
			n, rest, _ := strings.Cut(line, " requests in ")
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return wrkRun{}, fmt.Errorf("wrk request count in %q: not a count", line)
			}
			el, _, _ := strings.Cut(rest, ",")
			d, err := parseWrkTime(el)
			if err != nil {
				return wrkRun{}, fmt.Errorf("wrk run time in %q: %w", line, err)
			}
			r.Requests, r.Elapsed, haveRequests = v, d, true
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return wrkRun{}, fmt.Errorf("wrk requests/s in %q: not a rate", line)
			}
			r.RPS, haveRPS = v, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || v < 0 {
				return wrkRun{}, fmt.Errorf("wrk status errors in %q: not a count", line)
			}
			r.Errors.Status = v
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			if err := parseWrkSocketErrors(strings.TrimPrefix(line, "Socket errors:"), &r.Errors); err != nil {
				return wrkRun{}, fmt.Errorf("wrk socket errors in %q: %w", line, err)
			}
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		what string
	}{{haveRequests, "the request count"}, {haveRPS, "Requests/sec"}, {haveP50, "the 50% latency"}, {haveP99, "the 99% latency (run with --latency)"}} {
		if !m.ok {
			missing = append(missing, m.what)
		}
	}
	if len(missing) > 0 {
		return wrkRun{}, fmt.Errorf("wrk output lacks %s", strings.Join(missing, ", "))
	}
	if r.P50 > r.P99 {
		return wrkRun{}, fmt.Errorf("wrk latency: 50%% (%s) above 99%% (%s)", r.P50, r.P99)
	}
	return r, nil
}

func parseWrkSocketErrors(s string, e *HTTPErrors) error {
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return fmt.Errorf("%q: want a name and a count", part)
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: not a count", part)
		}
		var dst *int64
		switch f[0] {
		case "connect":
			dst = &e.Connect
		case "read":
			dst = &e.Read
		case "write":
			dst = &e.Write
		case "timeout":
			dst = &e.Timeout
		default:
			return fmt.Errorf("unknown socket error kind %q", f[0])
		}
		if seen[f[0]] {
			return fmt.Errorf("%q counted twice", f[0])
		}
		seen[f[0]] = true
		*dst = v
	}
	if len(seen) != 4 {
		return errors.New("want connect, read, write and timeout")
	}
	return nil
}

// wrkTimeRE is one of wrk's times: a decimal number and one unit.
var wrkTimeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(us|ms|s|m|h)$`)

// parseWrkTime reads one of wrk's times: a decimal number and a unit, us,
// ms, s, m or h ("262.04us", "1.57ms", "5.00s", "1.00m"), exactly to the
// nanosecond.
func parseWrkTime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if !wrkTimeRE.MatchString(s) {
		return 0, fmt.Errorf("time %q: not a number with a unit (us, ms, s, m, h)", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", s, err)
	}
	return d, nil
}
