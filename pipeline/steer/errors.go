package steer

import "errors"

// ErrNotSupported means the platform or kernel lacks reuseport BPF steering: not Linux,
// or a kernel without SO_ATTACH_REUSEPORT_CBPF (before 4.5) or SO_DETACH_REUSEPORT_BPF
// (before 5.3). Tests turn it into a skip, the daemon into a start-up message.
var ErrNotSupported = errors.New("steer: not supported on this system")
