package steer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connsPerCPU is the connection budget of each CPU in each case.
const connsPerCPU = 50

// hashed marks an expectation that the kernel's hash, not the program, picks the listener.
const hashed = -1

// allowedCPUs returns the CPUs this process may run on, skipping the test when steering
// cannot be observed: fewer than two CPUs, or RPS on loopback (the SYN would then be
// processed on an RPS-chosen CPU instead of the sender's).
func allowedCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var cpus []int
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	if len(cpus) < 2 {
		t.Skipf("needs at least 2 CPUs to observe steering, this process may use %v", cpus)
	}
	if mask, err := os.ReadFile("/sys/class/net/lo/queues/rx-0/rps_cpus"); err == nil &&
		strings.Trim(string(mask), "0,\n") != "" {
		t.Skipf("RPS is enabled on lo (rps_cpus %s): loopback SYNs are not processed on the sender's CPU", strings.TrimSpace(string(mask)))
	}
	return cpus
}

// requireIdentityCPUs skips unless the allowed CPUs are exactly 0..n-1, which the
// programs that use the CPU number as the index need.
func requireIdentityCPUs(t *testing.T, cpus []int) {
	t.Helper()
	for i, cpu := range cpus {
		if cpu != i {
			t.Skipf("needs CPUs 0..%d, this process may use %v", len(cpus)-1, cpus)
		}
	}
}

// positions maps cpus[i] to group index i.
func positions(cpus []int) []int {
	table := unmappedTable(slices.Max(cpus)+1, nil)
	for i, cpu := range cpus {
		table[cpu] = i
	}
	return table
}

// group is a set of SO_REUSEPORT listeners on one loopback port. fds[i] is -1 once
// listener i is closed.
type group struct {
	t    *testing.T
	port int
	fds  []int
}

// newGroup binds n listeners to one loopback port and listens on them in order, so
// listener i is group index i.
func newGroup(t *testing.T, n int) *group {
	t.Helper()
	g := &group{t: t}
	for range n {
		g.bind()
	}
	for i := range n {
		g.listen(i)
	}
	return g
}

// bind adds a SO_REUSEPORT socket bound to the group's port (an ephemeral one for the
// first socket) and returns its position.
func (g *group) bind() int {
	g.t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		g.t.Fatalf("socket: %v", err)
	}
	g.t.Cleanup(func() { g.close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		g.t.Fatalf("SO_REUSEPORT: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: g.port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		g.t.Fatalf("bind 127.0.0.1:%d: %v", g.port, err)
	}
	if g.port == 0 {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			g.t.Fatalf("getsockname: %v", err)
		}
		g.port = sa.(*unix.SockaddrInet4).Port
	}
	g.fds = append(g.fds, fd)
	return len(g.fds) - 1
}

func (g *group) listen(i int) {
	g.t.Helper()
	if err := unix.Listen(g.fds[i], 128); err != nil {
		g.t.Fatalf("listen listener %d: %v", i, err)
	}
}

// closeListener closes listener i, keeping its position so counts stay comparable.
func (g *group) closeListener(i int) {
	g.t.Helper()
	g.close(g.fds[i])
	g.fds[i] = -1
}

func (g *group) close(fd int) {
	if fd < 0 {
		return
	}
	for i := range g.fds {
		if g.fds[i] == fd {
			g.fds[i] = -1
		}
	}
	_ = unix.Close(fd)
}

// tally is where the connections opened from one CPU were accepted.
type tally struct {
	perListener []int // connections accepted per listener position
	offCPU      int   // accepted sockets whose SO_INCOMING_CPU was not the sender's CPU
}

// dialFrom opens n connections to the group from a thread pinned to cpu and returns
// which listener accepted each one. It runs on its own goroutine that stays locked to
// its OS thread and exits, so the pinned thread is destroyed rather than reused.
func (g *group) dialFrom(ctx context.Context, cpu, n int) tally {
	g.t.Helper()
	type result struct {
		tally tally
		err   error
	}
	done := make(chan result, 1)
	fds := slices.Clone(g.fds)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		var r result
		r.tally, r.err = dialPinned(ctx, cpu, n, g.port, fds)
		done <- r
	}()
	r := <-done
	if r.err != nil {
		g.t.Fatalf("dial from cpu %d: %v", cpu, r.err)
	}
	return r.tally
}

func dialPinned(ctx context.Context, cpu, n, port int, listeners []int) (tally, error) {
	tl := tally{perListener: make([]int, len(listeners))}
	if err := PinThread(cpu); err != nil {
		return tl, err
	}
	if got, err := CurrentCPU(); err != nil || got != cpu {
		return tl, fmt.Errorf("pinned to cpu %d but running on %d (err %v)", cpu, got, err)
	}
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return tl, fmt.Errorf("socket: %w", err)
		}
		i, incoming, err := connectAccept(ctx, fd, port, listeners)
		_ = unix.Close(fd)
		if err != nil {
			return tl, err
		}
		tl.perListener[i]++
		if incoming != cpu {
			tl.offCPU++
		}
	}
	return tl, nil
}

// connectAccept connects fd to the port and accepts the connection on whichever listener
// got it, returning that listener's position and the accepted socket's SO_INCOMING_CPU.
func connectAccept(ctx context.Context, fd, port int, listeners []int) (int, int, error) {
	deadline, _ := ctx.Deadline()
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		return 0, 0, fmt.Errorf("SO_SNDTIMEO: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, 0, fmt.Errorf("connect: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, 0, fmt.Errorf("getsockname: %w", err)
	}
	local := sa.(*unix.SockaddrInet4).Port

	var pfds []unix.PollFd
	var pos []int
	for i, lfd := range listeners {
		if lfd >= 0 {
			pfds = append(pfds, unix.PollFd{Fd: int32(lfd), Events: unix.POLLIN})
			pos = append(pos, i)
		}
	}
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return 0, 0, fmt.Errorf("connection from port %d not accepted before the deadline", local)
		}
		if _, err := unix.Poll(pfds, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return 0, 0, fmt.Errorf("poll: %w", err)
		}
		for k, p := range pfds {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			nfd, peer, err := unix.Accept4(int(p.Fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			if err != nil {
				return 0, 0, fmt.Errorf("accept on listener %d: %w", pos[k], err)
			}
			incoming, ierr := unix.GetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_INCOMING_CPU)
			_ = unix.Close(nfd)
			if ierr != nil {
				return 0, 0, fmt.Errorf("SO_INCOMING_CPU: %w", ierr)
			}
			if pp := peer.(*unix.SockaddrInet4).Port; pp != local {
				return 0, 0, fmt.Errorf("listener %d accepted a stray connection from port %d", pos[k], pp)
			}
			return pos[k], incoming, nil
		}
	}
}

// expectFrom dials connsPerCPU connections from cpu and checks they all land on listener
// want, or, for want == hashed, returns the counts for the caller to judge.
func (g *group) expectFrom(ctx context.Context, cpu, want int) []int {
	g.t.Helper()
	tl := g.dialFrom(ctx, cpu, connsPerCPU)
	if want != hashed && tl.perListener[want] != connsPerCPU {
		g.t.Errorf("from cpu %d: accepted per listener %v, want all %d on listener %d (%d of them arrived on another CPU per SO_INCOMING_CPU)",
			cpu, tl.perListener, connsPerCPU, want, tl.offCPU)
	}
	return tl.perListener
}

// expectHashed fails unless the counts show more than one listener in use, as the
// kernel's hash spreads connections from varying source ports (the chance that all of
// 50 or more land on one of two listeners is below 2^-49).
func expectHashed(t *testing.T, counts []int) {
	t.Helper()
	used := 0
	for _, c := range counts {
		if c > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("accepted per listener %v: want the hash to use more than one listener", counts)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSteer attaches each kind of program to a group with one listener per CPU (through
// a dup of listener 0, as gnet hands out) and checks where each CPU's connections land.
func TestSteer(t *testing.T) {
	cpus := allowedCPUs(t)
	n := len(cpus)
	reversed := unmappedTable(slices.Max(cpus)+1, nil)
	for i, cpu := range cpus {
		reversed[cpu] = n - 1 - i
	}
	outOfRange := unmappedTable(slices.Max(cpus)+1, nil)
	for _, cpu := range cpus {
		outOfRange[cpu] = n + 3
	}

	tests := []struct {
		name     string
		identity bool // needs CPUs 0..n-1
		build    func() ([]Instruction, error)
		want     func(i int) int // listener for cpus[i], or hashed
	}{
		{name: "no program", want: func(int) int { return hashed }},
		{
			name: "identity", identity: true,
			build: func() ([]Instruction, error) { return Identity(), nil },
			want:  func(i int) int { return i },
		},
		{
			name: "modulo n", identity: true,
			build: func() ([]Instruction, error) { return Modulo(n) },
			want:  func(i int) int { return i },
		},
		{
			name:  "modulo 1",
			build: func() ([]Instruction, error) { return Modulo(1) },
			want:  func(int) int { return 0 },
		},
		{
			name:  "table by position",
			build: func() ([]Instruction, error) { return Program(positions(cpus)) },
			want:  func(i int) int { return i },
		},
		{
			name:  "table reversed",
			build: func() ([]Instruction, error) { return Program(reversed) },
			want:  func(i int) int { return n - 1 - i },
		},
		{
			name:  "table first cpu only",
			build: func() ([]Instruction, error) { return Program(unmappedTable(cpus[0]+1, map[int]int{cpus[0]: n - 1})) },
			want: func(i int) int {
				if i == 0 {
					return n - 1
				}
				return hashed
			},
		},
		{
			name:  "index out of range falls back to hash",
			build: func() ([]Instruction, error) { return Program(outOfRange) },
			want:  func(int) int { return hashed },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.identity {
				requireIdentityCPUs(t, cpus)
			}
			ctx := testContext(t)
			g := newGroup(t, n)
			if tc.build != nil {
				prog, err := tc.build()
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				dup, err := unix.Dup(g.fds[0])
				if err != nil {
					t.Fatalf("dup: %v", err)
				}
				err = Attach(dup, prog)
				_ = unix.Close(dup) // the program belongs to the group, not the descriptor
				if errors.Is(err, ErrNotSupported) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for i, cpu := range cpus {
				want := tc.want(i)
				if counts := g.expectFrom(ctx, cpu, want); want == hashed {
					expectHashed(t, counts)
				}
			}
		})
	}
}

func TestDetach(t *testing.T) {
	cpus := allowedCPUs(t)
	ctx := testContext(t)
	g := newGroup(t, len(cpus))
	prog, err := Program(positions(cpus))
	if err != nil {
		t.Fatal(err)
	}
	if err := Attach(g.fds[0], prog); errors.Is(err, ErrNotSupported) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	g.expectFrom(ctx, cpus[1], 1)

	if err := Detach(g.fds[1]); errors.Is(err, ErrNotSupported) {
		t.Skip(err)
	} else if err != nil {
		t.Fatalf("detach through another member: %v", err)
	}
	expectHashed(t, g.expectFrom(ctx, cpus[1], hashed))

	if err := Detach(g.fds[0]); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second detach: err = %v, want ENOENT", err)
	}
}

func TestAttachErrors(t *testing.T) {
	allowedCPUs(t)
	g := newGroup(t, 1)

	plain, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(plain) })
	if err := unix.Bind(plain, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(plain, 1); err != nil {
		t.Fatal(err)
	}
	big := make([]int, MaxTableLen)
	for i := range big {
		big[i] = i % 7
	}
	maxProg, err := Program(big)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		fd      int
		prog    []Instruction
		wantErr error  // errors.Is target; nil for success
		wantMsg string // substring of the error
	}{
		{name: "max table accepted by the kernel", fd: g.fds[0], prog: maxProg},
		{name: "empty program", fd: g.fds[0], prog: nil, wantMsg: "program must have 1..4096 instructions, got 0"},
		{name: "too long", fd: g.fds[0], prog: make([]Instruction, maxInstructions+1), wantMsg: "got 4097"},
		{name: "kernel rejects invalid opcode", fd: g.fds[0], prog: []Instruction{{Op: 0xff}}, wantErr: unix.EINVAL, wantMsg: "attach reuseport program (1 instructions) to fd"},
		{name: "kernel rejects missing return", fd: g.fds[0], prog: Identity()[:1], wantErr: unix.EINVAL},
		{name: "socket without SO_REUSEPORT", fd: plain, prog: Identity(), wantErr: unix.EINVAL},
		{name: "bad descriptor", fd: -1, prog: Identity(), wantErr: unix.EBADF, wantMsg: "to fd -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Attach(tc.fd, tc.prog)
			if errors.Is(err, ErrNotSupported) {
				t.Skip(err)
			}
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("attach succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v in the chain", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.wantMsg)
			}
		})
	}

	if err := Detach(plain); !errors.Is(err, unix.EINVAL) {
		t.Errorf("detach from a socket without SO_REUSEPORT: err = %v, want EINVAL", err)
	}
}

func TestPinThread(t *testing.T) {
	cpus := allowedCPUs(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
		for _, cpu := range cpus {
			if err := PinThread(cpu); err != nil {
				errc <- err
				return
			}
			if got, err := CurrentCPU(); err != nil || got != cpu {
				errc <- fmt.Errorf("pinned to cpu %d, running on %d (err %v)", cpu, got, err)
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := PinThread(-1); err == nil {
		t.Error("PinThread(-1) succeeded")
	}
	// A CPU this process may not use: the kernel answers EINVAL. PinThread fails before
	// changing anything, so the unlocked test goroutine's thread is unaffected.
	if err := PinThread(slices.Max(cpus) + 4096); !errors.Is(err, unix.EINVAL) {
		t.Errorf("PinThread(absent cpu): err = %v, want EINVAL", err)
	}
}

// TestKernelBehaviour pins down the reuseport rules the engine depends on (see doc.go).
// Each case uses the first two allowed CPUs and a program that maps cpus[i] to index i.
func TestKernelBehaviour(t *testing.T) {
	cpus := allowedCPUs(t)
	c0, c1 := cpus[0], cpus[1]
	prog, err := Program(positions(cpus[:2]))
	if err != nil {
		t.Fatal(err)
	}
	attach := func(t *testing.T, fd int, p []Instruction) {
		t.Helper()
		if err := Attach(fd, p); errors.Is(err, ErrNotSupported) {
			t.Skip(err)
		} else if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("index is listen order not bind order", func(t *testing.T) {
		ctx := testContext(t)
		g := &group{t: t}
		g.bind()
		g.bind()
		g.listen(1)
		g.listen(0)
		attach(t, g.fds[0], prog)
		g.expectFrom(ctx, c0, 1)
		g.expectFrom(ctx, c1, 0)
	})

	t.Run("closing a member moves the last into its slot and keeps the program", func(t *testing.T) {
		ctx := testContext(t)
		g := newGroup(t, 3)
		attach(t, g.fds[0], prog)
		g.closeListener(0) // the socket the program was attached through
		g.expectFrom(ctx, c0, 2)
		g.expectFrom(ctx, c1, 1)
	})

	t.Run("closing the last member shrinks the group", func(t *testing.T) {
		ctx := testContext(t)
		g := newGroup(t, 2)
		attach(t, g.fds[0], prog)
		g.closeListener(1)
		g.expectFrom(ctx, c0, 0)
		g.expectFrom(ctx, c1, 0) // index 1 is out of range: hash over one listener
	})

	t.Run("program attached early stays with the group", func(t *testing.T) {
		ctx := testContext(t)
		g := &group{t: t}
		g.bind()
		g.listen(0)
		attach(t, g.fds[0], prog)
		g.bind()
		g.listen(1)
		g.expectFrom(ctx, c0, 0)
		g.expectFrom(ctx, c1, 1)
	})

	t.Run("program attached before the first member listens stays with the group", func(t *testing.T) {
		ctx := testContext(t)
		g := &group{t: t}
		g.bind()
		attach(t, g.fds[0], prog) // bound, not listening: the kernel creates the group here
		g.listen(0)
		g.bind()
		g.listen(1)
		g.expectFrom(ctx, c0, 0)
		g.expectFrom(ctx, c1, 1)
	})

	t.Run("a socket with a program cannot join a listening group", func(t *testing.T) {
		ctx := testContext(t)
		g := &group{t: t}
		g.bind()
		g.listen(0)
		g.bind()
		attach(t, g.fds[1], prog) // bound, not listening: the kernel gives it a group of its own
		if err := unix.Listen(g.fds[1], 128); !errors.Is(err, unix.EADDRINUSE) {
			t.Fatalf("listen: err = %v, want EADDRINUSE", err)
		}
		g.expectFrom(ctx, c1, 0) // listener 0 alone, and without the program
		if err := Detach(g.fds[0]); !errors.Is(err, unix.ENOENT) {
			t.Errorf("detach: err = %v, want ENOENT (no program on listener 0's group)", err)
		}
	})

	t.Run("a second attach replaces the program", func(t *testing.T) {
		ctx := testContext(t)
		g := newGroup(t, 2)
		attach(t, g.fds[0], prog)
		swapped, err := Program(unmappedTable(max(c0, c1)+1, map[int]int{c0: 1, c1: 0}))
		if err != nil {
			t.Fatal(err)
		}
		attach(t, g.fds[1], swapped)
		g.expectFrom(ctx, c0, 1)
		g.expectFrom(ctx, c1, 0)
	})
}
