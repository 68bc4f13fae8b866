//go:build !linux

package baseline

import (
	"github.com/cilium/ebpf"

	"github.com/rampart-edge/rampart/xdp"
)

// LoadDrop is not supported off Linux.
func LoadDrop() (*ebpf.Program, error) { return nil, xdp.ErrNotSupported }

// LoadPass is not supported off Linux.
func LoadPass() (*ebpf.Program, error) { return nil, xdp.ErrNotSupported }

// XDPFilter is xdp-tools' xdp-filter program with its maps.
type XDPFilter struct{}

// Program is nil off Linux.
func (x *XDPFilter) Program() *ebpf.Program { return nil }

// Close does nothing off Linux.
func (x *XDPFilter) Close() error { return nil }

// XDPFilterObject is not supported off Linux.
func XDPFilterObject() (string, error) { return "", xdp.ErrNotSupported }

// LoadXDPFilter is not supported off Linux.
func LoadXDPFilter(string) (*XDPFilter, error) { return nil, xdp.ErrNotSupported }
