package baseline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
)

const (
	xdpDrop = 1
	xdpPass = 2
)

func TestPrograms(t *testing.T) {
	testnet.RequireRoot(t, "load BPF programs")
	syn := packets.MustBuild(packets.Spec{Src: packets.Addr("198.18.0.2"), Dst: packets.Addr("198.18.0.1"),
		Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})
	syn6 := packets.MustBuild(packets.Spec{Src: packets.Addr("2001:db8::2"), Dst: packets.Addr("2001:db8::1"),
		Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})
	vlan := packets.MustBuild(packets.Spec{VLANs: []uint16{100}, Src: packets.Addr("198.18.0.2"), Dst: packets.Addr("198.18.0.1"),
		Proto: packets.UDP, SrcPort: 40000, DstPort: 443, Payload: make([]byte, 32)})

	path, err := XDPFilterObject()
	if err != nil {
		t.Fatal(err)
	}
	xf, err := LoadXDPFilter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer xf.Close()
	drop, err := LoadDrop()
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	pass, err := LoadPass()
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()

	tests := []struct {
		name  string
		prog  *ebpf.Program
		frame []byte
		want  uint32
	}{
		{name: "drop", prog: drop, frame: syn, want: xdpDrop},
		{name: "pass", prog: pass, frame: syn, want: xdpPass},
		// Empty maps: xdp-filter in allow mode passes everything.
		{name: "xdp-filter-ipv4", prog: xf.Program(), frame: syn, want: xdpPass},
		{name: "xdp-filter-ipv6", prog: xf.Program(), frame: syn6, want: xdpPass},
		{name: "xdp-filter-vlan", prog: xf.Program(), frame: vlan, want: xdpPass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.prog.Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("action %d, want %d", got, tc.want)
			}
		})
	}
}

// TestXDPFilterLooksUp proves the loaded xdp-filter really consults its
// maps, so that its pass-path cost includes the lookups: listing the
// source address (flag MAP_FLAG_SRC = 1 in xdp-tools' common_kern_user.h)
// turns its verdict into a drop.
func TestXDPFilterLooksUp(t *testing.T) {
	testnet.RequireRoot(t, "load BPF programs")
	path, err := XDPFilterObject()
	if err != nil {
		t.Fatal(err)
	}
	xf, err := LoadXDPFilter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer xf.Close()
	m := xf.coll.Maps["filter_ipv4"]
	if m == nil {
		t.Fatal("no filter_ipv4 map")
	}
	flags := make([]uint64, ebpf.MustPossibleCPU())
	for i := range flags {
		flags[i] = 1
	}
	if err := m.Put([4]byte{198, 18, 0, 2}, flags); err != nil {
		t.Fatal(err)
	}
	syn := packets.MustBuild(packets.Spec{Src: packets.Addr("198.18.0.2"), Dst: packets.Addr("198.18.0.1"),
		Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})
	got, err := xf.Program().Run(&ebpf.RunOptions{Data: syn})
	if err != nil {
		t.Fatal(err)
	}
	if got != xdpDrop {
		t.Errorf("action %d for a listed source, want %d (drop)", got, xdpDrop)
	}
}

func TestLoadXDPFilterErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.o")
	if err := os.WriteFile(garbage, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{name: "missing", path: filepath.Join(dir, "none.o")},
		{name: "not-elf", path: garbage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if x, err := LoadXDPFilter(tc.path); err == nil {
				x.Close()
				t.Error("load succeeded")
			}
		})
	}
}
