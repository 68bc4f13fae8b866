package xdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Run passes one frame through the filter with BPF_PROG_TEST_RUN and
// returns the reason it reached. The reason is read from the counters, so
// Run is only exact on a filter whose counters nothing else bumps: one
// loaded without PinDir, or with Observe.
func (f *Filter) Run(frame []byte) (Reason, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, err := f.maps.packetCounts()
	if err != nil {
		return 0, err
	}
	ret, err := f.prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		return 0, fmt.Errorf("run filter: %w", err)
	}
	after, err := f.maps.packetCounts()
	if err != nil {
		return 0, err
	}
	for r := range after {
		if after[r] != before[r] {
			reason := Reason(r)
			if want := actionOf(reason); want != ret {
				return reason, fmt.Errorf("filter returned action %d but counted %s", ret, reason)
			}
			return reason, nil
		}
	}
	return 0, errors.New("filter counted no reason for the frame")
}

// XDP actions (uapi linux/bpf.h).
const (
	xdpDrop = 1
	xdpPass = 2
)

func actionOf(r Reason) uint32 {
	if r.Dropped() {
		return xdpDrop
	}
	return xdpPass
}

// packetCounts reads every reason's packet count, summed over CPUs, in one
// batch syscall.
func (m *Maps) packetCounts() ([]uint64, error) {
	keys := make([]uint32, reasonCount)
	values := make([]filterCounter, reasonCount*ebpf.MustPossibleCPU())
	var cursor ebpf.MapBatchCursor
	n, err := m.stats.BatchLookup(&cursor, keys, values, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	cpus := ebpf.MustPossibleCPU()
	out := make([]uint64, reasonCount)
	for i := range n {
		for c := range cpus {
			out[keys[i]] += values[i*cpus+c].Packets
		}
	}
	return out, nil
}
