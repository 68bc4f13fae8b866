package steer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// run interprets the subset of classic BPF the builders emit, with the CPU load answering
// cpu, the way the kernel runs a reuseport program. It rejects anything else, so a
// builder that starts emitting new instructions must extend it on purpose.
func run(prog []Instruction, cpu uint32) (uint32, error) {
	if len(prog) == 0 || len(prog) > maxInstructions {
		return 0, fmt.Errorf("program has %d instructions", len(prog))
	}
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Op {
		case opLdAbsW:
			if ins.K != cpuOffset {
				return 0, fmt.Errorf("pc %d: load of %s", pc, ins)
			}
			a = cpu
		case opModK:
			if ins.K == 0 {
				return 0, fmt.Errorf("pc %d: mod by zero", pc)
			}
			a %= ins.K
		case opJeqK:
			off := ins.Jf
			if a == ins.K {
				off = ins.Jt
			}
			pc += int(off)
			if pc+1 >= len(prog) {
				return 0, fmt.Errorf("pc %d: jump past the end", pc)
			}
		case opRetK:
			return ins.K, nil
		case opRetA:
			return a, nil
		default:
			return 0, fmt.Errorf("pc %d: unexpected instruction %s", pc, ins)
		}
	}
	return 0, errors.New("program falls off its end")
}

func disassemble(prog []Instruction) string {
	lines := make([]string, len(prog))
	for i, ins := range prog {
		lines[i] = ins.String()
	}
	return strings.Join(lines, "; ")
}

// unmappedTable returns a table of n entries with only the given CPUs mapped.
func unmappedTable(n int, mapped map[int]int) []int {
	table := make([]int, n)
	for i := range table {
		table[i] = Unmapped
	}
	for cpu, idx := range mapped {
		table[cpu] = idx
	}
	return table
}

func TestBuilders(t *testing.T) {
	const hash = int64(fallbackIndex)
	big := make([]int, MaxTableLen)
	for i := range big {
		big[i] = MaxTableLen - 1 - i
	}

	tests := []struct {
		name    string
		build   func() ([]Instruction, error)
		wantAsm string              // exact disassembly; empty to skip
		want    func(cpu int) int64 // expected return for each CPU in 0..4095
		wantErr string              // substring; every listed problem must appear
	}{
		{
			name:    "identity",
			build:   func() ([]Instruction, error) { return Identity(), nil },
			wantAsm: "ld #cpu; ret a",
			want:    func(cpu int) int64 { return int64(cpu) },
		},
		{
			name:    "modulo 1",
			build:   func() ([]Instruction, error) { return Modulo(1) },
			wantAsm: "ld #cpu; mod #1; ret a",
			want:    func(int) int64 { return 0 },
		},
		{
			name:    "modulo 3",
			build:   func() ([]Instruction, error) { return Modulo(3) },
			wantAsm: "ld #cpu; mod #3; ret a",
			want:    func(cpu int) int64 { return int64(cpu % 3) },
		},
		{
			name:  "modulo max group",
			build: func() ([]Instruction, error) { return Modulo(MaxGroup) },
			want:  func(cpu int) int64 { return int64(cpu % MaxGroup) },
		},
		{name: "modulo 0", build: func() ([]Instruction, error) { return Modulo(0) }, wantErr: "loops must be in 1..65535, got 0"},
		{name: "modulo negative", build: func() ([]Instruction, error) { return Modulo(-2) }, wantErr: "got -2"},
		{name: "modulo too big", build: func() ([]Instruction, error) { return Modulo(MaxGroup + 1) }, wantErr: "got 65536"},
		{
			name:    "table swap",
			build:   func() ([]Instruction, error) { return Program([]int{1, 0}) },
			wantAsm: "ld #cpu; jeq #0, 0, 1; ret #1; jeq #1, 0, 1; ret #0; ret #4294967295",
			want: func(cpu int) int64 {
				switch cpu {
				case 0:
					return 1
				case 1:
					return 0
				}
				return hash
			},
		},
		{
			name:    "table with unmapped cpus",
			build:   func() ([]Instruction, error) { return Program(unmappedTable(8, map[int]int{4: 0, 5: 1, 6: 2, 7: 3})) },
			wantAsm: "ld #cpu; jeq #4, 0, 1; ret #0; jeq #5, 0, 1; ret #1; jeq #6, 0, 1; ret #2; jeq #7, 0, 1; ret #3; ret #4294967295",
			want: func(cpu int) int64 {
				if cpu >= 4 && cpu < 8 {
					return int64(cpu - 4)
				}
				return hash
			},
		},
		{
			name:  "table of max length",
			build: func() ([]Instruction, error) { return Program(big) },
			want: func(cpu int) int64 {
				if cpu < MaxTableLen {
					return int64(MaxTableLen - 1 - cpu)
				}
				return hash
			},
		},
		{
			name:  "table with max index",
			build: func() ([]Instruction, error) { return Program([]int{MaxGroup - 1}) },
			want: func(cpu int) int64 {
				if cpu == 0 {
					return MaxGroup - 1
				}
				return hash
			},
		},
		{name: "table empty", build: func() ([]Instruction, error) { return Program(nil) }, wantErr: "must have 1..2047 entries, got 0"},
		{name: "table too long", build: func() ([]Instruction, error) { return Program(make([]int, MaxTableLen+1)) }, wantErr: "got 2048"},
		{name: "table all unmapped", build: func() ([]Instruction, error) { return Program([]int{Unmapped, Unmapped}) }, wantErr: "maps no CPU"},
		{
			name:    "table bad indexes reported together",
			build:   func() ([]Instruction, error) { return Program([]int{0, -2, MaxGroup, 1}) },
			wantErr: "cpu 1: index must be -1 (unmapped) or in 0..65534, got -2\nsteer: cpu 2: index must be -1 (unmapped) or in 0..65534, got 65535",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := tc.build()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if prog != nil {
					t.Fatalf("program %q returned with an error", disassemble(prog))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(prog) > maxInstructions {
				t.Fatalf("program has %d instructions, kernel limit is %d", len(prog), maxInstructions)
			}
			if tc.wantAsm != "" {
				if got := disassemble(prog); got != tc.wantAsm {
					t.Fatalf("program:\n got %s\nwant %s", got, tc.wantAsm)
				}
			}
			for cpu := range 4096 {
				got, err := run(prog, uint32(cpu))
				if err != nil {
					t.Fatalf("cpu %d: %v", cpu, err)
				}
				if want := tc.want(cpu); int64(got) != want {
					t.Fatalf("cpu %d: program returns %d, want %d", cpu, got, want)
				}
			}
		})
	}
}

func TestInstructionString(t *testing.T) {
	tests := []struct {
		name string
		ins  Instruction
		want string
	}{
		{"load cpu", Instruction{Op: opLdAbsW, K: cpuOffset}, "ld #cpu"},
		{"load other", Instruction{Op: opLdAbsW, K: 12}, "ld [12]"},
		{"unknown", Instruction{Op: 0x07, Jt: 1, Jf: 2, K: 3}, "{0x07, 1, 2, 0x00000003}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ins.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
