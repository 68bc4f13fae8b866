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

// packetCounts reads every reason's packet count.
func (m *Maps) packetCounts() ([]uint64, error) {
	stats, err := m.Stats()
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(stats))
	for i, c := range stats {
		out[i] = c.Packets
	}
	return out, nil
}
