package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/cilium/ebpf"
)

// clock converts between CLOCK_MONOTONIC and the jiffies the filter reads.
// It is calibrated once at load at a jiffy edge and kept in the settings
// map, so that rampartctl converts times the same way without loading
// anything.
type clock struct {
	hz      uint64 // kernel HZ
	jiffies uint64 // jiffies at ...
	monoNs  uint64 // ... this CLOCK_MONOTONIC time
}

// jiffiesAt is the jiffies value at a CLOCK_MONOTONIC time.
func (c clock) jiffiesAt(mono uint64) uint64 {
	if mono >= c.monoNs {
		return c.jiffies + scaleMulDiv(mono-c.monoNs, c.hz, uint64(time.Second))
	}
	return c.jiffies - scaleMulDiv(c.monoNs-mono, c.hz, uint64(time.Second))
}

// monoAt is the CLOCK_MONOTONIC time of a jiffies value.
func (c clock) monoAt(j uint64) uint64 {
	if j >= c.jiffies {
		return c.monoNs + scaleMulDiv(j-c.jiffies, uint64(time.Second), c.hz)
	}
	return c.monoNs - scaleMulDiv(c.jiffies-j, uint64(time.Second), c.hz)
}

// ticksPerSecond is the rate limiter's time unit: 2^TICK_SHIFT per jiffy.
func (c clock) ticksPerSecond() uint64 { return c.hz << tickShift }

const tickShift = 24 // TICK_SHIFT in consts.h

// scaleMulDiv is a*b/c without intermediate overflow; it saturates.
func scaleMulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// calibrateClock finds HZ by timing jiffy edges with the clock program, and
// pairs a jiffies value with the monotonic time of its edge. A measurement
// stretched by preemption could mistake 300 for 250 (20 % apart), so it
// measures until two in a row agree.
func calibrateClock() (clock, error) {
	var prev clock
	for range 8 {
		c, err := measureClock()
		if err != nil {
			return clock{}, err
		}
		if c.hz == prev.hz {
			return c, nil
		}
		prev = c
	}
	return clock{}, errors.New("calibrate clock: HZ measurements never agreed twice in a row")
}

func measureClock() (clock, error) {
	spec, err := loadClock()
	if err != nil {
		return clock{}, fmt.Errorf("read embedded clock object: %w", err)
	}
	var objs clockObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return clock{}, privilegeError("load the clock program", err)
	}
	defer objs.Close()
	in := make([]byte, 64)
	out := make([]byte, 64)
	read := func() (uint64, uint64, error) {
		if _, err := objs.RampartClock.Run(&ebpf.RunOptions{Data: in, DataOut: out}); err != nil {
			return 0, 0, fmt.Errorf("run the clock program: %w", err)
		}
		return nativeUint64(out[0:8]), nativeUint64(out[8:16]), nil
	}
	// Wait for an edge, then time a few whole jiffies.
	const edges = 4
	var startJ, startNs uint64
	deadline := time.Now().Add(2 * time.Second)
	prevJ, _, err := read()
	if err != nil {
		return clock{}, err
	}
	seen := 0
	for seen <= edges {
		j, ns, err := read()
		if err != nil {
			return clock{}, err
		}
		if j != prevJ {
			if seen == 0 {
				startJ, startNs = j, ns
			}
			seen++
			if seen > edges {
				elapsed := ns - startNs
				hz := nearestHZ(float64(j-startJ) * float64(time.Second) / float64(elapsed))
				return clock{hz: hz, jiffies: j, monoNs: ns}, nil
			}
			prevJ = j
		}
		if time.Now().After(deadline) {
			return clock{}, errors.New("calibrate clock: jiffies did not advance in 2s")
		}
	}
	panic("unreachable")
}

func nativeUint64(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }

// nearestHZ picks the configurable kernel HZ closest to a measurement.
func nearestHZ(measured float64) uint64 {
	best := uint64(100)
	for _, hz := range []uint64{100, 250, 300, 1000} {
		if abs(float64(hz)-measured) < abs(float64(best)-measured) {
			best = hz
		}
	}
	return best
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
