package steer

import (
	"errors"
	"fmt"
)

// Instruction is one classic BPF instruction, laid out like the kernel's struct
// sock_filter (and unix.SockFilter), so a program converts to the kernel's form by copy.
type Instruction struct {
	Op uint16
	Jt uint8
	Jf uint8
	K  uint32
}

// Opcodes and operands used by the programs built here (linux/filter.h, linux/bpf_common.h).
// They are spelled out so that the builders and their tests compile on every platform.
const (
	opLdAbsW = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	opModK   = 0x04 | 0x90 | 0x00 // BPF_ALU | BPF_MOD | BPF_K
	opJeqK   = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	opRetK   = 0x06 | 0x00        // BPF_RET | BPF_K
	opRetA   = 0x06 | 0x10        // BPF_RET | BPF_A

	skfAdOff = -0x1000 // SKF_AD_OFF: base of the ancillary-data loads
	skfAdCPU = 36      // SKF_AD_CPU: raw_smp_processor_id() of the softirq running the program

	// cpuOffset is the absolute-load offset that reads the current CPU into A.
	cpuOffset uint32 = 1<<32 + skfAdOff + skfAdCPU // 0xfffff024, the offset as a u32
)

const (
	// Unmapped marks a CPU in a [Program] table whose connections are left to the
	// kernel's hash.
	Unmapped = -1

	// MaxGroup is the largest reuseport group the kernel supports (its socket count is a
	// u16), so every steered index is below it.
	MaxGroup = 1<<16 - 1

	// maxInstructions is BPF_MAXINSNS, the kernel's limit for a classic program.
	maxInstructions = 4096

	// MaxTableLen bounds the table given to [Program]: a load, two instructions per mapped
	// CPU and a final return must fit in BPF_MAXINSNS (4096).
	MaxTableLen = (maxInstructions - 2) / 2

	// fallbackIndex is out of range for every group, so the kernel falls back to its hash.
	fallbackIndex = ^uint32(0)
)

// Identity returns the program that gives a connection to group member number cpu, where
// cpu is the CPU whose softirq processes the SYN:
//
//	ld #cpu
//	ret a
//
// A CPU at or above the group size falls back to the kernel's hash. Use it when loop i is
// pinned to CPU i and there is a loop for every CPU.
func Identity() []Instruction {
	return []Instruction{
		{Op: opLdAbsW, K: cpuOffset},
		{Op: opRetA},
	}
}

// Modulo returns the program that gives a connection to group member cpu mod loops:
//
//	ld #cpu
//	mod #loops
//	ret a
//
// Every CPU, including one brought online later, maps to a loop. Use it when loop i is
// pinned to CPU i and there are fewer loops than CPUs: a CPU without a loop of its own
// sends its connections to loop cpu mod loops, on another CPU, instead of to a hashed
// one, so the spread stays deterministic while CPUs 0..loops-1 keep their locality.
// loops must be in 1..[MaxGroup].
func Modulo(loops int) ([]Instruction, error) {
	if loops < 1 || loops > MaxGroup {
		return nil, fmt.Errorf("steer: loops must be in 1..%d, got %d", MaxGroup, loops)
	}
	return []Instruction{
		{Op: opLdAbsW, K: cpuOffset},
		{Op: opModK, K: uint32(loops)},
		{Op: opRetA},
	}, nil
}

// Program returns the program that gives a connection arriving on CPU c to group member
// cpuToIndex[c]. Entries equal to [Unmapped], and CPUs at or beyond len(cpuToIndex), fall
// back to the kernel's hash. Use it when the loops are pinned to a CPU set other than
// 0..n-1: for loops pinned to CPUs 4, 5, 6, 7 the table is
// []int{Unmapped, Unmapped, Unmapped, Unmapped, 0, 1, 2, 3}.
//
// The program is a chain of comparisons, one per mapped CPU:
//
//	ld #cpu
//	jeq #c, 0, 1   ; for each mapped CPU c
//	ret #cpuToIndex[c]
//	...
//	ret #0xffffffff ; out of range: hash
//
// so a SYN runs at most 2+2·len(cpuToIndex) instructions. The table must have 1 to
// [MaxTableLen] entries, at least one mapped, each in [Unmapped] or 0..[MaxGroup]-1; all
// problems are reported at once.
func Program(cpuToIndex []int) ([]Instruction, error) {
	if len(cpuToIndex) == 0 || len(cpuToIndex) > MaxTableLen {
		return nil, fmt.Errorf("steer: cpu table must have 1..%d entries, got %d", MaxTableLen, len(cpuToIndex))
	}
	var errs []error
	mapped := 0
	for cpu, idx := range cpuToIndex {
		switch {
		case idx == Unmapped:
		case idx < 0 || idx >= MaxGroup:
			errs = append(errs, fmt.Errorf("steer: cpu %d: index must be %d (unmapped) or in 0..%d, got %d", cpu, Unmapped, MaxGroup-1, idx))
		default:
			mapped++
		}
	}
	if len(errs) == 0 && mapped == 0 {
		errs = append(errs, errors.New("steer: cpu table maps no CPU"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	prog := make([]Instruction, 0, 2+2*mapped)
	prog = append(prog, Instruction{Op: opLdAbsW, K: cpuOffset})
	for cpu, idx := range cpuToIndex {
		if idx == Unmapped {
			continue
		}
		prog = append(prog,
			Instruction{Op: opJeqK, Jt: 0, Jf: 1, K: uint32(cpu)},
			Instruction{Op: opRetK, K: uint32(idx)},
		)
	}
	prog = append(prog, Instruction{Op: opRetK, K: fallbackIndex})
	return prog, nil
}

// String disassembles the instruction in the notation of the kernel's bpf_asm, for logs
// and test failures.
func (ins Instruction) String() string {
	switch {
	case ins.Op == opLdAbsW && ins.K == cpuOffset:
		return "ld #cpu"
	case ins.Op == opLdAbsW:
		return fmt.Sprintf("ld [%d]", int32(ins.K))
	case ins.Op == opModK:
		return fmt.Sprintf("mod #%d", ins.K)
	case ins.Op == opJeqK:
		return fmt.Sprintf("jeq #%d, %d, %d", ins.K, ins.Jt, ins.Jf)
	case ins.Op == opRetK:
		return fmt.Sprintf("ret #%d", ins.K)
	case ins.Op == opRetA:
		return "ret a"
	default:
		return fmt.Sprintf("{0x%02x, %d, %d, 0x%08x}", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
}
