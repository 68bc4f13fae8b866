package xdp

import "errors"

// ErrNotSupported means the kernel, the interface's driver or the platform
// lacks a feature the filter needs. Tests turn it into a skip.
var ErrNotSupported = errors.New("xdp: not supported on this system")

// ErrNotListed is returned when deleting a prefix that is not on the list.
var ErrNotListed = errors.New("prefix not listed")
