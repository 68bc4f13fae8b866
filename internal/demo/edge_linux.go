package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
)

// The edge's pipeline is `rampart run` in a process of its own, as an
// operator runs it, without --iface: the demo attaches the filter itself
// so that it can read the counters from its private maps.
const (
	edgeReadyTimeout = 15 * time.Second // first answer from the origin through the pipeline
	edgeStopTimeout  = 5 * time.Second  // from SIGTERM to exit, then SIGKILL
	// edgeShutdownTimeout is the profile's pipeline.shutdown_timeout: under
	// edgeStopTimeout, so that a graceful stop never needs the SIGKILL.
	edgeShutdownTimeout = "2s"
	zoneHost            = "demo.example"
)

// edgeProcess is the pipeline process the demo started and must stop, by
// its PID, on every path.
type edgeProcess struct {
	cmd     *exec.Cmd
	pid     int
	dir     string // holds the profile and the log
	profile string
	logPath string
	logFile *os.File
	// exited is closed when the process has exited; it is not reaped (a
	// zombie) until stop, so its PID, which is also its process group id,
	// stays ours until then.
	exited chan struct{}
	// keep is set when the process misbehaved: its folder stays for a look.
	keep bool
	// exitReported: running already returned the early exit as an error.
	exitReported bool
	stopped      bool
}

// writeEdgeProfile derives the edge's profile from the embedded default
// one: the same filter and tables, plus a pipeline listening on the edge's
// address and one zone whose origin is the origin host. It is parsed and
// validated before it is written, so a mistake here fails before any
// process starts.
func writeEdgeProfile(path string, listen, origin netip.AddrPort) error {
	base, err := profiles.Source(profiles.DefaultName)
	if err != nil {
		return err
	}
	extra := fmt.Sprintf(`
# Added by rampart demo: the edge's HTTP pipeline and the origin's zone.
pipeline:
  listeners: [%q]
  loops: 0
  steering: cpu
  shutdown_timeout: %s
zones:
  - name: demo
    hosts: [%q, %q]
    origins: [%q]
`, listen.String(), edgeShutdownTimeout, listen.Addr().String(), zoneHost, origin.String())
	data := append(append([]byte{}, base...), extra...)
	if _, err := profiles.Parse(path, data); err != nil {
		return fmt.Errorf("demo edge profile: %w", err)
	}
	return os.WriteFile(path, data, 0o644)
}

// startEdge writes the profile and starts `exe run` inside h's namespace
// with nsenter, which enters the namespace and execs in place, so the PID
// is rampart's own. (`ip netns exec` would also remount /sys for the
// namespace, which a BPF-using process does not want.)
func startEdge(exe string, h *testnet.Host, listen, origin netip.AddrPort) (_ *edgeProcess, err error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("the demo starts the edge's pipeline with nsenter (util-linux): %w", err)
	}
	dir, err := os.MkdirTemp("", "rampart-demo-edge-")
	if err != nil {
		return nil, err
	}
	e := &edgeProcess{dir: dir, profile: filepath.Join(dir, "edge.yaml"), logPath: filepath.Join(dir, "edge.log"),
		exited: make(chan struct{})}
	defer func() {
		if err != nil {
			if e.logFile != nil {
				e.logFile.Close()
			}
			os.RemoveAll(dir)
		}
	}()
	if err := writeEdgeProfile(e.profile, listen, origin); err != nil {
		return nil, err
	}
	e.logFile, err = os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	e.cmd = exec.Command(nsenter, "--net="+filepath.Join("/run/netns", h.NS), "--",
		exe, "run", "--profile", e.profile, "--admin", "")
	e.cmd.Stdout, e.cmd.Stderr = e.logFile, e.logFile
	e.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group: a Ctrl-C at the terminal reaches the demo alone,
		// which then stops the edge in order, with SIGTERM.
		Setpgid: true,
		// If the demo dies, the edge is told to stop too. (Linux sends it
		// when the starting thread exits; Go ends a thread only when a
		// goroutine locked to it returns, which testnet.Do avoids.)
		Pdeathsig: syscall.SIGTERM,
	}
	e.cmd.WaitDelay = time.Second
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the edge's pipeline (%s run): %w", exe, err)
	}
	e.pid = e.cmd.Process.Pid
	go func() {
		defer close(e.exited)
		var info unix.Siginfo
		for {
			if err := unix.Waitid(unix.P_PID, e.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
				return
			}
		}
	}()
	return e, nil
}

// running reports an error, with the end of its log, when the process has
// already exited.
func (e *edgeProcess) running() error {
	select {
	case <-e.exited:
		e.keep, e.exitReported = true, true
		return fmt.Errorf("the edge's pipeline (pid %d) exited on its own; %s", e.pid, e.logTail())
	default:
		return nil
	}
}

// waitReady polls with fetch (a GET from the client through the pipeline)
// until the origin's page comes back, the process exits, or timeout.
func (e *edgeProcess) waitReady(ctx context.Context, timeout time.Duration, fetch func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	var last error
	for {
		if err := e.running(); err != nil {
			return 0, err
		}
		if last = fetch(); last == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			e.keep = true
			return 0, fmt.Errorf("the edge's pipeline (pid %d) did not serve the origin's page within %s (last attempt: %v); %s",
				e.pid, timeout, last, e.logTail())
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return 0, fmt.Errorf("waiting for the edge's pipeline: %w (last attempt: %v)", ctx.Err(), last)
		}
	}
}

// stop sends SIGTERM (a graceful shutdown), SIGKILL to the process group
// after edgeStopTimeout, reaps the process and removes its folder unless
// it misbehaved. The error says how it ended when that was not a clean
// exit after SIGTERM. It is safe to call more than once.
func (e *edgeProcess) stop() (took time.Duration, err error) {
	if e.stopped {
		return 0, nil
	}
	e.stopped = true
	start := time.Now()
	select {
	case <-e.exited:
		e.keep = true
		if !e.exitReported {
			err = errors.New("it had exited on its own before the demo stopped it")
		}
	default:
		_ = unix.Kill(e.pid, unix.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(edgeStopTimeout):
			e.keep = true
			err = fmt.Errorf("it did not exit within %s of SIGTERM and was killed", edgeStopTimeout)
			_ = unix.Kill(-e.pid, unix.SIGKILL)
			select {
			case <-e.exited:
			case <-time.After(edgeStopTimeout):
				err = fmt.Errorf("it did not exit within %s of SIGTERM, nor of SIGKILL", edgeStopTimeout)
			}
		}
	}
	took = time.Since(start)
	// Not reaped yet, so the group id still names only the edge's
	// processes; rampart forks none, this only makes sure.
	_ = unix.Kill(-e.pid, unix.SIGKILL)
	werr := e.cmd.Wait()
	e.logFile.Close()
	if err == nil && werr != nil && !e.exitReported {
		e.keep = true
		err = fmt.Errorf("it exited with %w after SIGTERM", werr)
	}
	if err != nil {
		err = fmt.Errorf("the edge's pipeline (pid %d): %w; %s", e.pid, err, e.logTail())
	}
	if !e.keep {
		if rerr := os.RemoveAll(e.dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return took, err
}

// logTail is the end of the process's log, for error messages.
func (e *edgeProcess) logTail() string {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return fmt.Sprintf("its log %s: %v", e.logPath, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Sprintf("its log %s is empty", e.logPath)
	}
	const keep = 2048
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return fmt.Sprintf("its log %s ends:\n%s", e.logPath, s)
}
