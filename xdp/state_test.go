package xdp

import (
	"errors"
	"net/netip"
	"testing"
)

// TestOnePinOwner: a second loader on the same pin folder is refused while
// the first runs, and admitted once it closed.
func TestOnePinOwner(t *testing.T) {
	dir := pinTestDir(t)
	c := testConfig().Capacity
	first := loadPinned(t, dir, c)
	if _, err := Load(LoadOptions{PinDir: dir, Capacity: c}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second loader: %v, want ErrBusy", err)
	}
	first.Close()
	second := loadPinned(t, dir, c)
	second.Close()
}

// TestProfileAllowlistFollowsTheProfile: a reload drops what the profile no
// longer allows, keeps what rampartctl added.
func TestProfileAllowlistFollowsTheProfile(t *testing.T) {
	e := newEnv(t, testConfig())
	m := e.f.Maps()
	runtime := netip.MustParsePrefix("198.18.77.0/24")
	if err := m.Add(Allowlist, runtime, 0); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.Allow = []netip.Prefix{netip.MustParsePrefix("198.18.66.0/24")} // 198.18.5.0/24 is gone
	if err := e.f.Configure(c); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	entries, err := m.Entries(Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		got[en.Prefix.String()] = en.FromProfile
	}
	if _, ok := got["198.18.5.0/24"]; ok {
		t.Errorf("a prefix the profile dropped is still allowed: %v", got)
	}
	if fromProfile, ok := got["198.18.66.0/24"]; !ok || !fromProfile {
		t.Errorf("the profile's new prefix is missing or not marked: %v", got)
	}
	if fromProfile, ok := got[runtime.String()]; !ok || fromProfile {
		t.Errorf("rampartctl's prefix was removed or taken over: %v", got)
	}
	if r, err := e.f.Run(tcp("198.18.5.9", served4, 80, "")); err != nil || r != ReasonTCPFlags {
		t.Errorf("source of the dropped prefix: %s %v, want tcp_flags (no longer allowlisted)", r, err)
	}
	// Put the shared filter back the way the other tests expect it.
	e.reset(t, testConfig())
}
