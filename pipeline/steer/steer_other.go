//go:build !linux

package steer

// Attach returns ErrNotSupported: reuseport BPF steering is Linux-only.
func Attach(fd int, prog []Instruction) error { return ErrNotSupported }

// Detach returns ErrNotSupported: reuseport BPF steering is Linux-only.
func Detach(fd int) error { return ErrNotSupported }

// PinThread returns ErrNotSupported.
func PinThread(cpu int) error { return ErrNotSupported }

// CurrentCPU returns ErrNotSupported.
func CurrentCPU() (int, error) { return -1, ErrNotSupported }
