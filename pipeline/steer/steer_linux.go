package steer

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Attach installs prog as the reuseport program of the group that the listening socket
// fd belongs to (SO_ATTACH_REUSEPORT_CBPF). fd may be any member of the group, or a dup
// of one; the program replaces any program the group had. The kernel checks the program
// here and rejects an invalid one with EINVAL.
func Attach(fd int, prog []Instruction) error {
	if len(prog) == 0 || len(prog) > maxInstructions {
		return fmt.Errorf("steer: attach reuseport program to fd %d: program must have 1..%d instructions, got %d", fd, maxInstructions, len(prog))
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fmt.Errorf("steer: attach reuseport program (%d instructions) to fd %d: %w", len(prog), fd, mapErrno(err))
	}
	return nil
}

// Detach removes the reuseport program from the group that fd belongs to
// (SO_DETACH_REUSEPORT_BPF); the kernel's hash then picks the socket again. It fails
// with an error matching unix.ENOENT when the group has no program, and unix.EINVAL
// when fd is not a SO_REUSEPORT socket.
func Detach(fd int) error {
	// The kernel ignores the option value, but setsockopt needs a readable one.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0); err != nil {
		return fmt.Errorf("steer: detach reuseport program from fd %d: %w", fd, mapErrno(err))
	}
	return nil
}

// PinThread restricts the calling OS thread to CPU cpu. The caller must have called
// runtime.LockOSThread, or the goroutine may move to another thread and the pin lands on
// a thread the runtime later gives to other goroutines.
func PinThread(cpu int) error {
	if cpu < 0 {
		return fmt.Errorf("steer: pin thread to cpu %d: cpu must not be negative", cpu)
	}
	set := unix.NewCPUSet(cpu + 1)
	set.Set(cpu)
	if err := unix.SchedSetaffinityDynamic(0, set); err != nil {
		// EINVAL: the CPU is offline, absent or outside the cpuset of this process.
		return fmt.Errorf("steer: pin thread to cpu %d: %w", cpu, err)
	}
	return nil
}

// CurrentCPU returns the CPU the calling thread is running on (getcpu(2)). Unless the
// thread is pinned, the answer may be stale by the time it is used.
func CurrentCPU() (int, error) {
	var cpu uint32
	// x/sys has no Getcpu wrapper and Go does not expose the vDSO one: use the system call.
	_, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("steer: getcpu: %w", errno)
	}
	return int(cpu), nil
}

// mapErrno turns the errno of a kernel without the socket option into ErrNotSupported,
// keeping the errno in the chain.
func mapErrno(err error) error {
	if errors.Is(err, unix.ENOPROTOOPT) {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	return err
}
