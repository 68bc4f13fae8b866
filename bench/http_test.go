package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wrkClean is wrk 4.1's report of a clean run with --latency.
const wrkClean = `Running 5s test @ http://127.0.0.1:40001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.60ms  262.04us   6.95ms   87.71%
    Req/Sec    40.12k     1.23k   42.11k    74.00%
  Latency Distribution
     50%    1.57ms
     75%    1.68ms
     90%    1.82ms
     99%    2.45ms
  199612 requests in 5.00s, 234.45MB read
Requests/sec:  39917.46
Transfer/sec:     46.89MB
`

// wrkErrors has both error lines and latencies in three units.
const wrkErrors = `Running 1m test @ http://127.0.0.1:40001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.12ms  400.00ms    1.99s    95.00%
    Req/Sec     2.10k   300.00     3.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    3.00ms
     99%    1.50s
  125000 requests in 1.00m, 140.00MB read
  Socket errors: connect 3, read 17, write 2, timeout 41
  Non-2xx or 3xx responses: 12
Requests/sec:   2083.21
Transfer/sec:      2.33MB
`

func TestHTTPParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    wrkRun
		wantErr string
	}{
		{name: "clean", out: wrkClean, want: wrkRun{Requests: 199612, Elapsed: 5 * time.Second, RPS: 39917.46,
			P50: 1570 * time.Microsecond, P99: 2450 * time.Microsecond}},
		{name: "errors-and-units", out: wrkErrors, want: wrkRun{Requests: 125000, Elapsed: time.Minute, RPS: 2083.21,
			P50: 812 * time.Microsecond, P99: 1500 * time.Millisecond,
			Errors: HTTPErrors{Status: 12, Connect: 3, Read: 17, Write: 2, Timeout: 41}}},
		{name: "only-status-errors", out: strings.Replace(wrkClean, "Requests/sec:", "  Non-2xx or 3xx responses: 7\nRequests/sec:", 1),
			want: wrkRun{Requests: 199612, Elapsed: 5 * time.Second, RPS: 39917.46, P50: 1570 * time.Microsecond,
				P99: 2450 * time.Microsecond, Errors: HTTPErrors{Status: 7}}},
		{name: "no-latency-flag", out: strings.Split(wrkClean, "  Latency Distribution")[0] + "  199612 requests in 5.00s, 234.45MB read\nRequests/sec:  39917.46\n",
			wantErr: "the 50% latency, the 99% latency"},
		{name: "no-rate", out: strings.Replace(wrkClean, "Requests/sec:  39917.46", "", 1), wantErr: "Requests/sec"},
		{name: "empty", out: "", wantErr: "the request count"},
		{name: "connection-refused", out: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: "lacks"},
		{name: "bad-unit", out: strings.Replace(wrkClean, "99%    2.45ms", "99%    2.45xs", 1), wantErr: "not a number with a unit"},
		{name: "bad-number", out: strings.Replace(wrkClean, "50%    1.57ms", "50%    -1.57ms", 1), wantErr: "not a number with a unit"},
		{name: "bad-count", out: strings.Replace(wrkClean, "199612 requests", "-5 requests", 1), wantErr: "not a count"},
		{name: "bad-rate", out: strings.Replace(wrkClean, "39917.46", "NaN", 1), wantErr: "not a rate"},
		{name: "bad-socket-errors", out: strings.Replace(wrkErrors, "write 2, ", "", 1), wantErr: "want connect, read, write and timeout"},
		{name: "unknown-socket-error", out: strings.Replace(wrkErrors, "write 2", "reset 2", 1), wantErr: "unknown socket error"},
		{name: "bad-status-count", out: strings.Replace(wrkErrors, "responses: 12", "responses: x", 1), wantErr: "not a count"},
		{name: "percentiles-out-of-order", out: strings.Replace(wrkClean, "99%    2.45ms", "99%    1.00ms", 1), wantErr: "above 99%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestHTTPParseWrkTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "262.04us", want: 262040 * time.Nanosecond},
		{in: "1.57ms", want: 1570 * time.Microsecond},
		{in: "5.00s", want: 5 * time.Second},
		{in: "1.50m", want: 90 * time.Second},
		{in: "2.00h", want: 2 * time.Hour},
		{in: "0.00us", want: 0},
		{in: " 7ms ", want: 7 * time.Millisecond},
		{in: "1.57", wantErr: true},
		{in: "ms", wantErr: true},
		{in: "-1ms", wantErr: true},
		{in: "Infs", wantErr: true},
		{in: "1e300h", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWrkTime(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// formatWrk writes r the way wrk would, with times in microseconds to
// the nanosecond.
func formatWrk(r wrkRun) string {
	us := func(d time.Duration) string { return fmt.Sprintf("%d.%03dus", d/time.Microsecond, d%time.Microsecond) }
	var b strings.Builder
	fmt.Fprintf(&b, "  Latency Distribution\n     50%%  %s\n     99%%  %s\n", us(r.P50), us(r.P99))
	fmt.Fprintf(&b, "  %d requests in %s, 1.00MB read\n", r.Requests, us(r.Elapsed))
	e := r.Errors
	fmt.Fprintf(&b, "  Socket errors: connect %d, read %d, write %d, timeout %d\n", e.Connect, e.Read, e.Write, e.Timeout)
	fmt.Fprintf(&b, "  Non-2xx or 3xx responses: %d\n", e.Status)
	fmt.Fprintf(&b, "Requests/sec: %s\n", fmt.Sprint(r.RPS))
	return b.String()
}

// FuzzHTTPWrk checks the wrk parser: an error or a result, never a panic;
// a result is sane and survives being written back and parsed again.
func FuzzHTTPWrk(f *testing.F) {
	f.Add(wrkClean)
	f.Add(wrkErrors)
	f.Add("  Latency Distribution\n 50% 1us\n 99% 1h\n 0 requests in 0us, 0B read\nRequests/sec: 0\n")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := parseWrk(out)
		if err != nil {
			if r != (wrkRun{}) {
				t.Fatalf("result %+v with error %v", r, err)
			}
			return
		}
		if r.Requests < 0 || r.RPS < 0 || math.IsNaN(r.RPS) || math.IsInf(r.RPS, 0) || r.P50 < 0 || r.P50 > r.P99 || r.Elapsed < 0 {
			t.Fatalf("insane result %+v", r)
		}
		again, err := parseWrk(formatWrk(r))
		if err != nil {
			t.Fatalf("reparse of %+v: %v", r, err)
		}
		if again != r {
			t.Fatalf("round trip: %+v became %+v", r, again)
		}
	})
}

func TestHTTPParseProcStat(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		wantPPID  int
		wantTicks uint64
		wantErr   bool
	}{
		{name: "nginx-worker", stat: "4242 (nginx) S 4241 4241 4241 0 -1 4194624 1200 0 0 0 731 254 0 0 20 0 1 0 123 0 0", wantPPID: 4241, wantTicks: 985},
		{name: "parens-in-name", stat: "7 (a) (b)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0", wantPPID: 1, wantTicks: 7},
		{name: "init", stat: "1 (systemd) S 0 1 1 0 -1 4194560 0 0 0 0 10 20 0 0 20 0 1 0", wantPPID: 0, wantTicks: 30},
		{name: "bad-ppid", stat: "7 (x) R y 7 7 0 -1 0 0 0 0 0 3 4 0", wantErr: true},
		{name: "short", stat: "7 (x) R 1 7", wantErr: true},
		{name: "no-name", stat: "7 x R 1 7 7 0 -1 0 0 0 0 0 3 4 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ppid, ticks, err := parseProcStat(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if ppid != tc.wantPPID || ticks != tc.wantTicks {
				t.Errorf("got ppid %d ticks %d, want %d and %d", ppid, ticks, tc.wantPPID, tc.wantTicks)
			}
		})
	}
}

// fakeProc writes a /proc with one stat file per process: pid -> ppid,
// ticks.
func fakeProc(t *testing.T, procs map[int][2]int) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := fmt.Sprintf("%d (p%d) S %d 1 1 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0", pid, pid, p[0], p[1])
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not processes: ignored.
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestHTTPProcTree(t *testing.T) {
	// 1 init; 100 nginx master, 101 its worker, 102 a grandchild;
	// 200 haproxy; 300 a broken stat file.
	root := fakeProc(t, map[int][2]int{1: {0, 5}, 100: {1, 10}, 101: {100, 700}, 102: {101, 3}, 200: {1, 900}})
	if err := os.Mkdir(filepath.Join(root, "300"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "300", "stat"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    int
		want    map[int]uint64
		wantErr bool
	}{
		{name: "master-and-workers", root: 100, want: map[int]uint64{100: 10, 101: 700, 102: 3}},
		{name: "single-process", root: 200, want: map[int]uint64{200: 900}},
		{name: "leaf", root: 102, want: map[int]uint64{102: 3}},
		{name: "missing", root: 999, wantErr: true},
		{name: "unreadable-root", root: 300, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := procTree(root, tc.root)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(tc.wantErr && got == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHTTPProcTreeSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	tree, err := procTree("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tree[os.Getpid()]; !ok {
		t.Fatalf("the tree of pid %d lacks it: %v", os.Getpid(), tree)
	}
}

func TestHTTPParseCPUTimes(t *testing.T) {
	const stat = "cpu  7090 0 5793 193605 350 0 73 9 0 0\ncpu0 3203 1 2880 97278 38 4 21 3 0 0\ncpu1 3887 0 2912 96326 311 0 51 5 0 0\nintr 1\n"
	tests := []struct {
		name      string
		stat      string
		cpu       int
		wantBusy  uint64
		wantTotal uint64
		wantErr   bool
	}{
		{name: "cpu0", stat: stat, cpu: 0, wantBusy: 3203 + 1 + 2880 + 4 + 21 + 3, wantTotal: 3203 + 1 + 2880 + 97278 + 38 + 4 + 21 + 3},
		{name: "cpu1", stat: stat, cpu: 1, wantBusy: 3887 + 2912 + 51 + 5, wantTotal: 3887 + 2912 + 96326 + 311 + 51 + 5},
		{name: "missing-cpu", stat: stat, cpu: 2, wantErr: true},
		{name: "negative-cpu", stat: stat, cpu: -1, wantErr: true},
		{name: "short-line", stat: "cpu0 1 2 3 4 5 6 7\n", cpu: 0, wantErr: true},
		{name: "not-a-number", stat: "cpu0 1 2 x 4 5 6 7 8\n", cpu: 0, wantErr: true},
		{name: "overflow", stat: "cpu0 18446744073709551615 1 0 0 0 0 0 0\n", cpu: 0, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			busy, total, err := parseCPUTimes(strings.NewReader(tc.stat), tc.cpu)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if busy != tc.wantBusy || total != tc.wantTotal {
				t.Errorf("got busy %d total %d, want %d and %d", busy, total, tc.wantBusy, tc.wantTotal)
			}
		})
	}
}

func TestHTTPTreeDelta(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[int]uint64
		want          uint64
		wantErr       bool
	}{
		{name: "sum", before: map[int]uint64{1: 10, 2: 5}, after: map[int]uint64{1: 12, 2: 105}, want: 102},
		{name: "worker-restarted", before: map[int]uint64{1: 10, 2: 5}, after: map[int]uint64{1: 12, 3: 1}, wantErr: true},
		{name: "backwards", before: map[int]uint64{1: 10}, after: map[int]uint64{1: 9}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := treeDelta(tc.before, tc.after)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestHTTPOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*HTTPOptions)
		wantErr []string
	}{
		{name: "defaults", edit: func(*HTTPOptions) {}},
		{name: "no-warm-up", edit: func(o *HTTPOptions) { o.WarmUp = 0 }},
		{name: "fractional-duration", edit: func(o *HTTPOptions) { o.Duration = 1500 * time.Millisecond }, wantErr: []string{"duration"}},
		{name: "all-wrong", edit: func(o *HTTPOptions) {
			o.Rounds, o.Connections, o.BodyBytes, o.LoadCPU, o.StartTimeout = 0, 0, 0, 0, 0
		}, wantErr: []string{"rounds", "connections", "body bytes", "cpus", "timeouts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultHTTPOptions()
			tc.edit(&o)
			err := o.validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %v", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestHTTPSummarise(t *testing.T) {
	sample := func(rps, cpu float64) httpSample {
		return httpSample{wrk: wrkRun{Requests: int64(rps * 5), RPS: rps, P50: time.Millisecond, P99: 2 * time.Millisecond},
			cpuUsPerReq: cpu, proxyCPUUtil: 0.95, loadCPUUtil: 0.7, proxyCPUBusy: 0.97, loadCPUBusy: 0.75}
	}
	tests := []struct {
		name        string
		rounds      map[string][][2]float64 // proxy -> per round {rps, cpu}
		wantRatio   *float64
		wantCPU     *float64
		wantSkipped bool
	}{
		{name: "baselines-only", rounds: map[string][][2]float64{
			proxyNginx: {{40000, 23}, {38000, 24}, {41000, 22}}, proxyHAProxy: {{39000, 25}, {37000, 26}, {40000, 24}}}},
		{name: "with-rampart", rounds: map[string][][2]float64{
			proxyRampart: {{44000, 20}, {38000, 24}, {41000, 11}}, proxyNginx: {{40000, 20}, {38000, 24}, {41000, 22}},
			proxyHAProxy: {{39000, 25}, {37000, 26}, {40000, 24}}},
			// per-round rps ratios 1.1, 1, 1 -> 1; cpu ratios 1, 1, 0.5 -> 1
			wantRatio: ptr(1.0), wantCPU: ptr(1.0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultHTTPOptions()
			r := newHTTPResult(opts)
			if _, ok := tc.rounds[proxyRampart]; !ok {
				r.RampartSkipped = "no Rampart command"
			}
			for name, rounds := range tc.rounds {
				r.Proxies = append(r.Proxies, name)
				r.Samples[name] = &HTTPSamples{}
				for _, x := range rounds {
					r.Samples[name].add(sample(x[0], x[1]))
				}
			}
			r.summarise()
			if got := r.RPS[proxyNginx]; got != 40000 {
				t.Errorf("nginx rps median %v, want 40000", got)
			}
			if got := r.Saturated[proxyNginx]; got != saturatedProxy {
				t.Errorf("nginx saturated %q, want %q", got, saturatedProxy)
			}
			if fmt.Sprint(deref(r.RatioVsNginx)) != fmt.Sprint(deref(tc.wantRatio)) ||
				fmt.Sprint(deref(r.CPURatioVsNginx)) != fmt.Sprint(deref(tc.wantCPU)) {
				t.Errorf("ratios vs nginx %v, %v; want %v, %v", deref(r.RatioVsNginx), deref(r.CPURatioVsNginx), deref(tc.wantRatio), deref(tc.wantCPU))
			}

			var buf bytes.Buffer
			if err := WriteJSON(&buf, r); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"name", "rps", "cpu_us_per_req", "p99_ms", "ratio_vs_nginx", "cpu_ratio_vs_nginx", "machine"} {
				if _, ok := got[k]; !ok {
					t.Errorf("JSON lacks %q: %s", k, buf.String())
				}
			}
			if got["name"] != "http" {
				t.Errorf(`"name" = %v, want "http"`, got["name"])
			}
			_, hasRampart := got["rps"].(map[string]any)[proxyRampart]
			if tc.wantRatio == nil {
				if got["ratio_vs_nginx"] != nil || got["cpu_ratio_vs_nginx"] != nil || hasRampart {
					t.Errorf("Rampart figures in a run without Rampart: %s", buf.String())
				}
				if got["rampart_skipped"] == nil {
					t.Error(`no "rampart_skipped" in a run without Rampart`)
				}
			}

			buf.Reset()
			if err := r.WriteTable(&buf); err != nil {
				t.Fatal(err)
			}
			table := buf.String()
			for _, want := range []string{"nginx", "haproxy", "CPU µs/req", "machine:"} {
				if !strings.Contains(table, want) {
					t.Errorf("table lacks %q:\n%s", want, table)
				}
			}
			if tc.wantRatio != nil && !strings.Contains(table, "rampart vs nginx:   1.00x req/s") {
				t.Errorf("table lacks the ratio line:\n%s", table)
			}
			if tc.wantRatio == nil && !strings.Contains(table, "rampart skipped") {
				t.Errorf("table does not say Rampart was skipped:\n%s", table)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

// TestHTTPConfigs renders every generated configuration and has nginx and
// HAProxy check it (nginx -t, haproxy -c), where they are installed.
func TestHTTPConfigs(t *testing.T) {
	tools, err := lookHTTPTools(HTTPOptions{})
	if tools.nginx == "" || tools.haproxy == "" {
		t.Skipf("needs nginx and haproxy: %v", err)
	}
	dir := t.TempDir()
	listen, origin := netip.MustParseAddrPort("127.0.0.1:18080"), netip.MustParseAddrPort("127.0.0.1:18081")
	body := httpBody(maxHTTPBodyBytes) // the largest the origin's configuration takes
	if len(body) != maxHTTPBodyBytes || strings.ContainsAny(body, "\"\\$") {
		t.Fatalf("body of %d bytes with characters nginx would read: %q", len(body), body)
	}
	cmds := map[string]func() (*exec.Cmd, error){
		"origin": func() (*exec.Cmd, error) { return originCommand(tools.nginx, dir, origin, 1, body) },
	}
	proxies, skipped := httpProxies(DefaultHTTPOptions(), tools)
	if skipped == "" || len(proxies) != 2 {
		t.Fatalf("without a Rampart command: %d proxies, skipped %q", len(proxies), skipped)
	}
	for _, p := range proxies {
		cmds[p.name] = func() (*exec.Cmd, error) { return p.command(dir, listen, origin, 0) }
	}
	for name, mk := range cmds {
		t.Run(name, func(t *testing.T) {
			cmd, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			check := exec.Command(cmd.Path, append(cmd.Args[1:], "-t")...) // nginx -t
			if name == proxyHAProxy {
				check = exec.Command(cmd.Path, "-c", "-f", cmd.Args[2]) // haproxy -c -f FILE
			}
			if out, err := check.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", check, err, out)
			}
		})
	}
	if _, err := nginxCommand(tools.nginx, dir+`/a"b`, "x", nginxProxyTemplate, nginxConf{}); err == nil {
		t.Error("a directory with a quote in its name was accepted")
	}
}

func TestHTTPToolVersion(t *testing.T) {
	tests := []struct{ out, want string }{
		{"nginx version: nginx/1.22.1\n", "1.22.1"},
		{"HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\nStatus: long-term\n", "2.6.12-1+deb12u4"},
		{"wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: ...", "4.1.0-3+b2"},
		{"", "unknown"},
	}
	for _, tc := range tests {
		if got := toolVersion(tc.out); got != tc.want {
			t.Errorf("toolVersion(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}
