package bench

import (
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// flowWorkerCPUs spreads g workers over the CPUs this process may use,
// highest first: with CPUs 0 and 1, one worker runs on CPU 1 (CPU 0 takes
// most interrupts, BENCH.md puts the subject on CPU 1), two on 1 and 0,
// four on 1, 0, 1, 0. -1 means not pinned.
func flowWorkerCPUs(g int) []int {
	out := make([]int, g)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		for w := range out {
			out[w] = -1
		}
		return out
	}
	var cpus []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	slices.Reverse(cpus)
	for w := range out {
		out[w] = cpus[w%len(cpus)]
	}
	return out
}

// pinFlowWorker pins the calling goroutine's thread to cpu (none for -1);
// restore undoes it.
func pinFlowWorker(cpu int) (restore func(), err error) {
	if cpu < 0 {
		return func() {}, nil
	}
	restore, _, err = pinThread(cpu)
	return restore, err
}

// rssBytes is the process's resident set (VmRSS of /proc/self/status).
func rssBytes() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}
