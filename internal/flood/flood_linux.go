package flood

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many frames one sendmmsg call carries: large enough to
// amortise the syscall, small enough to notice a cancelled context quickly.
const batchSize = 128

// Retries after ENOBUFS/EAGAIN (a full device queue or socket buffer) wait
// pauseMin, doubling up to pauseMax, and give up after maxStall of no progress.
const (
	pauseMin = 20 * time.Microsecond
	pauseMax = 2 * time.Millisecond
	maxStall = 2 * time.Second
)

// sndbufBytes lets many frames be in flight before send blocks.
const sndbufBytes = 4 << 20

// mmsghdr mirrors struct mmsghdr (x/sys has no sendmmsg wrapper); Go pads
// it like C does on every Linux architecture.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// Sender writes raw frames to one interface.
type Sender struct {
	mu    sync.Mutex
	fd    int
	iface string

	// The headers of the last frame set, reused while Send is called with
	// the same frames: hdrs[i] carries frames[i%len(frames)], so any run of
	// batchSize consecutive frames is one contiguous slice of hdrs.
	iovs   []unix.Iovec
	hdrs   []mmsghdr
	frames [][]byte
	next   int // index in frames of the next frame to send
}

// Open binds a raw packet socket to iface for sending only (protocol 0: the
// socket receives nothing). Call it inside the namespace that owns iface.
// Frames bypass the qdisc, as a packet generator's do.
func Open(iface string) (*Sender, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("flood: open %s: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("flood: open packet socket on %s: needs root (CAP_NET_RAW): %w", iface, err)
		}
		return nil, fmt.Errorf("flood: open packet socket on %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("flood: bind packet socket to %s: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("flood: bypass qdisc on %s: %w", iface, err)
	}
	// Best effort: without CAP_NET_ADMIN the kernel's default buffer only
	// means send blocks sooner.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbufBytes); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbufBytes)
	}
	return &Sender{fd: fd, iface: iface}, nil
}

// Send sends count frames, cycling through frames in order, and returns how
// many the kernel accepted. A Send with the same frame set as the previous
// one continues the cycle where that one stopped, so a flood sent in small
// shares still covers every frame. It stops early when ctx is done
// (returning ctx.Err()) or when the interface refuses frames for too long.
func (s *Sender) Send(ctx context.Context, frames [][]byte, count int) (sent int, err error) {
	if count <= 0 {
		return 0, nil
	}
	if len(frames) == 0 {
		return 0, errors.New("flood: no frames to send")
	}
	for i, f := range frames {
		if len(f) < 14 {
			return 0, fmt.Errorf("flood: frame %d is %d bytes, shorter than an Ethernet header", i, len(f))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return 0, errors.New("flood: sender is closed")
	}
	s.prepare(frames)

	n := len(frames)
	pause := pauseMin
	var stalled time.Duration
	done := ctx.Done()
	for sent < count {
		select {
		case <-done:
			return sent, ctx.Err()
		default:
		}
		vlen := min(batchSize, count-sent)
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&s.hdrs[s.next])), uintptr(vlen), 0, 0, 0)
		if errno != 0 {
			switch errno {
			case unix.EINTR:
				continue
			case unix.ENOBUFS, unix.EAGAIN:
				if stalled >= maxStall {
					return sent, fmt.Errorf("flood: send on %s: no progress for %s: %w", s.iface, maxStall, errno)
				}
				time.Sleep(pause)
				stalled += pause
				pause = min(2*pause, pauseMax)
				continue
			default:
				return sent, fmt.Errorf("flood: send on %s: %w", s.iface, errno)
			}
		}
		sent += int(r)
		s.next = (s.next + int(r)) % n
		pause, stalled = pauseMin, 0
	}
	runtime.KeepAlive(frames)
	return sent, nil
}

// prepare builds the iovecs and message headers for frames, unless the
// previous Send already built them for the very same frames.
func (s *Sender) prepare(frames [][]byte) {
	if sameFrames(s.frames, frames) {
		return
	}
	s.next = 0
	n := len(frames)
	if cap(s.iovs) < n {
		s.iovs = make([]unix.Iovec, n)
	}
	s.iovs = s.iovs[:n]
	if want := n + batchSize - 1; cap(s.hdrs) < want {
		s.hdrs = make([]mmsghdr, want)
	} else {
		s.hdrs = s.hdrs[:want]
	}
	for i, f := range frames {
		s.iovs[i] = unix.Iovec{Base: &f[0]}
		s.iovs[i].SetLen(len(f))
	}
	for i := range s.hdrs {
		s.hdrs[i] = mmsghdr{hdr: unix.Msghdr{Iov: &s.iovs[i%n]}}
		s.hdrs[i].hdr.SetIovlen(1)
	}
	if cap(s.frames) < n {
		s.frames = make([][]byte, n)
	}
	s.frames = s.frames[:n]
	copy(s.frames, frames) // keeps the frames alive while headers point at them
}

// sameFrames reports whether b is the frame set a describes: same slices,
// same lengths (contents may change between sends; the kernel copies them).
func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) || &a[i][0] != &b[i][0] {
			return false
		}
	}
	return true
}

// Close closes the socket.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	s.iovs, s.hdrs, s.frames = nil, nil, nil
	if err != nil {
		return fmt.Errorf("flood: close %s: %w", s.iface, err)
	}
	return nil
}

// MAC returns iface's hardware address; call it inside the namespace that
// owns iface.
func MAC(iface string) (net.HardwareAddr, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("flood: mac of %s: %w", iface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("flood: %s has no Ethernet address", iface)
	}
	return ifc.HardwareAddr, nil
}
