package xdp

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// PinRoot is where the filter pins its maps, one folder per interface.
const PinRoot = "/sys/fs/bpf/rampart"

// PinDir is the folder holding the pinned maps of the filter on iface.
func PinDir(iface string) string { return filepath.Join(PinRoot, iface) }

// LoadOptions says where the filter's state lives and how big it is.
type LoadOptions struct {
	// PinDir keeps the maps under this bpffs folder, so that a restart (or
	// rampartctl) finds the blocklist, the limits and the counters. Empty
	// keeps every map private to this Filter (tests, benchmarks).
	PinDir string
	// Observe loads a copy of the filter that shares the lists, services
	// and settings pinned in PinDir but keeps its own counters, rate state
	// and sample ring: a replay sees the live configuration without
	// touching live counters or buckets. It never creates, resizes or
	// migrates pinned maps; Capacity sizes only the private ones.
	Observe  bool
	Capacity Capacity
	Logger   *slog.Logger
}

// Filter is a loaded (and maybe attached) XDP filter program with its maps.
type Filter struct {
	prog *ebpf.Program
	coll *ebpf.Collection
	maps *Maps
	log  *slog.Logger

	mu    sync.Mutex // serialises Run's read-run-read of the counters
	owner *os.File   // holds the pin folder (see ownPinDir)
	link  link.Link
	iface string
	mode  string
}

// Mode names under which the filter can be attached.
const (
	ModeNative  = "native"
	ModeGeneric = "generic"
)

// privateMaps hold per-packet state: an observing copy of the filter keeps
// its own, so that it never charges or evicts live sources.
var privateMaps = map[string]bool{"stats": true, "rate_limits": true, "samples": true, "source_cache": true}

// unpinnedMaps are per-CPU scratch: nothing in them outlives the program.
var unpinnedMaps = map[string]bool{"source_cache": true}

// Load loads the filter, reusing maps pinned under opts.PinDir when they
// exist and pinning new ones there when they do not. A pinned map whose
// size no longer matches the profile is recreated and its entries copied.
func Load(opts LoadOptions) (*Filter, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "xdp")
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, privilegeError("raise the memlock limit", err)
	}
	spec, err := loadFilter()
	if err != nil {
		return nil, fmt.Errorf("read embedded filter object: %w", err)
	}
	applyCapacity(spec, opts.Capacity)

	replacements := map[string]*ebpf.Map{}
	if opts.Observe && opts.PinDir == "" {
		return nil, errors.New("observe needs the pin folder of a filter")
	}
	if opts.Observe {
		// The live settings index the source cache with source_bits: the
		// private copy must have the same size or every lookup misses.
		bits, err := pinnedSourceBits(opts.PinDir)
		if err != nil {
			return nil, err
		}
		spec.Maps["source_cache"].MaxEntries = 1 << bits
	}
	var owner *os.File
	if opts.PinDir != "" && !opts.Observe {
		if err := ensureBPFFS(); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(opts.PinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin folder: %w", err)
		}
		// One loader per pin folder: a second one would rewrite the
		// settings of the first, and resize maps under its program.
		if owner, err = ownPinDir(opts.PinDir); err != nil {
			return nil, err
		}
		// Writers (rampartctl) wait while maps are reused or migrated, so
		// that no write lands in a map being replaced.
		unlock, err := lockDir(opts.PinDir)
		if err != nil {
			owner.Close()
			return nil, err
		}
		defer unlock()
	}
	fail := func(err error) (*Filter, error) {
		closeAll(replacements)
		if owner != nil {
			owner.Close()
		}
		return nil, err
	}
	if opts.PinDir != "" {
		for name, ms := range spec.Maps {
			if !pinnable(name) || unpinnedMaps[name] || (opts.Observe && privateMaps[name]) {
				continue
			}
			var m *ebpf.Map
			var err error
			if opts.Observe {
				m, err = observedMap(filepath.Join(opts.PinDir, name), ms)
			} else {
				m, err = pinnedMap(filepath.Join(opts.PinDir, name), ms, log)
			}
			if err != nil {
				return fail(err)
			}
			replacements[name] = m
		}
	}

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replacements})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fail(fmt.Errorf("load xdp filter: verifier: %+v", ve))
		}
		return fail(privilegeError("load the xdp filter", err))
	}
	closeAll(replacements) // the collection holds its own references
	replacements = nil
	maps, err := mapsFromCollection(coll, opts.PinDir)
	if err == nil {
		if opts.Observe {
			err = maps.loadClock()
		} else {
			maps.clk, err = calibrateClock()
		}
	}
	if err != nil {
		coll.Close()
		return fail(err)
	}
	return &Filter{prog: coll.Programs["rampart_filter"], coll: coll, maps: maps, log: log, owner: owner}, nil
}

// ownerLockDir holds one lock file per pin folder, on tmpfs so that it
// goes with a reboot like the pins themselves.
const ownerLockDir = "/run/rampart"

// ownPinDir takes the pin folder for this process's lifetime.
func ownPinDir(pinDir string) (*os.File, error) {
	if err := os.MkdirAll(ownerLockDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", ownerLockDir, err)
	}
	f, err := os.OpenFile(ownerLockPath(pinDir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open owner lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another rampart already runs the filter pinned at %s: %w", pinDir, ErrBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// ownerLockPath is the lock file of a pin folder. It is never removed:
// a process could otherwise lock a file that another just unlinked.
func ownerLockPath(pinDir string) string {
	return filepath.Join(ownerLockDir, strings.ReplaceAll(strings.Trim(filepath.Clean(pinDir), "/"), "/", "_")+".lock")
}

// ErrBusy means another process already owns the filter's pinned state.
var ErrBusy = errors.New("filter state in use")

// lockDir takes the writers' lock of a pin folder (see Maps.lock).
func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		unix.Flock(fd, unix.LOCK_UN)
		unix.Close(fd)
	}, nil
}

// pinnable excludes the data sections clang emits for globals; they hold
// nothing worth keeping.
func pinnable(name string) bool { return name != "" && name[0] != '.' }

func applyCapacity(spec *ebpf.CollectionSpec, c Capacity) {
	set := func(name string, n uint32) {
		if n > 0 {
			spec.Maps[name].MaxEntries = n
		}
	}
	set("rate_limits", c.RateSources)
	set("allow_v4", c.AllowPrefixes)
	set("allow_v6", c.AllowPrefixes)
	set("block_v4", c.BlockPrefixes)
	set("block_v6", c.BlockPrefixes)
	set("services", c.Services)
	set("served_addrs", c.Services)
	set("attack_addrs", c.AttackAddrs)
	set("samples", c.SampleRingBytes)
	set("source_cache", c.SourceCacheSlots)
	if c.Services > 0 {
		// Two halves, each at most half full, for short probe chains.
		spec.Maps["service_table"].MaxEntries = 2 * nextPow2(2*c.Services)
	}
}

func pinnedSourceBits(dir string) (uint32, error) {
	m, err := observedMap(filepath.Join(dir, "config"), nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	var s filterSettings
	if err := m.Lookup(uint32(0), &s); err != nil {
		return 0, fmt.Errorf("read live filter settings: %w", err)
	}
	if s.SourceBits == 0 || s.SourceBits > 24 {
		return 0, fmt.Errorf("live filter in %s was never configured", dir)
	}
	return s.SourceBits, nil
}

// observedMap opens a pinned map as it is, adopting its size (checked
// against spec when given).
func observedMap(path string, spec *ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no filter state at %s: has rampart run on that interface since boot?", filepath.Dir(path))
		}
		return nil, privilegeError("open pinned map "+path, err)
	}
	if spec == nil {
		return m, nil
	}
	spec.MaxEntries = m.MaxEntries()
	if err := spec.Compatible(m); err != nil {
		m.Close()
		return nil, fmt.Errorf("pinned map %s: %w: %w", path, ErrIncompatiblePin, err)
	}
	return m, nil
}

// pinnedMap opens the map pinned at path, or creates and pins it. A map
// pinned by an older profile with another size is migrated: a new map is
// created, every entry copied, and the pin replaced.
func pinnedMap(path string, spec *ebpf.MapSpec, log *slog.Logger) (*ebpf.Map, error) {
	old, err := ebpf.LoadPinnedMap(path, nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m, err := ebpf.NewMap(spec)
		if err != nil {
			return nil, privilegeError("create map "+spec.Name, err)
		}
		if err := m.Pin(path); err != nil {
			m.Close()
			return nil, fmt.Errorf("pin map %s: %w", path, err)
		}
		return m, nil
	case err != nil:
		return nil, privilegeError("open pinned map "+path, err)
	}
	if err := spec.Compatible(old); err == nil {
		return old, nil
	}
	defer old.Close()
	if old.Type() != spec.Type || old.KeySize() != spec.KeySize || old.ValueSize() != spec.ValueSize {
		return nil, fmt.Errorf("pinned map %s has another layout (from another Rampart version?): remove it to start afresh: %w",
			path, ErrIncompatiblePin)
	}
	if n, err := countEntries(old); err != nil {
		return nil, fmt.Errorf("count entries of %s: %w", path, err)
	} else if n > int(spec.MaxEntries) {
		return nil, fmt.Errorf("profile sizes %s at %d entries but it holds %d: raise the capacity or remove entries first",
			spec.Name, spec.MaxEntries, n)
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, privilegeError("create map "+spec.Name, err)
	}
	copied, err := copyEntries(old, m)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("migrate pinned map %s: %w", path, err)
	}
	// Pinned beside and renamed over the old pin: at every moment one
	// complete map is pinned at path.
	tmp := path + "_migrating" // bpffs refuses dots in names
	_ = os.Remove(tmp)
	if err := m.Pin(tmp); err != nil {
		m.Close()
		return nil, fmt.Errorf("pin map %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		m.Close()
		return nil, fmt.Errorf("replace pinned map %s: %w", path, err)
	}
	log.Info("pinned map resized", "map", spec.Name, "from", old.MaxEntries(), "to", spec.MaxEntries, "entries_copied", copied)
	return m, nil
}

// ErrIncompatiblePin means a pinned map cannot be reused or migrated.
var ErrIncompatiblePin = errors.New("incompatible pinned map")

func copyEntries(from, to *ebpf.Map) (int, error) {
	switch from.Type() {
	case ebpf.RingBuf:
		return 0, nil
	case ebpf.PerCPUArray, ebpf.Array:
		n := min(from.MaxEntries(), to.MaxEntries())
		var value []byte
		if from.Type() == ebpf.PerCPUArray {
			var values [][]byte
			for k := range n {
				if err := from.Lookup(k, &values); err != nil {
					return int(k), err
				}
				if err := to.Put(k, values); err != nil {
					return int(k), err
				}
			}
			return int(n), nil
		}
		for k := range n {
			if err := from.Lookup(k, &value); err != nil {
				return int(k), err
			}
			if err := to.Put(k, value); err != nil {
				return int(k), err
			}
		}
		return int(n), nil
	}
	var key, value []byte
	n := 0
	it := from.Iterate()
	for it.Next(&key, &value) {
		if err := to.Put(key, value); err != nil {
			return n, err
		}
		n++
	}
	return n, it.Err()
}

// countEntries counts a hash-like map's entries; arrays report 0, since
// they keep min(old, new) slots by design.
func countEntries(m *ebpf.Map) (int, error) {
	switch m.Type() {
	case ebpf.Array, ebpf.PerCPUArray, ebpf.RingBuf:
		return 0, nil
	case ebpf.LRUHash, ebpf.LRUCPUHash:
		return 0, nil // an LRU evicts what does not fit, by design
	}
	var key, value []byte
	n := 0
	it := m.Iterate()
	for it.Next(&key, &value) {
		n++
	}
	return n, it.Err()
}

func closeAll(ms map[string]*ebpf.Map) {
	for _, m := range ms {
		m.Close()
	}
}

// ensureBPFFS mounts the BPF filesystem at /sys/fs/bpf when nothing is
// mounted there; pinning needs it.
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o700); err != nil {
		return fmt.Errorf("create /sys/fs/bpf: %w", err)
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
		return privilegeError("mount the BPF filesystem at /sys/fs/bpf", err)
	}
	return nil
}

// privilegeError turns EPERM/EACCES into a message that says what is
// missing, so an operator does not have to guess.
func privilegeError(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s: permission denied: run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Attach attaches the filter to iface in native (driver) mode, falling
// back to generic mode when the driver lacks native XDP.
func (f *Filter) Attach(iface string) error {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("attach xdp to %s: %w", iface, err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
	mode := ModeNative
	if err != nil {
		nativeErr := err
		l, err = link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: ifc.Index, Flags: link.XDPGenericMode})
		if err != nil {
			return privilegeError("attach xdp to "+iface, errors.Join(nativeErr, err))
		}
		mode = ModeGeneric
		f.log.Warn("driver lacks native xdp, attached in generic mode: expect higher cost per packet",
			"iface", iface, "native_err", nativeErr)
	}
	f.link, f.iface, f.mode = l, iface, mode
	f.log.Info("xdp filter attached", "iface", iface, "mode", mode)
	return nil
}

// Mode is how the filter is attached: ModeNative, ModeGeneric or "".
func (f *Filter) Mode() string { return f.mode }

// Maps returns the typed accessors of the filter's maps.
func (f *Filter) Maps() *Maps { return f.maps }

// Program is the loaded XDP program (for BPF_PROG_TEST_RUN and benchmarks).
func (f *Filter) Program() *ebpf.Program { return f.prog }

// Configure applies a validated profile section: flags, limits, reflection
// ports, services and the profile's allowlist. Runtime state (blocklist,
// attack mode, rate buckets) is kept.
func (f *Filter) Configure(c Config) error { return f.maps.Configure(c) }

// Detach removes the filter from its interface; the program and maps stay
// loaded, so it can be attached again. Detaching a detached filter is a
// no-op.
func (f *Filter) Detach() error {
	if f.link == nil {
		return nil
	}
	err := f.link.Close()
	f.link = nil
	if err != nil {
		return fmt.Errorf("detach xdp from %s: %w", f.iface, err)
	}
	f.log.Info("xdp filter detached", "iface", f.iface)
	f.iface, f.mode = "", ""
	return nil
}

// Close detaches the filter and releases its descriptors. Pinned maps stay
// for the next start.
func (f *Filter) Close() error {
	err := f.Detach()
	f.coll.Close()
	if f.owner != nil {
		f.owner.Close() // releases the flock
		f.owner = nil
	}
	return err
}
