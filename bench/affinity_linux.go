package bench

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// pinThread locks the calling goroutine to its OS thread and that thread to
// cpu; the returned func restores the thread's affinity and unlocks it. On
// a machine without that CPU it only locks the thread and says so.
func pinThread(cpu int) (restore func(), pinned bool, err error) {
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, false, fmt.Errorf("read cpu affinity: %w", err)
	}
	if cpu >= runtime.NumCPU() || !old.IsSet(cpu) {
		return runtime.UnlockOSThread, false, nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, false, fmt.Errorf("pin thread to cpu %d: %w", cpu, err)
	}
	return func() {
		// If restoring failed, the pinned thread must not go back to the
		// pool where other goroutines would inherit the pin: it stays
		// locked to this goroutine, and the runtime ends it when the
		// goroutine exits.
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread()
		}
	}, true, nil
}
