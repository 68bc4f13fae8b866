// Package testnet builds small networks of Linux network namespaces for
// tests, the demo and live benchmarks: every host is a namespace with one
// interface (eth0) plugged into a bridge in a "lan" namespace, addressed
// from 198.18.0.0/15. Nothing is created in the caller's namespace, and
// Close deletes exactly the namespaces it created.
//
// A Net is built and closed by one goroutine; Host methods are safe from
// any goroutine.
package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Net is a bridge ("lan" namespace) and the hosts plugged into it.
type Net struct {
	Prefix string
	lan    string
	hosts  []*Host
}

// Host is one namespace with eth0 on the lan.
type Host struct {
	Name  string     // short name given to New ("edge")
	NS    string     // namespace name ("<prefix>-edge")
	Iface string     // "eth0"
	Addr  netip.Addr // 198.18.0.N
}

// Subnet is the lan's IPv4 prefix.
var Subnet = netip.MustParsePrefix("198.18.0.0/24")

// New creates a lan and one host per name, the i-th at 198.18.0.(i+1).
// prefix names the namespaces; it must be unique on the machine.
func New(ctx context.Context, prefix string, names ...string) (_ *Net, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testnet: network namespaces need root")
	}
	if len(names) == 0 || len(names) > 250 {
		return nil, fmt.Errorf("testnet: need 1..250 hosts, got %d", len(names))
	}
	n := &Net{Prefix: prefix, lan: prefix + "-lan"}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := ipCmd(ctx, "netns", "add", n.lan); err != nil {
		return nil, err
	}
	n.hosts = append(n.hosts, &Host{NS: n.lan})
	steps := [][]string{
		{"-n", n.lan, "link", "add", "br0", "type", "bridge"},
		{"-n", n.lan, "link", "set", "br0", "up"},
		{"-n", n.lan, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return nil, err
		}
	}
	// Where br_netfilter is loaded, a new namespace's bridge hands every
	// frame to iptables and drops malformed IPv4 before it reaches a host:
	// the lan must be a plain switch for tests that send malformed frames.
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", n.lan, "sysctl", "-qw",
			"net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0",
			"net.bridge.bridge-nf-call-arptables=0").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("turn off bridge netfilter in %s: %w: %s", n.lan, err, strings.TrimSpace(string(out)))
		}
	}
	for i, name := range names {
		h := &Host{Name: name, NS: prefix + "-" + name, Iface: "eth0", Addr: Subnet.Addr().Next()}
		for range i {
			h.Addr = h.Addr.Next()
		}
		if err := ipCmd(ctx, "netns", "add", h.NS); err != nil {
			return nil, err
		}
		n.hosts = append(n.hosts, h)
		port := fmt.Sprintf("p%d", i)
		steps := [][]string{
			{"-n", n.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"-n", n.lan, "link", "set", port, "master", "br0"},
			{"-n", n.lan, "link", "set", port, "up"},
			{"-n", h.NS, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := ipCmd(ctx, s...); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// NewT builds a Net with a unique prefix for a test and deletes it in
// t.Cleanup. It skips the test when not root.
func NewT(t testing.TB, names ...string) *Net {
	t.Helper()
	RequireRoot(t, "create network namespaces")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, UniquePrefix("rt"), names...)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("testnet cleanup: %v", err)
		}
	})
	return n
}

// UniquePrefix returns tag plus random hex, short enough for every name.
func UniquePrefix(tag string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return tag + hex.EncodeToString(b[:])
}

// Host returns the host called name; it panics on an unknown name, which
// is a bug in the caller.
func (n *Net) Host(name string) *Host {
	for _, h := range n.hosts {
		if h.Name == name && h.Name != "" {
			return h
		}
	}
	panic("testnet: no host " + name)
}

// Close deletes every namespace this Net created, by exact name. Deleting
// a namespace removes its veth ends and the bridge with it.
func (n *Net) Close() error {
	var errs []error
	for i := len(n.hosts) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ipCmd(ctx, "netns", "delete", n.hosts[i].NS); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		cancel()
	}
	n.hosts = nil
	return errors.Join(errs...)
}

// Command prepares argv to run inside the host's namespace.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS}, argv...)...)
}

// Exec runs argv inside the host's namespace and returns its combined output.
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	out, err := h.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", h.NS, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Do runs fn on an OS thread switched into the host's namespace: sockets
// fn opens belong to the host. fn must not start goroutines that need the
// namespace; they would run on other threads.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", h.NS))
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", h.NS, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", h.NS, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine, so no
			// other goroutine inherits the wrong namespace.
			errc <- errors.Join(fnErr, fmt.Errorf("leave netns %s: %w", h.NS, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
