package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/testnet"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// testCapacity keeps the test filter's maps small.
var testCapacity = xdp.Capacity{RateSources: 4096, SourceCacheSlots: 1024, AllowPrefixes: 256, BlockPrefixes: 256,
	Services: 256, AttackAddrs: 64, SampleRingBytes: 1 << 16}

// pinnedFilter loads a filter configured from edge-default (changed by
// mutate) with its maps pinned in a fresh folder of its own under
// /sys/fs/bpf. root is the pin root to hand to newRootCmd; dir holds the
// maps of the one interface "test0" under it.
func pinnedFilter(t *testing.T, mutate func(*xdp.Config)) (f *xdp.Filter, root, dir string) {
	t.Helper()
	testnet.RequireRoot(t, "load the XDP filter and pin its maps")
	root = filepath.Join("/sys/fs/bpf", testnet.UniquePrefix("rampart-test-"))
	dir = filepath.Join(root, "test0")
	spec, err := profiles.Load("edge-default")
	if err != nil {
		t.Fatal(err)
	}
	cfg := spec.XDP
	cfg.Capacity = testCapacity
	if mutate != nil {
		mutate(&cfg)
	}
	f, err = xdp.Load(xdp.LoadOptions{PinDir: dir, Capacity: cfg.Capacity, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		os.RemoveAll(root)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("remove %s: %v", root, err)
		}
	})
	if err := f.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	return f, root, dir
}

// rampartctl runs one command in-process against the pin root, with a
// deadline, and returns what it printed.
func rampartctl(t *testing.T, root string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd(root)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// mustRun is rampartctl for commands that must succeed.
func mustRun(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, stderr, err := rampartctl(t, root, args...)
	if err != nil {
		t.Fatalf("rampartctl %v: %v\nstderr: %s", args, err, stderr)
	}
	return out
}
