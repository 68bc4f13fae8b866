package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseCPUBusy finds the "cpuN" line of /proc/stat in r and returns its
// system + irq + softirq ticks: the kernel-side work of that CPU.
func parseCPUBusy(r io.Reader, cpu int) (uint64, error) {
	if cpu < 0 {
		return 0, fmt.Errorf("cpu %d: must be at least 0", cpu)
	}
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		// cpuN user nice system idle iowait irq softirq steal ...
		fields := strings.Fields(line)
		if len(fields) < 8 {
			return 0, fmt.Errorf("short /proc/stat line %q", line)
		}
		var sum uint64
		for _, i := range []int{3, 6, 7} {
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/stat field %d of %q: %w", i, line, err)
			}
			if sum+v < sum {
				return 0, fmt.Errorf("parse /proc/stat line %q: overflow", line)
			}
			sum += v
		}
		return sum, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return 0, fmt.Errorf("no cpu%d line in /proc/stat", cpu)
}

// parseTaskTicks returns utime + stime (USER_HZ ticks) from the text of a
// /proc/PID/stat file. The command name may hold spaces and parentheses,
// so fields are counted from its last ')'.
func parseTaskTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("task stat: no command name")
	}
	// After ")": state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("task stat: %d fields after the command, want at least 13", len(fields))
	}
	u, err := strconv.ParseUint(fields[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("task stat utime: %w", err)
	}
	st, err := strconv.ParseUint(fields[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("task stat stime: %w", err)
	}
	if u+st < u {
		return 0, errors.New("task stat: overflow")
	}
	return u + st, nil
}
