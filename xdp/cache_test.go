package xdp

import (
	"math/bits"
	"net/netip"
	"testing"
)

// TestSharedCacheSlotDoesNotBypassLimits alternates two sources that map
// to one slot of the per-CPU source cache: each eviction must still charge
// the evicted source's bucket.
func TestSharedCacheSlotDoesNotBypassLimits(t *testing.T) {
	c := testConfig()
	c.RateLimit.Normal = Limits{PacketsPerSecond: 1e6, PacketBurst: 1e6, SYNsPerSecond: 100, SYNBurst: 5}
	c.RateLimit.Attack = Limits{PacketsPerSecond: 1e5, PacketBurst: 1e5, SYNsPerSecond: 10, SYNBurst: 1}
	e := newEnv(t, c)
	a, b := collidingSources(t, c.Capacity.SourceCacheSlots)
	passed := 0
	for i := range 400 {
		src := a
		if i%2 == 1 {
			src = b
		}
		r, err := e.f.Run(tcp(src.String(), served4, 80, "S"))
		if err != nil {
			t.Fatal(err)
		}
		if r == ReasonPass {
			passed++
		}
	}
	// Each source: its burst of 5, plus what 100/s refills while the test
	// runs (well under a second).
	if passed > 2*(5+100) {
		t.Fatalf("%d of 400 SYNs passed from two sources sharing a cache slot", passed)
	}
}

// collidingSources finds two IPv4 sources with the same source-cache slot.
func collidingSources(t *testing.T, slots uint32) (netip.Addr, netip.Addr) {
	shift := 32 - bits.TrailingZeros32(slots)
	seen := map[uint32]netip.Addr{}
	for i := range uint32(1 << 20) {
		a := netip.AddrFrom4([4]byte{198, 18, byte(100 + i>>16), byte(i >> 8)})
		a = netip.AddrFrom4([4]byte{a.As4()[0], a.As4()[1], a.As4()[2], byte(i)})
		slot := addrHash(a.As16()) >> shift
		if other, ok := seen[slot]; ok && other != a {
			return other, a
		}
		seen[slot] = a
	}
	t.Fatal("no colliding sources found")
	return netip.Addr{}, netip.Addr{}
}

// TestInconsistentSettingsFailClosed: settings that index past the source
// cache (state written for another map size) drop instead of passing.
func TestInconsistentSettingsFailClosed(t *testing.T) {
	e := newEnv(t, testConfig())
	m := e.f.Maps()
	unlock, err := m.lock()
	if err != nil {
		t.Fatal(err)
	}
	err = m.updateSettings(func(s *filterSettings) { s.SourceBits = 24 })
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	var hit bool
	for i := range 64 {
		r, err := e.f.Run(tcp(netip.AddrFrom4([4]byte{198, 18, 9, byte(i)}).String(), served4, 80, "S"))
		if err != nil {
			t.Fatal(err)
		}
		if r == ReasonPass {
			t.Fatalf("a frame passed with settings that do not fit the source cache")
		}
		hit = hit || r == ReasonInternal
	}
	if !hit {
		t.Fatal("no frame was counted as internal")
	}
}
