package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RunHTTP measures Rampart (when opts.Rampart is set), nginx and HAProxy
// as reverse proxies in front of one nginx origin, with wrk, in
// interleaved rounds. Every process it starts is stopped by its pid before
// it returns, on errors and cancellation too. It needs nginx, haproxy and
// wrk, and two CPUs; not root.
func RunHTTP(ctx context.Context, opts HTTPOptions) (_ *HTTPResult, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bench/http")
	tools, err := lookHTTPTools(opts)
	if err != nil {
		return nil, fmt.Errorf("the http benchmark needs nginx, haproxy and wrk (Debian: apt-get install nginx haproxy wrk): %w", err)
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return nil, fmt.Errorf("read cpu affinity: %w", err)
	}
	for _, cpu := range []int{opts.ProxyCPU, opts.LoadCPU} {
		if !allowed.IsSet(cpu) {
			return nil, fmt.Errorf("cpu %d is not available to this process: the http benchmark needs two CPUs, one for the proxy and one for the load", cpu)
		}
	}

	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "rampart-bench-http-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	if err := confPathOK(dir); err != nil {
		return nil, err
	}

	res := newHTTPResult(opts)
	res.Versions = toolVersions(ctx, tools)
	proxies, skipped := httpProxies(opts, tools)
	res.RampartSkipped = skipped

	rig := &httpRig{opts: opts, tools: tools, dir: dir, body: httpBody(opts.BodyBytes), log: log}
	defer rig.close()
	if err := rig.start(ctx, proxies); err != nil {
		return nil, err
	}

	if opts.WarmUp > 0 {
		for _, p := range rig.proxies {
			log.Info("warming up", "proxy", p.name, "seconds", opts.WarmUp.Seconds())
			if _, err := rig.measure(ctx, p, opts.WarmUp); err != nil {
				return nil, fmt.Errorf("%s, warm-up: %w", p.name, err)
			}
		}
	}
	n := len(rig.proxies)
	for round := range opts.Rounds {
		for i := range n {
			p := rig.proxies[(round+i)%n]
			if round == 0 {
				res.Proxies = append(res.Proxies, p.name)
			}
			s, err := rig.measure(ctx, p, opts.Duration)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", p.name, round+1, err)
			}
			if res.Samples[p.name] == nil {
				res.Samples[p.name] = &HTTPSamples{}
			}
			res.Samples[p.name].add(s)
			res.Errors[p.name] = res.Errors[p.name].add(s.wrk.Errors)
			log.Info("run done", "proxy", p.name, "round", round+1, "rps", int(s.wrk.RPS),
				"cpu_us_per_req", fmt.Sprintf("%.2f", s.cpuUsPerReq), "p99_ms", durationMs(s.wrk.P99))
		}
	}
	res.summarise()
	return res, nil
}

// httpRig is the running world: the origin and the proxies in front of it.
type httpRig struct {
	opts       HTTPOptions
	tools      httpTools
	dir        string
	body       string
	origin     *httpDaemon
	originAddr netip.AddrPort
	proxies    []*httpRunning
	log        *slog.Logger
}

// httpRunning is a started proxy.
type httpRunning struct {
	name string
	addr netip.AddrPort
	d    *httpDaemon
}

// start runs the origin, then every proxy, each answering GET / with the
// origin's body before the next starts.
func (rig *httpRig) start(ctx context.Context, proxies []httpProxy) error {
	ports, err := freePorts(1 + len(proxies))
	if err != nil {
		return err
	}
	rig.originAddr = ports[0]
	cmd, err := originCommand(rig.tools.nginx, rig.dir, rig.originAddr, rig.opts.LoadCPU, rig.body)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	rig.log.Info("starting", "daemon", "origin", "listen", rig.originAddr, "cpu", rig.opts.LoadCPU)
	if rig.origin, err = startHTTPDaemon("origin", rig.dir, cmd, rig.opts.LoadCPU, rig.log); err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	if err := rig.waitReady(ctx, rig.origin, rig.originAddr); err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	for i, p := range proxies {
		listen := ports[1+i]
		cmd, err := p.command(rig.dir, listen, rig.originAddr, rig.opts.ProxyCPU)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rig.log.Info("starting", "daemon", p.name, "listen", listen, "cpu", rig.opts.ProxyCPU)
		d, err := startHTTPDaemon(p.name, rig.dir, cmd, rig.opts.ProxyCPU, rig.log)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rig.proxies = append(rig.proxies, &httpRunning{name: p.name, addr: listen, d: d})
		if err := rig.waitReady(ctx, d, listen); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if err := treeAffinity(d.pid, rig.opts.ProxyCPU); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return treeAffinity(rig.origin.pid, rig.opts.LoadCPU)
}

// close stops the proxies, newest first, then the origin.
func (rig *httpRig) close() {
	for i := len(rig.proxies) - 1; i >= 0; i-- {
		rig.proxies[i].d.stop(rig.opts.StopTimeout)
	}
	if rig.origin != nil {
		rig.origin.stop(rig.opts.StopTimeout)
	}
}

// freePorts finds n distinct free TCP ports on 127.0.0.1. They are free
// when it returns; a daemon that loses one to another process fails to
// start and says so in its log.
func freePorts(n int) ([]netip.AddrPort, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]netip.AddrPort, 0, n)
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).AddrPort())
	}
	return out, nil
}

// waitReady polls GET / on addr until it answers 200 with the origin's
// body, the daemon exits or StartTimeout passes.
func (rig *httpRig) waitReady(ctx context.Context, d *httpDaemon, addr netip.AddrPort) error {
	tr := &http.Transport{DisableKeepAlives: true} // no Proxy: never an HTTP_PROXY from the environment
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Second}
	url := "http://" + addr.String() + "/"
	deadline := time.Now().Add(rig.opts.StartTimeout)
	var last error
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("exited while starting; %s", d.logTail())
		default:
		}
		status, body, err := httpGet(ctx, client, url)
		switch {
		case err == nil && status == http.StatusOK:
			if !bytes.Equal(body, []byte(rig.body)) {
				return fmt.Errorf("GET %s answered a %d-byte body, want the origin's %d bytes (%q...)", url, len(body), len(rig.body), clip(body, 32))
			}
			return nil
		case err == nil:
			last = fmt.Errorf("status %d", status)
		default:
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 for GET %s within %s (last: %v); %s", url, rig.opts.StartTimeout, last, d.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func httpGet(ctx context.Context, client *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<21))
	return resp.StatusCode, body, err
}

func clip(b []byte, n int) []byte { return b[:min(len(b), n)] }

// measure runs wrk against one proxy for dur and reads the proxy's and
// the load side's CPU time around it.
func (rig *httpRig) measure(ctx context.Context, p *httpRunning, dur time.Duration) (httpSample, error) {
	var s httpSample
	before, err := procTree("/proc", p.d.pid)
	if err != nil {
		return s, err
	}
	originBefore, err := procTree("/proc", rig.origin.pid)
	if err != nil {
		return s, fmt.Errorf("origin: %w", err)
	}
	stat0, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	run, wrkCPU, err := rig.runWrk(ctx, p.addr, dur)
	wall := time.Since(t0)
	if err != nil {
		return s, err
	}
	stat1, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	originAfter, oerr := procTree("/proc", rig.origin.pid)
	after, err := procTree("/proc", p.d.pid)
	select {
	case <-p.d.exited:
		return s, fmt.Errorf("exited during the run; %s", p.d.logTail())
	default:
	}
	if err != nil {
		return s, err
	}
	if oerr != nil {
		return s, fmt.Errorf("origin: %w", oerr)
	}
	proxyTicks, err := treeDelta(before, after)
	if err != nil {
		return s, err
	}
	originTicks, err := treeDelta(originBefore, originAfter)
	if err != nil {
		return s, fmt.Errorf("origin: %w", err)
	}
	if run.Requests == 0 {
		return s, fmt.Errorf("wrk completed no request; %s", p.d.logTail())
	}
	if e := run.Errors; e.Total() > 0 && !rig.opts.AllowErrors {
		return s, fmt.Errorf("wrk saw %s in %d requests; %s", e, run.Requests, p.d.logTail())
	}
	s.wrk = run
	proxyCPU := float64(proxyTicks) / userHZ
	s.cpuUsPerReq = proxyCPU * 1e6 / float64(run.Requests)
	s.proxyCPUUtil = proxyCPU / wall.Seconds()
	s.loadCPUUtil = (float64(originTicks)/userHZ + wrkCPU.Seconds()) / wall.Seconds()
	if s.proxyCPUBusy, err = cpuBusyShare(stat0, stat1, rig.opts.ProxyCPU); err != nil {
		return s, err
	}
	if s.loadCPUBusy, err = cpuBusyShare(stat0, stat1, rig.opts.LoadCPU); err != nil {
		return s, err
	}
	return s, nil
}

// cpuBusyShare is how busy cpu was between two readings of /proc/stat.
func cpuBusyShare(stat0, stat1 []byte, cpu int) (float64, error) {
	b0, t0, err := parseCPUTimes(bytes.NewReader(stat0), cpu)
	if err != nil {
		return 0, err
	}
	b1, t1, err := parseCPUTimes(bytes.NewReader(stat1), cpu)
	if err != nil {
		return 0, err
	}
	if t1 <= t0 {
		return 0, fmt.Errorf("cpu %d: /proc/stat did not advance", cpu)
	}
	if b1 < b0 { // iowait may go backwards
		return 0, nil
	}
	return min(1, float64(b1-b0)/float64(t1-t0)), nil
}

// runWrk runs wrk pinned to the load CPU and returns its report and its
// own CPU time.
func (rig *httpRig) runWrk(ctx context.Context, addr netip.AddrPort, dur time.Duration) (wrkRun, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rig.tools.wrk, "-t"+strconv.Itoa(wrkThreads), "-c"+strconv.Itoa(rig.opts.Connections),
		"-d"+strconv.Itoa(int(dur/time.Second))+"s", "--latency", "http://"+addr.String()+"/")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := startPinned(cmd, rig.opts.LoadCPU); err != nil {
		return wrkRun{}, 0, fmt.Errorf("start wrk: %w", err)
	}
	if err := pinnedTo(cmd.Process.Pid, rig.opts.LoadCPU); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return wrkRun{}, 0, fmt.Errorf("wrk: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return wrkRun{}, 0, fmt.Errorf("wrk: %w", ctx.Err())
		}
		return wrkRun{}, 0, fmt.Errorf("wrk: %w; it printed: %s", err, strings.TrimSpace(stderr.String()+stdout.String()))
	}
	run, err := parseWrk(stdout.String())
	if err != nil {
		return wrkRun{}, 0, fmt.Errorf("%w; wrk printed: %s", err, strings.TrimSpace(stdout.String()))
	}
	return run, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// startPinned starts cmd from a thread pinned to cpu, so that the process
// and everything it forks inherit that CPU from its first instruction.
func startPinned(cmd *exec.Cmd, cpu int) error {
	restore, pinned, err := pinThread(cpu)
	if err != nil {
		return err
	}
	if !pinned {
		restore()
		return fmt.Errorf("cpu %d is not available to this process", cpu)
	}
	err = cmd.Start()
	restore()
	return err
}

// pinnedTo checks that task tid may run on cpu only.
func pinnedTo(tid, cpu int) error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return fmt.Errorf("read cpu affinity of %d: %w", tid, err)
	}
	if set.Count() != 1 || !set.IsSet(cpu) {
		return fmt.Errorf("task %d may run on CPUs %s, want CPU %d only", tid, cpuSetString(&set), cpu)
	}
	return nil
}

func cpuSetString(set *unix.CPUSet) string {
	var cpus []string
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, strconv.Itoa(c))
		}
	}
	return strings.Join(cpus, ",")
}

// treeAffinity checks every thread of root's process tree is pinned to
// cpu: a proxy that moved a thread elsewhere would not be measured on one
// CPU.
func treeAffinity(root, cpu int) error {
	tree, err := procTree("/proc", root)
	if err != nil {
		return err
	}
	for pid := range tree {
		tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
		if err != nil {
			continue // gone
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := pinnedTo(tid, cpu); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
	}
	return nil
}

// httpDaemon is a process the benchmark started and must stop: the origin
// or a proxy. It runs in its own process group, so that stopping it can
// reach the workers it forked.
type httpDaemon struct {
	name    string
	cmd     *exec.Cmd
	pid     int
	logPath string
	logFile *os.File
	// exited is closed when the process has exited; it is not reaped
	// (a zombie) until stop, so its pid, and the process group id, stay
	// ours until then.
	exited  chan struct{}
	stopped bool
	log     *slog.Logger
}

// startHTTPDaemon starts cmd pinned to cpu, its stdout and stderr (where
// unset) going to dir/name.log.
func startHTTPDaemon(name, dir string, cmd *exec.Cmd, cpu int, log *slog.Logger) (*httpDaemon, error) {
	d := &httpDaemon{name: name, cmd: cmd, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{}), log: log}
	f, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	d.logFile = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	if cmd.Stderr == nil {
		cmd.Stderr = f
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid { // a new session is a new group already
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
	}
	// If the benchmark dies, the daemon is told to stop (nginx's master
	// then stops its workers).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	if err := startPinned(cmd, cpu); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	d.pid = cmd.Process.Pid
	go func() {
		defer close(d.exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, d.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()
	if err := pinnedTo(d.pid, cpu); err != nil {
		d.stop(time.Second)
		return nil, err
	}
	return d, nil
}

// stop ends the daemon: SIGTERM to it, SIGKILL to its process group after
// timeout, then SIGKILL to anything left in the group (workers whose
// master was killed), and reaps it. The group id is the daemon's pid, not
// yet reaped, so it names no one else's processes.
func (d *httpDaemon) stop(timeout time.Duration) {
	if d.stopped {
		return
	}
	d.stopped = true
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(timeout):
			d.log.Warn("daemon ignored SIGTERM; killing it", "daemon", d.name, "pid", d.pid, "timeout", timeout)
			_ = unix.Kill(-d.pid, unix.SIGKILL)
			select {
			case <-d.exited:
			case <-time.After(timeout):
				d.log.Error("daemon survived SIGKILL", "daemon", d.name, "pid", d.pid)
			}
		}
	}
	_ = unix.Kill(-d.pid, unix.SIGKILL)
	_ = d.cmd.Wait()
	d.logFile.Close()
}

// logTail is the end of the daemon's log, for error messages.
func (d *httpDaemon) logTail() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("its log %s: %v", d.logPath, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Sprintf("its log %s is empty", d.logPath)
	}
	const keep = 2048
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return fmt.Sprintf("its log %s ends:\n%s", d.logPath, s)
}

// toolVersions asks nginx, HAProxy and wrk for their versions.
func toolVersions(ctx context.Context, t httpTools) map[string]string {
	out := map[string]string{}
	for name, argv := range map[string][]string{proxyNginx: {t.nginx, "-v"}, proxyHAProxy: {t.haproxy, "-v"}, "wrk": {t.wrk, "-v"}} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, _ := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput() // wrk -v exits 1
		cancel()
		out[name] = toolVersion(string(b))
	}
	return out
}
