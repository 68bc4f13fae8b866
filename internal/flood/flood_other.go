//go:build !linux

package flood

import (
	"context"
	"errors"
	"net"
)

// ErrNotSupported: raw packet sockets and namespaces are Linux-only.
var ErrNotSupported = errors.New("flood: not supported on this system")

// Sender writes raw frames to one interface (Linux only).
type Sender struct{}

// Open always fails off Linux.
func Open(string) (*Sender, error) { return nil, ErrNotSupported }

// Send always fails off Linux.
func (*Sender) Send(context.Context, [][]byte, int) (int, error) { return 0, ErrNotSupported }

// Close does nothing.
func (*Sender) Close() error { return nil }

// MAC always fails off Linux.
func MAC(string) (net.HardwareAddr, error) { return nil, ErrNotSupported }
