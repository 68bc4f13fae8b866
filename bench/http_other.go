//go:build !linux

package bench

import (
	"context"
	"errors"
)

// RunHTTP needs Linux (/proc, CPU affinity); elsewhere it returns
// errors.ErrUnsupported.
func RunHTTP(context.Context, HTTPOptions) (*HTTPResult, error) { return nil, errors.ErrUnsupported }
