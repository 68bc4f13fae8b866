package pipeline

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// gnet v2.9.4 keeps three things private that an edge proxy needs: the list
// of event loops (to pin each loop's thread before it serves anyone), a
// loop's index (to find its state without a lock), and a loop's epoll
// descriptor (to stop reading from a connection: gnet reads every readable
// socket into an unbounded buffer, which defeats backpressure). They are
// read here, once per loop, by reflection on the pinned version's layout;
// checkGnetLayout fails loudly at start-up if an upgrade moved them.

// gnetLoops returns the engine's event loops in index order.
func gnetLoops(e gnet.Engine) ([]gnet.EventLoop, error) {
	eng := reflect.ValueOf(&e).Elem().FieldByName("eng")
	if !eng.IsValid() || eng.IsNil() {
		return nil, errors.New("gnet engine not running")
	}
	lb := eng.Elem().FieldByName("eventLoops")
	if !lb.IsValid() || lb.IsNil() {
		return nil, errors.New("gnet layout: engine.eventLoops missing")
	}
	base := lb.Elem().Elem().FieldByName("baseLoadBalancer")
	if !base.IsValid() {
		return nil, fmt.Errorf("gnet layout: load balancer %s has no baseLoadBalancer", lb.Elem().Type())
	}
	loops := base.FieldByName("eventLoops")
	if !loops.IsValid() || loops.Kind() != reflect.Slice {
		return nil, errors.New("gnet layout: baseLoadBalancer.eventLoops missing")
	}
	out := make([]gnet.EventLoop, loops.Len())
	for i := range out {
		v := loops.Index(i)
		// A value read through unexported fields cannot be turned back into
		// an interface; re-deriving it from its address can.
		p := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
		el, ok := p.Interface().(gnet.EventLoop)
		if !ok {
			return nil, fmt.Errorf("gnet layout: %s is not an EventLoop", v.Type())
		}
		out[i] = el
	}
	return out, nil
}

// gnetLoopIndex returns the index of a loop (its listener's position in
// the SO_REUSEPORT group).
func gnetLoopIndex(el gnet.EventLoop) (int, error) {
	v := reflect.ValueOf(el)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0, fmt.Errorf("gnet layout: event loop is %T", el)
	}
	idx := v.Elem().FieldByName("idx")
	if !idx.IsValid() || idx.Kind() != reflect.Int {
		return 0, errors.New("gnet layout: eventloop.idx missing")
	}
	return int(idx.Int()), nil
}

// gnetPollerFD returns the epoll descriptor of a loop.
func gnetPollerFD(el gnet.EventLoop) (int, error) {
	v := reflect.ValueOf(el)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0, fmt.Errorf("gnet layout: event loop is %T", el)
	}
	poller := v.Elem().FieldByName("poller")
	if !poller.IsValid() || poller.IsNil() {
		return 0, errors.New("gnet layout: eventloop.poller missing")
	}
	fd := poller.Elem().FieldByName("fd")
	if !fd.IsValid() || fd.Kind() != reflect.Int {
		return 0, errors.New("gnet layout: Poller.fd missing")
	}
	return int(fd.Int()), nil
}

// pollControl stops and restarts reading from one connection of a loop.
// gnet's default (non poll_opt) poller registers each descriptor with its
// own number as epoll data, so a modification here is indistinguishable
// from gnet's own. gnet re-enables reading when it flushes a connection's
// output; the connection notices data while paused and pauses again, so at
// most one read buffer (ReadBufferCap) slips in per flush.
type pollControl struct{ epfd int }

func (p pollControl) pause(fd int, writePending bool) error {
	var ev uint32
	if writePending {
		ev = unix.EPOLLOUT
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Fd: int32(fd), Events: ev}); err != nil {
		return fmt.Errorf("pause reading fd %d: %w", fd, err)
	}
	return nil
}

func (p pollControl) resume(fd int, writePending bool) error {
	ev := uint32(unix.EPOLLIN | unix.EPOLLPRI)
	if writePending {
		ev |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Fd: int32(fd), Events: ev}); err != nil {
		return fmt.Errorf("resume reading fd %d: %w", fd, err)
	}
	return nil
}
