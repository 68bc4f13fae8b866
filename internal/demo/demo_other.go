//go:build !linux

package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

// ErrNotSupported: the demo needs Linux network namespaces and XDP.
var ErrNotSupported = errors.New("demo: needs Linux (network namespaces and XDP)")

// Result is empty off Linux.
type Result struct{}

// Run always fails off Linux.
func Run(context.Context, io.Writer, *slog.Logger, Options) (Result, error) {
	return Result{}, ErrNotSupported
}
