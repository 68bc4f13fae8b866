package baseline

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// LoadDrop loads the bare XDP_DROP program.
func LoadDrop() (*ebpf.Program, error) {
	var objs dropprogObjects
	if err := load(loadDropprogObjects, &objs); err != nil {
		return nil, fmt.Errorf("load bare xdp drop program: %w", err)
	}
	return objs.BaselineDrop, nil
}

// LoadPass loads the bare XDP_PASS program.
func LoadPass() (*ebpf.Program, error) {
	var objs passprogObjects
	if err := load(loadPassprogObjects, &objs); err != nil {
		return nil, fmt.Errorf("load bare xdp pass program: %w", err)
	}
	return objs.BaselinePass, nil
}

func load(fn func(any, *ebpf.CollectionOptions) error, objs any) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise the memlock limit: %w", err)
	}
	return fn(objs, nil)
}

// XDPFilterObjectName is the xdp-filter variant measured: default policy
// allow (it drops only what its maps list) with every feature compiled in
// (Ethernet, IPv4, IPv6, TCP and UDP ports), the one `xdp-filter load`
// picks when no feature is narrowed down.
const XDPFilterObjectName = "xdpfilt_alw_all.o"

// XDPFilterObject finds xdp-tools' xdp-filter object the way libxdp does:
// $LIBXDP_OBJECT_PATH first, then the multiarch bpf folder Debian installs
// it in (/usr/lib/<triplet>/bpf), then any /usr/lib/*/bpf and /usr/lib/bpf.
func XDPFilterObject() (string, error) {
	var dirs []string
	if d := os.Getenv("LIBXDP_OBJECT_PATH"); d != "" {
		dirs = append(dirs, filepath.SplitList(d)...)
	}
	if out, err := exec.Command("gcc", "-print-multiarch").Output(); err == nil {
		if triplet := strings.TrimSpace(string(out)); triplet != "" {
			dirs = append(dirs, filepath.Join("/usr/lib", triplet, "bpf"))
		}
	}
	globbed, _ := filepath.Glob("/usr/lib/*/bpf")
	dirs = append(dirs, globbed...)
	dirs = append(dirs, "/usr/lib/bpf", "/usr/local/lib/bpf", "/usr/local/lib/x86_64-linux-gnu/bpf")
	for _, d := range dirs {
		p := filepath.Join(d, XDPFilterObjectName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("xdp-tools' %s not found in %s: install xdp-tools (apt-get install xdp-tools) or set LIBXDP_OBJECT_PATH",
		XDPFilterObjectName, strings.Join(dirs, ", "))
}

// XDPFilter is xdp-tools' xdp-filter program with its maps.
type XDPFilter struct {
	coll *ebpf.Collection
	prog *ebpf.Program
}

// Program is the XDP program, for BPF_PROG_TEST_RUN.
func (x *XDPFilter) Program() *ebpf.Program { return x.prog }

// Close releases the program and its maps.
func (x *XDPFilter) Close() error {
	x.coll.Close()
	return nil
}

// LoadXDPFilter loads xdp-filter from the object at path with empty maps,
// so every packet takes its full pass path: parse Ethernet, VLANs, IP and
// L4, then look up both ports, both addresses and both MACs, and count.
//
// The object is written for libxdp: its maps are pinned by name (xdp-filter
// shares them between the loader and its `port`/`ip` subcommands) and it
// carries libxdp metadata sections ("features", ".xdp_run_config") that
// only the dispatcher reads. cilium/ebpf skips sections it does not know,
// and private, unpinned maps are what a benchmark wants, so pinning is
// turned off before load.
func LoadXDPFilter(path string) (*XDPFilter, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the memlock limit: %w", err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("read xdp-filter object %s: %w", path, err)
	}
	var name string
	for n, p := range spec.Programs {
		if p.Type == ebpf.XDP {
			if name != "" {
				return nil, fmt.Errorf("xdp-filter object %s has more than one xdp program (%s, %s)", path, name, n)
			}
			name = n
		}
	}
	if name == "" {
		return nil, fmt.Errorf("xdp-filter object %s has no xdp program", path)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load xdp-filter %s: verifier: %+v", path, ve)
		}
		return nil, fmt.Errorf("load xdp-filter %s: %w", path, err)
	}
	return &XDPFilter{coll: coll, prog: coll.Programs[name]}, nil
}
