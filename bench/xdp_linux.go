package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rampart-edge/rampart/xdp"
	"github.com/rampart-edge/rampart/xdp/baseline"
)

// testRunCPU is where BPF_PROG_TEST_RUN timings run: BENCH.md puts the
// system under test on CPU 1 and load generators on CPU 0.
const testRunCPU = 1

// XDP actions (uapi linux/bpf.h).
const (
	actionDrop = 1
	actionPass = 2
)

// xdpRig is everything the per-packet measurement runs: Rampart's filter
// loaded with the benchmark profile, the bare programs and xdp-filter.
type xdpRig struct {
	seed    uint64
	filter  *xdp.Filter
	drop    *ebpf.Program
	pass    *ebpf.Program
	xf      *baseline.XDPFilter
	cases   []xdpCase
	profile *profileSpec
	log     *slog.Logger
}

func newXDPRig(seed uint64, log *slog.Logger) (_ *xdpRig, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the xdp benchmark loads BPF programs: run as root (or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)")
	}
	xfPath, err := baseline.XDPFilterObject()
	if err != nil {
		return nil, err
	}
	ps, err := buildProfile(seed)
	if err != nil {
		return nil, err
	}
	cases, err := xdpCases()
	if err != nil {
		return nil, err
	}
	r := &xdpRig{seed: seed, cases: cases, profile: ps, log: log}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.filter, err = xdp.Load(xdp.LoadOptions{Capacity: ps.Config.Capacity, Logger: log}); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := r.filter.Configure(ps.Config); err != nil {
		return nil, fmt.Errorf("configure filter: %w", err)
	}
	m := r.filter.Maps()
	for _, p := range ps.Block {
		if err := m.Add(xdp.Blocklist, p, 0); err != nil {
			return nil, fmt.Errorf("fill blocklist: %w", err)
		}
	}
	log.Debug("benchmark profile loaded", "blocked", len(ps.Block), "took", time.Since(start))
	if r.drop, err = baseline.LoadDrop(); err != nil {
		return nil, err
	}
	if r.pass, err = baseline.LoadPass(); err != nil {
		return nil, err
	}
	if r.xf, err = baseline.LoadXDPFilter(xfPath); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *xdpRig) Close() {
	if r.filter != nil {
		r.filter.Close()
	}
	if r.xf != nil {
		r.xf.Close()
	}
	for _, p := range []*ebpf.Program{r.drop, r.pass} {
		if p != nil {
			p.Close()
		}
	}
}

func (r *xdpRig) profileInfo() ProfileInfo {
	v6 := 0
	for _, p := range r.profile.Block {
		if p.Addr().Is6() {
			v6++
		}
	}
	services := 0
	for _, s := range r.profile.Config.Services {
		services += len(s.Addrs) * (len(s.TCP) + len(s.UDP))
	}
	listed := append(slices.Clone(r.profile.Block), r.profile.Config.Allow...)
	n := r.profile.Config.RateLimit.Normal
	return ProfileInfo{
		Base:             "edge-default",
		BlockedPrefixes:  len(r.profile.Block),
		BlockedV6:        v6,
		Services:         services,
		AllowPrefixes:    len(r.profile.Config.Allow),
		HintedV4SlotsPct: hintedPct(listed, false),
		HintedV6SlotsPct: hintedPct(listed, true),
		RateLimit: fmt.Sprintf("rate limits on, batch %d (normal %d pps, %d SYN/s, %d B/s: never reached; rate_limited runs toward an address in attack mode)", r.profile.Config.RateLimit.Batch,
			n.PacketsPerSecond, n.SYNsPerSecond, n.BytesPerSecond),
	}
}

// prepare readies the filter for a case and proves, with one run, that the
// frame reaches the reason the case names: a benchmark of the wrong path
// is worse than none.
func (r *xdpRig) prepare(c xdpCase) error {
	if c.attack {
		if err := r.filter.Maps().SetAttack(attackDst, true); err != nil {
			return err
		}
	}
	// A fresh or refilled bucket admits a burst first; run until the
	// limit bites (the attack SYN burst is 1, so this takes one or two).
	tries := 1
	if c.attack {
		tries = 1000
	}
	var got xdp.Reason
	for range tries {
		var err error
		if got, err = r.filter.Run(c.frame); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if slices.Contains(c.want, got) {
			return nil
		}
	}
	return fmt.Errorf("%s: the filter gives %s, want one of %v: the benchmark would time the wrong path", c.name, got, c.want)
}

func (r *xdpRig) unprepare(c xdpCase) error {
	if c.attack {
		return r.filter.Maps().SetAttack(attackDst, false)
	}
	return nil
}

// timeProg runs prog repeat times on frame with BPF_PROG_TEST_RUN and
// returns the kernel's mean time per run in ns (whole ns: the kernel
// divides before reporting). It checks the action of the last run.
func timeProg(prog *ebpf.Program, frame []byte, repeat int, wantAction uint32) (float64, error) {
	ret, d, err := prog.Benchmark(frame, repeat, nil)
	if err != nil {
		return 0, err
	}
	if ret != wantAction {
		return 0, fmt.Errorf("program returned action %d, want %d", ret, wantAction)
	}
	return float64(d.Nanoseconds()), nil
}

func wantAction(c xdpCase) uint32 {
	if c.want[0].Dropped() {
		return actionDrop
	}
	return actionPass
}

// measureRound times every subject once, in a fixed order, and appends each
// figure to samples under its key.
func (r *xdpRig) measureRound(repeat int, samples map[string][]float64) error {
	add := func(key string, prog *ebpf.Program, frame []byte, action uint32) error {
		ns, err := timeProg(prog, frame, repeat, action)
		if err != nil {
			return fmt.Errorf("time %s: %w", key, err)
		}
		samples[key] = append(samples[key], ns)
		return nil
	}
	ref := r.cases[0].frame
	if err := add(baselineDrop, r.drop, ref, actionDrop); err != nil {
		return err
	}
	if err := add(baselinePass, r.pass, ref, actionPass); err != nil {
		return err
	}
	for _, c := range r.cases {
		if !c.compare {
			continue
		}
		if err := add("xdp_filter/"+c.name, r.xf.Program(), c.frame, actionPass); err != nil {
			return err
		}
	}
	for _, c := range r.cases {
		if err := r.prepare(c); err != nil {
			return err
		}
		err := add("rampart/"+c.name, r.filter.Program(), c.frame, wantAction(c))
		if uerr := r.unprepare(c); err == nil {
			err = uerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// timeOnce runs prog once on frame and returns the kernel's time for that
// one run, in ns, which includes the test harness's clock reads: callers
// subtract the bare program's time on the same frame.
func timeOnce(prog *ebpf.Program, frame []byte, wantAction uint32) (float64, error) {
	return timeProg(prog, frame, 1, wantAction)
}

// measureNewSources times frames from sources the filter has never seen,
// each run once: Rampart, xdp-filter (on the pass frames) and the bare
// drop program, interleaved frame by frame. A figure is the trimmed mean
// over frames minus the bare drop's on the same frames (which removes the
// harness's per-call clock reads), plus the bare drop's repeat-run cost of
// the same round, so that it reads like the rows timed with a repeat.
func (r *xdpRig) measureNewSources(round, n int, samples map[string][]float64) error {
	pass, blocked, hinted, err := newSourceFrames(r.profile, r.seed, round, n)
	if err != nil {
		return err
	}
	dropNs := samples[baselineDrop][len(samples[baselineDrop])-1]
	sets := []struct {
		name    string
		frames  [][]byte
		reason  xdp.Reason
		compare bool
	}{
		{newSourcePass, pass, xdp.ReasonPass, true},
		{newSourceBlocked, blocked, xdp.ReasonBlocklist, false},
	}
	for _, set := range sets {
		before, err := r.filter.Maps().Stats()
		if err != nil {
			return err
		}
		action := uint32(actionPass)
		if set.reason.Dropped() {
			action = actionDrop
		}
		var floor, ours, theirs []float64
		for _, f := range set.frames {
			ns, err := timeOnce(r.drop, f, actionDrop)
			if err != nil {
				return fmt.Errorf("time new-source %s on %s: %w", set.name, baselineDrop, err)
			}
			floor = append(floor, ns)
			if set.compare {
				if ns, err = timeOnce(r.xf.Program(), f, actionPass); err != nil {
					return fmt.Errorf("time new-source %s on xdp-filter: %w", set.name, err)
				}
				theirs = append(theirs, ns)
			}
			if ns, err = timeOnce(r.filter.Program(), f, action); err != nil {
				return fmt.Errorf("time new-source %s on rampart: %w", set.name, err)
			}
			ours = append(ours, ns)
		}
		after, err := r.filter.Maps().Stats()
		if err != nil {
			return err
		}
		if got := after[set.reason].Packets - before[set.reason].Packets; got != uint64(len(set.frames)) {
			return fmt.Errorf("new-source %s: the filter counted %d of %d frames as %s: the benchmark would time the wrong path",
				set.name, got, len(set.frames), set.reason)
		}
		base := trimmedMean(floor)
		samples["rampart_new_source/"+set.name] = append(samples["rampart_new_source/"+set.name], trimmedMean(ours)-base+dropNs)
		if set.name == newSourcePass {
			for _, sub := range []struct {
				name string
				want bool
			}{{newSourcePassUnhinted, false}, {newSourcePassHinted, true}} {
				var o, fl []float64
				for i, h := range hinted {
					if h == sub.want {
						o, fl = append(o, ours[i]), append(fl, floor[i])
					}
				}
				if len(o) > 0 {
					key := "rampart_new_source/" + sub.name
					samples[key] = append(samples[key], trimmedMean(o)-trimmedMean(fl)+dropNs)
				}
			}
		}
		if set.compare {
			samples["xdp_filter_new_source/"+set.name] = append(samples["xdp_filter_new_source/"+set.name], trimmedMean(theirs)-base+dropNs)
		}
	}
	return nil
}

// RunXDP runs the XDP benchmark: per-packet cost by BPF_PROG_TEST_RUN
// against the baselines, then (when asked, and root) the live veth
// measurement.
func RunXDP(ctx context.Context, opts XDPOptions) (*XDPResult, error) {
	if opts.Rounds < 1 || opts.Repeat < 1 {
		return nil, fmt.Errorf("rounds and repeat must be at least 1, got %d and %d", opts.Rounds, opts.Repeat)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bench/xdp")
	rig, err := newXDPRig(opts.Seed, log)
	if err != nil {
		return nil, err
	}
	defer rig.Close()

	res := &XDPResult{Name: "xdp", Rounds: opts.Rounds, Repeat: opts.Repeat, NewSources: opts.NewSources, TestRunCPU: -1,
		Profile: rig.profileInfo(), Machine: ThisMachine()}
	restore, pinned, err := pinThread(testRunCPU)
	if err != nil {
		return nil, err
	}
	if pinned {
		res.TestRunCPU = testRunCPU
	}
	samples := map[string][]float64{}
	for round := range opts.Rounds {
		if err := ctx.Err(); err != nil {
			restore()
			return nil, err
		}
		start := time.Now()
		if err := rig.measureRound(opts.Repeat, samples); err != nil {
			restore()
			return nil, err
		}
		if opts.NewSources > 0 {
			if err := rig.measureNewSources(round, opts.NewSources, samples); err != nil {
				restore()
				return nil, err
			}
		}
		log.Info("test_run round done", "round", round+1, "of", opts.Rounds, "took", time.Since(start).Round(time.Millisecond))
	}
	restore()
	res.summarise(rig.cases, samples)

	switch {
	case !opts.Live:
		res.LiveSkipped = "--no-live"
	default:
		live, err := runLive(ctx, rig, opts, log)
		if err != nil {
			return nil, fmt.Errorf("live veth measurement: %w", err)
		}
		res.Live = live
	}
	return res, nil
}

// summarise turns per-round samples into medians and ratios.
func (res *XDPResult) summarise(cases []xdpCase, samples map[string][]float64) {
	res.SamplesNs = samples
	res.BaselineNs = map[string]float64{
		baselineDrop:      median(samples[baselineDrop]),
		baselinePass:      median(samples[baselinePass]),
		baselineXDPFilter: median(samples["xdp_filter/"+caseTCPSYN]),
	}
	res.FilterNs = map[string]float64{}
	res.XDPFilterNs = map[string]float64{}
	res.RatiosVsXDPFilter = map[string]float64{}
	for _, c := range cases {
		ours := samples["rampart/"+c.name]
		res.FilterNs[c.name] = median(ours)
		theirs, ok := samples["xdp_filter/"+c.name]
		if !ok {
			continue
		}
		res.XDPFilterNs[c.name] = median(theirs)
		ratio := median(ratios(ours, theirs))
		res.RatiosVsXDPFilter[c.name] = ratio
		if c.headline && ratio > res.RatioPassVsXDPFilter {
			res.RatioPassVsXDPFilter, res.RatioPassCase = ratio, c.name
		}
	}
	res.RatioBlockedVsPass = median(ratios(samples["rampart/"+caseBlocked], samples["rampart/"+caseTCPSYN]))
	if ours := samples["rampart_new_source/"+newSourcePass]; len(ours) > 0 {
		theirs := samples["xdp_filter_new_source/"+newSourcePass]
		res.FilterNewSourceNs = map[string]float64{}
		for _, name := range []string{newSourcePass, newSourcePassUnhinted, newSourcePassHinted, newSourceBlocked} {
			if xs := samples["rampart_new_source/"+name]; len(xs) > 0 {
				res.FilterNewSourceNs[name] = median(xs)
			}
		}
		res.XDPFilterNewSourceNs = map[string]float64{newSourcePass: median(theirs)}
		res.RatioNewSourcePassVsXDPFilter = median(ratios(ours, theirs))
	}
}
