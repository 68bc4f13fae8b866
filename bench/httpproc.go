package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// parseProcStat returns the parent pid and utime + stime (USER_HZ ticks)
// from the text of a /proc/PID/stat file. For a process (not a single
// task) the times cover all its threads, the exited ones included.
func parseProcStat(stat string) (ppid int, ticks uint64, err error) {
	ticks, err = parseTaskTicks(stat)
	if err != nil {
		return 0, 0, err
	}
	// parseTaskTicks found the command's last ')' and at least 13 fields
	// after it: state, ppid, ...
	i := strings.LastIndexByte(stat, ')')
	fields := strings.Fields(stat[i+1:])
	ppid, err = strconv.Atoi(fields[1])
	if err != nil || ppid < 0 {
		return 0, 0, fmt.Errorf("task stat ppid %q: not a pid", fields[1])
	}
	return ppid, ticks, nil
}

// procTree returns the utime + stime ticks of root and of every
// descendant of it, by pid, from the /proc file system at procRoot.
// Processes that exit while it reads are left out; root must be there.
func procTree(procRoot string, root int) (map[int]uint64, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	ticks := map[int]uint64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // gone, or not a process directory
		}
		ppid, t, err := parseProcStat(string(b))
		if err != nil {
			if pid == root {
				return nil, fmt.Errorf("process %d: %w", pid, err)
			}
			continue
		}
		children[ppid] = append(children[ppid], pid)
		ticks[pid] = t
	}
	if _, ok := ticks[root]; !ok {
		return nil, fmt.Errorf("process %d: not running", root)
	}
	tree := map[int]uint64{}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, seen := tree[pid]; seen {
			continue
		}
		tree[pid] = ticks[pid]
		queue = append(queue, children[pid]...)
	}
	return tree, nil
}

// treeDelta is the ticks a process tree used between two readings; both
// must hold the same processes: one that came or went (a worker
// restarted) took time the readings cannot see.
func treeDelta(before, after map[int]uint64) (uint64, error) {
	if !slices.Equal(slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after))) {
		return 0, fmt.Errorf("its processes changed during the run, from %v to %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
	var d uint64
	for pid, a := range after {
		if a < before[pid] {
			return 0, errors.New("its CPU time went backwards")
		}
		d += a - before[pid]
	}
	return d, nil
}

// parseCPUTimes finds the "cpuN" line of /proc/stat in r and returns the
// ticks that CPU was busy (everything but idle and iowait; steal counts as
// busy: the CPU was not ours) and its total ticks.
func parseCPUTimes(r io.Reader, cpu int) (busy, total uint64, err error) {
	if cpu < 0 {
		return 0, 0, fmt.Errorf("cpu %d: must be at least 0", cpu)
	}
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		// cpuN user nice system idle iowait irq softirq steal guest
		// guest_nice; guest time is already in user and nice.
		fields := strings.Fields(line)
		if len(fields) < 9 {
			return 0, 0, fmt.Errorf("short /proc/stat line %q", line)
		}
		var idle uint64
		for i := 1; i <= 8; i++ {
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse /proc/stat field %d of %q: %w", i, line, err)
			}
			if total+v < total {
				return 0, 0, fmt.Errorf("parse /proc/stat line %q: overflow", line)
			}
			total += v
			if i == 4 || i == 5 {
				idle += v
			}
		}
		return total - idle, total, nil
	}
	if err := s.Err(); err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return 0, 0, fmt.Errorf("no cpu%d line in /proc/stat", cpu)
}
