package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/rampart-edge/rampart/internal/flood"
	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/xdp"
)

// senderCPU runs the flood; on veth the whole receive path (bridge, veth
// NAPI, XDP or the ingress hook) runs in softirq on this CPU, so its time
// is the receive-side cost.
const senderCPU = 0

// userHZ is the unit of /proc/stat and /proc/PID/stat times (USER_HZ, 100
// on every architecture Rampart runs on).
const userHZ = 100

const (
	liveFrameBytes = 64
	livePort       = 443
	nftTable       = "rampart_bench"
	// Legitimate connections are paced so that they cost a negligible
	// share of the measured CPU, and run on the other CPU.
	connectEvery = 10 * time.Millisecond
	drainWait    = 50 * time.Millisecond
	idleWindow   = time.Second
)

// liveRig is the veth topology: tx floods rx, client connects to rx.
type liveRig struct {
	net        *testnet.Net
	rx, tx, cl *testnet.Host
	sender     *flood.Sender
	frames     [][]byte
	filter     *xdp.Filter
	floor      *ebpf.Program
	ksoftirqd  []int
	log        *slog.Logger

	mu    sync.Mutex
	dials []dial // legitimate connections, in start order
}

// dial is one legitimate connection attempt. It is counted in the window
// it started in: one that starts under the bare XDP_DROP fails a second
// later, when another case may be running.
type dial struct {
	start time.Time
	ok    bool
}

// span is when one measured flood ran.
type span struct{ start, end time.Time }

func runLive(ctx context.Context, rig *xdpRig, opts XDPOptions, log *slog.Logger) (*LiveResult, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for network namespaces")
	}
	if opts.LiveFrames < 1000 {
		return nil, fmt.Errorf("live frames must be at least 1000, got %d", opts.LiveFrames)
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := testnet.New(setupCtx, testnet.UniquePrefix("rbench"), "rx", "tx", "client")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := n.Close(); err != nil {
			log.Warn("remove benchmark namespaces", "err", err)
		}
	}()
	lr := &liveRig{net: n, rx: n.Host("rx"), tx: n.Host("tx"), cl: n.Host("client"), filter: rig.filter, floor: rig.drop, log: log}
	if lr.rx.Addr != servedV4 {
		return nil, fmt.Errorf("testnet gave rx %s, the profile serves %s", lr.rx.Addr, servedV4)
	}
	if lr.ksoftirqd, err = ksoftirqdPIDs(); err != nil {
		return nil, err
	}
	if err := lr.buildFlood(); err != nil {
		return nil, err
	}
	defer lr.sender.Close()

	// Legitimate traffic: a listener on rx's served port, a client that
	// connects every connectEvery for the whole live phase.
	var ln net.Listener
	if err := lr.rx.Do(func() (err error) {
		ln, err = net.Listen("tcp", netJoin(lr.rx.Addr.String(), livePort))
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in rx: %w", err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	connCtx, stopConns := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lr.connectLoop(connCtx, netJoin(lr.rx.Addr.String(), livePort))
	}()
	stop := sync.OnceFunc(func() {
		stopConns()
		wg.Wait()
	})
	defer stop()
	spans := map[string][]span{}

	res := &LiveResult{Frames: opts.LiveFrames, FrameBytes: liveFrameBytes, Rounds: opts.Rounds, SenderCPU: senderCPU,
		XDPMode: xdp.ModeNative, ThreadNsPerDrop: map[string]float64{}, SenderMpps: map[string]float64{},
		DropShare: map[string]float64{}, LegitConnects: map[string]ConnectCount{}, SamplesNs: map[string][]float64{}}
	type acc struct{ ns, thread, mpps, share []float64 }
	var gaps []float64
	accs := map[string]*acc{liveRampart: {}, liveNftables: {}, liveFloor: {}}

	// Warm up (BENCH.md): a flood through the filter, discarded.
	warm, err := lr.window(ctx, liveRampart, opts.LiveFrames/2, 0)
	if err != nil {
		return nil, err
	}
	if d := 2 * (warm.span.end.Sub(warm.span.start)); d < time.Second {
		log.Warn("live floods are short: /proc/stat counts 10 ms ticks, so its figures are coarse; raise --live-frames",
			"flood", d.Round(time.Millisecond), "frames", opts.LiveFrames)
	}
	for round := range opts.Rounds {
		idleRate, err := lr.idleRate(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range []string{liveRampart, liveNftables, liveFloor} {
			if _, err := lr.window(ctx, name, opts.LiveFrames/10, idleRate); err != nil { // warm this setup
				return nil, err
			}
			w, err := lr.window(ctx, name, opts.LiveFrames, idleRate)
			if err != nil {
				return nil, err
			}
			a := accs[name]
			a.ns = append(a.ns, w.nsPerDrop)
			a.thread = append(a.thread, w.threadNsPerDrop)
			a.mpps = append(a.mpps, w.mpps)
			a.share = append(a.share, w.dropShare)
			gaps = append(gaps, 100*math.Abs(w.nsPerDrop-w.threadNsPerDrop)/w.threadNsPerDrop)
			spans[name] = append(spans[name], w.span)
			log.Info("live window", "round", round+1, "case", name, "ns_per_drop", int(w.nsPerDrop),
				"thread_ns_per_drop", int(w.threadNsPerDrop), "mpps", fmt.Sprintf("%.2f", w.mpps),
				"drop_share", fmt.Sprintf("%.3f", w.dropShare))
		}
	}
	stop() // every dial has finished: count them by window
	for _, name := range []string{liveRampart, liveNftables} {
		res.LegitConnects[name] = lr.connects(spans[name])
	}
	for name, a := range accs {
		res.SamplesNs[name] = a.ns
		res.ThreadNsPerDrop[name] = median(a.thread)
		res.SenderMpps[name] = median(a.mpps)
		res.DropShare[name] = median(a.share)
	}
	x, nf, fl := accs[liveRampart].ns, accs[liveNftables].ns, accs[liveFloor].ns
	res.XDPNsPerDrop, res.NftablesNsPerDrop, res.FloorNsPerDrop = median(x), median(nf), median(fl)
	res.RatioNftablesVsXDP = median(ratios(nf, x))
	res.RatioNftablesVsXDPThread = median(ratios(accs[liveNftables].thread, accs[liveRampart].thread))
	res.MethodsDisagreePct = median(gaps)
	if res.MethodsDisagreePct > noisyPct {
		log.Warn("live figures are noisy: /proc/stat and thread time disagree; other work shared the sender's cpu",
			"gap_pct", int(res.MethodsDisagreePct), "cpu", senderCPU)
	}
	var xNet, xNetThread []float64
	xt, flt := accs[liveRampart].thread, accs[liveFloor].thread
	for i := range x {
		xNet = append(xNet, x[i]-fl[i])
		xNetThread = append(xNetThread, xt[i]-flt[i])
	}
	res.XDPNetNsPerDrop, res.XDPNetThreadNsPerDrop = median(xNet), median(xNetThread)
	return res, nil
}

func netJoin(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// connectLoop dials addr from the client namespace, on the CPU the flood
// does not use, until ctx ends.
func (lr *liveRig) connectLoop(ctx context.Context, addr string) {
	err := lr.cl.Do(func() error {
		restore, _, err := pinThread(1 - senderCPU)
		if err != nil {
			return err
		}
		defer restore()
		d := net.Dialer{Timeout: time.Second}
		t := time.NewTicker(connectEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			start := time.Now()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil && ctx.Err() != nil {
				return nil
			}
			if err == nil {
				c.Close()
			}
			lr.mu.Lock()
			lr.dials = append(lr.dials, dial{start: start, ok: err == nil})
			lr.mu.Unlock()
		}
	})
	if err != nil {
		lr.log.Warn("legitimate connection loop ended", "err", err)
	}
}

// connects counts the dials that started inside the spans.
func (lr *liveRig) connects(spans []span) ConnectCount {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	var c ConnectCount
	for _, d := range lr.dials {
		for _, s := range spans {
			if !d.start.Before(s.start) && d.start.Before(s.end) {
				if d.ok {
					c.OK++
				} else {
					c.Failed++
				}
			}
		}
	}
	return c
}

// buildFlood opens the sender in tx and builds the flood frame: UDP from a
// blocked source, to rx's MAC so the bridge forwards it to rx alone.
func (lr *liveRig) buildFlood() error {
	var rxMAC, txMAC net.HardwareAddr
	if err := lr.rx.Do(func() (err error) { rxMAC, err = flood.MAC(lr.rx.Iface); return err }); err != nil {
		return err
	}
	if err := lr.tx.Do(func() (err error) {
		if txMAC, err = flood.MAC(lr.tx.Iface); err != nil {
			return err
		}
		lr.sender, err = flood.Open(lr.tx.Iface)
		return err
	}); err != nil {
		return err
	}
	// 14 Ethernet + 20 IPv4 + 8 UDP + payload = liveFrameBytes.
	f, err := packets.Build(packets.Spec{Src: floodSource, Dst: lr.rx.Addr, Proto: packets.UDP, SrcPort: 40000, DstPort: 9,
		Payload: make([]byte, liveFrameBytes-42)})
	if err != nil {
		return err
	}
	flood.SetMACs(f, rxMAC, txMAC)
	lr.frames = [][]byte{f}
	return nil
}

// measured is one flood window's outcome.
type measured struct {
	nsPerDrop, threadNsPerDrop, mpps, dropShare float64
	span                                        span
}

// window installs the case's dropper on rx, sends count frames from a
// thread pinned to senderCPU and measures the CPU time they cost, then
// removes the dropper.
func (lr *liveRig) window(ctx context.Context, name string, count int, idleRate float64) (m measured, err error) {
	dropped, cleanup, err := lr.install(ctx, name)
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	defer func() {
		if cerr := cleanup(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: remove: %w", name, cerr)
		}
	}()
	rx0, err := lr.rxPackets(ctx)
	if err != nil {
		return m, err
	}
	d0, err := dropped()
	if err != nil {
		return m, err
	}

	restore, _, err := pinThread(senderCPU)
	if err != nil {
		return m, err
	}
	cpu0, err := cpuBusy(senderCPU)
	if err != nil {
		restore()
		return m, err
	}
	thr0, soft0 := threadTime(), procTimes(lr.ksoftirqd)
	start := time.Now()
	sent, sendErr := lr.sender.Send(ctx, lr.frames, count)
	sendTook := time.Since(start)
	time.Sleep(drainWait) // let veth's ring and the backlog empty
	took := time.Since(start)
	thr1, soft1 := threadTime(), procTimes(lr.ksoftirqd)
	cpu1, err := cpuBusy(senderCPU)
	restore()
	if sendErr != nil {
		return m, fmt.Errorf("flood: %w", sendErr)
	}
	if err != nil {
		return m, err
	}

	rx1, err := lr.rxPackets(ctx)
	if err != nil {
		return m, err
	}
	d1, err := dropped()
	if err != nil {
		return m, err
	}
	received := float64(rx1 - rx0)
	if received <= 0 {
		return m, fmt.Errorf("%s: rx counted no packets for %d sent", name, sent)
	}
	busy := float64(cpu1-cpu0)*1e9/userHZ - idleRate*float64(took.Nanoseconds())
	m = measured{
		nsPerDrop:       busy / received,
		threadNsPerDrop: float64((thr1-thr0)+(soft1-soft0)) / received,
		mpps:            float64(sent) / sendTook.Seconds() / 1e6,
		dropShare:       float64(d1-d0) / float64(sent),
		span:            span{start: start, end: start.Add(sendTook)},
	}
	lr.log.Debug("live window counts", "case", name, "sent", sent, "received", rx1-rx0, "dropped", d1-d0,
		"took", took.Round(time.Millisecond), "idle_ns", int64(idleRate*float64(took.Nanoseconds())))
	if m.dropShare < 0.99 {
		lr.log.Warn("dropper missed frames", "case", name, "sent", sent, "dropped", d1-d0, "received", rx1-rx0)
	}
	return m, nil
}

// install puts a case's dropper on rx's interface and returns how to read
// its drop count and how to remove it.
func (lr *liveRig) install(ctx context.Context, name string) (dropped func() (uint64, error), cleanup func() error, err error) {
	switch name {
	case liveRampart, liveFloor:
		prog := lr.filter.Program()
		dropped = func() (uint64, error) {
			st, err := lr.filter.Maps().Stats()
			if err != nil {
				return 0, err
			}
			return st[xdp.ReasonBlocklist].Packets, nil
		}
		if name == liveFloor {
			prog = lr.floor
			dropped = func() (uint64, error) { return lr.rxPackets(ctx) }
		}
		// Attached by link, like Filter.Attach does, because the floor
		// program is no Filter; rounds attach and detach each in turn.
		var l link.Link
		if err := lr.rx.Do(func() error {
			ifc, err := net.InterfaceByName(lr.rx.Iface)
			if err != nil {
				return err
			}
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
			return err
		}); err != nil {
			return nil, nil, fmt.Errorf("attach xdp in native mode to %s in %s: %w", lr.rx.Iface, lr.rx.NS, err)
		}
		return dropped, l.Close, nil
	case liveNftables:
		rules := fmt.Sprintf("table netdev %s {\n\tchain ingress {\n\t\ttype filter hook ingress device %s priority 0; policy accept;\n\t\tip saddr %s counter drop\n\t}\n}\n",
			nftTable, lr.rx.Iface, floodNet)
		file := filepath.Join(os.TempDir(), lr.net.Prefix+"-nft.conf")
		if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
			return nil, nil, err
		}
		defer os.Remove(file)
		if _, err := lr.rx.Exec(ctx, "nft", "-f", file); err != nil {
			return nil, nil, err
		}
		dropped = func() (uint64, error) { return lr.nftCounter(ctx) }
		cleanup = func() error {
			_, err := lr.rx.Exec(context.WithoutCancel(ctx), "nft", "delete", "table", "netdev", nftTable)
			return err
		}
		return dropped, cleanup, nil
	}
	return nil, nil, fmt.Errorf("unknown live case %q", name)
}

var nftCounterRE = regexp.MustCompile(`counter packets (\d+)`)

func (lr *liveRig) nftCounter(ctx context.Context) (uint64, error) {
	out, err := lr.rx.Exec(ctx, "nft", "list", "table", "netdev", nftTable)
	if err != nil {
		return 0, err
	}
	m := nftCounterRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no counter in nft output: %s", out)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// rxPackets reads rx's interface counter. sysfs shows the namespace it was
// mounted in, so it is read through `ip netns exec`, which mounts rx's.
func (lr *liveRig) rxPackets(ctx context.Context) (uint64, error) {
	out, err := lr.rx.Exec(ctx, "cat", "/sys/class/net/"+lr.rx.Iface+"/statistics/rx_packets")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
}

// idleRate is the sender CPU's busy time per ns of wall time with no flood:
// other work on the machine, subtracted from each window.
func (lr *liveRig) idleRate(ctx context.Context) (float64, error) {
	b0, err := cpuBusy(senderCPU)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(idleWindow):
	}
	b1, err := cpuBusy(senderCPU)
	if err != nil {
		return 0, err
	}
	return float64(b1-b0) * 1e9 / userHZ / float64(time.Since(start).Nanoseconds()), nil
}

// cpuBusy is system + irq + softirq time of one CPU, in USER_HZ ticks.
func cpuBusy(cpu int) (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseCPUBusy(f, cpu)
}

// threadTime is the calling thread's user + system time in ns. The
// scheduler keeps the total exact; only its split is sampled.
func threadTime() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ksoftirqdPIDs finds the per-CPU softirq threads; softirq work deferred to
// them belongs to the window too.
func ksoftirqdPIDs() ([]int, error) {
	comms, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil || !strings.HasPrefix(string(b), "ksoftirqd/") {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		if err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, errors.New("no ksoftirqd threads found in /proc")
	}
	return pids, nil
}

// procTimes sums utime + stime of pids in ns; threads that are gone count
// nothing.
func procTimes(pids []int) int64 {
	var ticks uint64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		if t, err := parseTaskTicks(string(b)); err == nil {
			ticks += t
		}
	}
	return int64(ticks) * int64(time.Second) / userHZ
}
