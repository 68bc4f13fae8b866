//go:build !linux

package bench

import (
	"context"

	"github.com/rampart-edge/rampart/xdp"
)

// RunXDP needs Linux (BPF); elsewhere it returns xdp.ErrNotSupported.
func RunXDP(context.Context, XDPOptions) (*XDPResult, error) { return nil, xdp.ErrNotSupported }
