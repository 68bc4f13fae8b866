//go:build linux

package xdp

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
)

// pinTestDir is a fresh folder on the BPF filesystem, removed (with every
// pin in it) when the test ends.
func pinTestDir(t *testing.T) string {
	t.Helper()
	testnet.RequireRoot(t, "pin BPF maps")
	var b [6]byte
	rand.Read(b[:])
	dir := filepath.Join("/sys/fs/bpf", "rampart-test-"+hex.EncodeToString(b[:]))
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
		os.Remove(ownerLockPath(dir)) // no filter holds it once the test ends
	})
	return dir
}

func loadPinned(t *testing.T, dir string, c Capacity) *Filter {
	t.Helper()
	f, err := Load(LoadOptions{PinDir: dir, Capacity: c})
	if err != nil {
		t.Fatalf("load pinned in %s: %v", dir, err)
	}
	return f
}

func run(t *testing.T, f *Filter, frame []byte, want Reason) {
	t.Helper()
	got, err := f.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("frame %x: %s, want %s", frame, got, want)
	}
}

func prefixes(t *testing.T, m *Maps, l List) []string {
	t.Helper()
	entries, err := m.Entries(l)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Prefix.String())
	}
	return out
}

func TestPinnedMapsSurviveRestart(t *testing.T) {
	dir := pinTestDir(t)
	c := testConfig()
	c.Fragments = "pass"
	extra := Service{Addrs: []netip.Addr{packets.Addr(unserved4)}, TCP: []uint16{8080}}

	f := loadPinned(t, dir, c.Capacity)
	if err := f.Configure(c); err != nil {
		t.Fatal(err)
	}
	m := f.Maps()
	for _, p := range []string{"203.0.113.0/24", "2001:db8:bad::/48"} {
		if err := m.Add(Blocklist, netip.MustParsePrefix(p), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Add(Blocklist, netip.MustParsePrefix("192.0.2.0/24"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.SetServices(append(c.Services, extra)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetAttack(packets.Addr(served4), true); err != nil {
		t.Fatal(err)
	}
	blocked := tcp(farClient4, served4, 80, "S")
	run(t, f, blocked, ReasonBlocklist)
	run(t, f, tcp(client4, unserved4, 8080, "S"), ReasonPass)
	wantBlock := prefixes(t, m, Blocklist)
	wantAllow := prefixes(t, m, Allowlist)
	wantSvcs, err := m.Services()
	if err != nil {
		t.Fatal(err)
	}
	wantSettings, err := m.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The restarted loader does not configure anything: all it enforces
	// comes from the pins.
	f = loadPinned(t, dir, c.Capacity)
	defer f.Close()
	m = f.Maps()
	if got := prefixes(t, m, Blocklist); !slices.Equal(got, wantBlock) || len(got) != 3 {
		t.Errorf("blocklist after restart: %v, want %v", got, wantBlock)
	}
	if got := prefixes(t, m, Allowlist); !slices.Equal(got, wantAllow) || len(got) != 2 {
		t.Errorf("allowlist after restart: %v, want %v", got, wantAllow)
	}
	entries, err := m.Entries(Blocklist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Prefix.String() == "203.0.113.0/24" {
			if left := time.Until(e.Expires); left < 59*time.Minute || left > 61*time.Minute {
				t.Errorf("%s expires in %s after restart, want about an hour", e.Prefix, left)
			}
		}
	}
	if got, err := m.Services(); err != nil || !slices.Equal(got, wantSvcs) {
		t.Errorf("services after restart: %v, %v; want %v", got, err, wantSvcs)
	}
	if got, err := m.Settings(); err != nil || got != wantSettings {
		t.Errorf("settings after restart: %+v, %v; want %+v", got, err, wantSettings)
	}
	if got, err := m.AttackAddrs(); err != nil || len(got) != 1 || got[0] != packets.Addr(served4) {
		t.Errorf("attack addresses after restart: %v, %v", got, err)
	}
	run(t, f, blocked, ReasonBlocklist)
	run(t, f, tcp("2001:db8:bad::1", served6, 443, "S"), ReasonBlocklist)
	run(t, f, tcp(blocked4, served4, 80, "S"), ReasonPass) // only the env helper blocks 198.18.6.0/24
	run(t, f, tcp(allowed4, unserved4, 25, ""), ReasonAllowlist)
	run(t, f, tcp(client4, unserved4, 8080, "S"), ReasonPass)
	run(t, f, tcp(client4, unserved4, 8081, "S"), ReasonNotServed)
	run(t, f, udp(client4, tcpOnly4, 53, 40000, 64), ReasonUDPReflection)

	// Counters are pinned too: one blocklist drop before the restart, two
	// after.
	stats, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats[ReasonBlocklist].Packets != 3 {
		t.Errorf("blocklist counter %d after restart, want 3", stats[ReasonBlocklist].Packets)
	}

	// A tool that opens the pins sees the same state, and its changes
	// reach the running filter.
	om, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	if got := prefixes(t, om, Blocklist); !slices.Equal(got, wantBlock) {
		t.Errorf("OpenPinned blocklist: %v, want %v", got, wantBlock)
	}
	if got, err := om.Services(); err != nil || !slices.Equal(got, wantSvcs) {
		t.Errorf("OpenPinned services: %v, %v", got, err)
	}
	if got, err := om.Settings(); err != nil || got != wantSettings {
		t.Errorf("OpenPinned settings: %+v, %v", got, err)
	}
	ostats, err := om.Stats()
	if err != nil || ostats[ReasonBlocklist] != stats[ReasonBlocklist] {
		t.Errorf("OpenPinned counters: %+v, %v; want %+v", ostats[ReasonBlocklist], err, stats[ReasonBlocklist])
	}
	if err := om.Delete(Blocklist, netip.MustParsePrefix("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := om.Add(Blocklist, netip.MustParsePrefix("198.18.1.0/24"), 0); err != nil {
		t.Fatal(err)
	}
	run(t, f, blocked, ReasonPass)
	run(t, f, tcp(client4, served4, 80, "S"), ReasonBlocklist)
}

func TestOpenPinnedWithoutState(t *testing.T) {
	dir := pinTestDir(t)
	if _, err := OpenPinned(dir); err == nil {
		t.Fatal("OpenPinned of a folder that does not exist succeeded")
	}
}

func TestPinnedMapResize(t *testing.T) {
	dir := pinTestDir(t)
	small := testConfig().Capacity
	small.BlockPrefixes = 64
	f := loadPinned(t, dir, small)
	var want []string
	for i := range 40 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
		if err := f.Maps().Add(Blocklist, p, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, p.String())
	}
	if err := f.Maps().Add(Blocklist, netip.MustParsePrefix("2001:db8:bad::/48"), 0); err != nil {
		t.Fatal(err)
	}
	want = append(want, "2001:db8:bad::/48")
	f.Close()

	big := small
	big.BlockPrefixes = 256
	f = loadPinned(t, dir, big)
	defer f.Close()
	for _, name := range []string{"block_v4", "block_v6"} {
		pinned, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pinned.MaxEntries() != 256 {
			t.Errorf("pinned %s holds %d entries after resize, want 256", name, pinned.MaxEntries())
		}
		pinned.Close()
	}
	if got := f.maps.blockV4.MaxEntries(); got != 256 {
		t.Errorf("filter uses a block_v4 of %d entries, want 256", got)
	}
	if got := prefixes(t, f.Maps(), Blocklist); !slices.Equal(got, want) {
		t.Errorf("after resize: %v\nwant %v", got, want)
	}
	run(t, f, tcp("10.39.1.1", served4, 80, "S"), ReasonBlocklist)
	run(t, f, tcp("2001:db8:bad::1", served6, 443, "S"), ReasonBlocklist)
	run(t, f, tcp("10.40.1.1", served4, 80, "S"), ReasonPass)
	// Room beyond the old capacity.
	for i := range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i), 0, 0}), 16)
		if err := f.Maps().Add(Blocklist, p, 0); err != nil {
			t.Fatalf("add entry %d of the bigger list: %v", 41+i, err)
		}
	}
	run(t, f, tcp("11.99.0.1", served4, 80, "S"), ReasonBlocklist)
	f.Close()

	// Shrinking below what a list holds would silently unblock prefixes:
	// the start is refused, and the pinned list is left whole.
	shrunk := small
	shrunk.BlockPrefixes = 16
	if _, err := Load(LoadOptions{PinDir: dir, Capacity: shrunk}); err == nil || !strings.Contains(err.Error(), "holds 140") {
		t.Fatalf("shrinking block_v4 below its 140 entries: error %v, want a refusal naming the count", err)
	}
	// Shrinking to what still fits works.
	shrunk.BlockPrefixes = 160
	f = loadPinned(t, dir, shrunk)
	defer f.Close()
	if n := len(prefixes(t, f.Maps(), Blocklist)); n != 141 {
		t.Errorf("after shrinking to 160: %d entries, want 141", n)
	}
}
