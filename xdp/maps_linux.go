package xdp

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Maps gives typed access to the filter's maps, from the daemon that loaded
// them or from any process that opened their pins (rampartctl). Writers of
// the lists and services serialise through an flock on the pin folder, so
// the derived maps (source hints, served addresses) stay consistent with
// their sources across processes. Safe for concurrent use.
type Maps struct {
	config, stats, hints                 *ebpf.Map
	allowV4, allowV6, blockV4, blockV6   *ebpf.Map
	services, served, attack, reflection *ebpf.Map
	rate, samples                        *ebpf.Map
	serviceTable, sourceCache            *ebpf.Map
	clk                                  clock
	pinDir                               string
	mu                                   sync.Mutex // in-process writers; flock covers the rest
	owned                                []*ebpf.Map
}

func mapsFromCollection(c *ebpf.Collection, pinDir string) (*Maps, error) {
	get := func(name string) *ebpf.Map { return c.Maps[name] }
	m := &Maps{
		config: get("config"), stats: get("stats"), hints: get("source_hints"),
		allowV4: get("allow_v4"), allowV6: get("allow_v6"),
		blockV4: get("block_v4"), blockV6: get("block_v6"),
		services: get("services"), served: get("served_addrs"), attack: get("attack_addrs"),
		reflection: get("reflection_ports"), rate: get("rate_limits"), samples: get("samples"),
		serviceTable: get("service_table"), sourceCache: get("source_cache"),
		pinDir: pinDir,
	}
	return m, m.check()
}

// check requires every pinned map; the source cache is per-CPU scratch of
// the loading process and is never pinned.
func (m *Maps) check() error {
	for _, mp := range []*ebpf.Map{m.config, m.stats, m.hints, m.allowV4, m.allowV6, m.blockV4, m.blockV6,
		m.services, m.served, m.attack, m.reflection, m.rate, m.samples, m.serviceTable} {
		if mp == nil {
			return errors.New("filter object lacks a map: rebuild with go generate")
		}
	}
	return nil
}

// OpenPinned opens the maps a running (or stopped) filter pinned in dir.
func OpenPinned(dir string) (*Maps, error) {
	m := &Maps{pinDir: dir}
	open := func(name string) *ebpf.Map {
		mp, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			return nil
		}
		m.owned = append(m.owned, mp)
		return mp
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no filter state at %s: has rampart run on that interface since boot?", dir)
		}
		return nil, privilegeError("open "+dir, err)
	}
	m.config, m.stats, m.hints = open("config"), open("stats"), open("source_hints")
	m.allowV4, m.allowV6, m.blockV4, m.blockV6 = open("allow_v4"), open("allow_v6"), open("block_v4"), open("block_v6")
	m.services, m.served, m.attack = open("services"), open("served_addrs"), open("attack_addrs")
	m.reflection, m.rate, m.samples = open("reflection_ports"), open("rate_limits"), open("samples")
	m.serviceTable = open("service_table")
	if err := m.check(); err != nil {
		m.Close()
		if os.Geteuid() != 0 {
			return nil, privilegeError("open pinned maps in "+dir, unix.EPERM)
		}
		return nil, fmt.Errorf("pinned maps in %s are incomplete: %w", dir, err)
	}
	if err := m.loadClock(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// loadClock reads the clock calibration the loading daemon stored.
func (m *Maps) loadClock() error {
	s, err := m.readSettings()
	if err != nil {
		return err
	}
	if s.Hz == 0 {
		return fmt.Errorf("filter state in %s was never configured (no clock calibration)", m.pinDir)
	}
	m.clk = clock{hz: uint64(s.Hz), jiffies: s.ClockJiffies, monoNs: s.ClockMonoNs}
	return nil
}

// readSettings reads the one settings entry.
func (m *Maps) readSettings() (filterSettings, error) {
	var s filterSettings
	if err := m.config.Lookup(uint32(0), &s); err != nil {
		return s, fmt.Errorf("read filter settings: %w", err)
	}
	return s, nil
}

// updateSettings rewrites the settings entry through fn; callers hold the lock.
func (m *Maps) updateSettings(fn func(*filterSettings)) error {
	s, err := m.readSettings()
	if err != nil {
		return err
	}
	fn(&s)
	if err := m.config.Put(uint32(0), s); err != nil {
		return fmt.Errorf("write filter settings: %w", err)
	}
	return nil
}

// bumpListsGen invalidates every CPU's cached list verdicts.
func (m *Maps) bumpListsGen() error {
	return m.updateSettings(func(s *filterSettings) { s.ListsGen++ })
}

// Close releases maps opened by OpenPinned. Maps of a Filter close with it.
func (m *Maps) Close() error {
	for _, mp := range m.owned {
		mp.Close()
	}
	m.owned = nil
	return nil
}

// lock serialises writers in this process and, when pinned, across
// processes.
func (m *Maps) lock() (unlock func(), err error) {
	m.mu.Lock()
	if m.pinDir == "" {
		return m.mu.Unlock, nil
	}
	fd, err := unix.Open(m.pinDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", m.pinDir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		m.mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", m.pinDir, err)
	}
	return func() {
		unix.Flock(fd, unix.LOCK_UN)
		unix.Close(fd)
		m.mu.Unlock()
	}, nil
}

// monotonicNow is CLOCK_MONOTONIC, which the clock calibration relates to
// the jiffies the filter compares expiry times with.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// monoWall converts a CLOCK_MONOTONIC timestamp to wall time.
func monoWall(mono uint64) time.Time {
	return time.Now().Add(-time.Duration(int64(monotonicNow()) - int64(mono)))
}

// wallTime converts a jiffies timestamp of the filter to wall time.
func (m *Maps) wallTime(j uint64) time.Time {
	if j == 0 {
		return time.Time{}
	}
	return monoWall(m.clk.monoAt(j))
}

// Configure writes the profile's filter settings.
func (m *Maps) Configure(c Config) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := m.readSettings()
	if err != nil {
		return err
	}
	s := filterSettings{
		SampleEvery:   c.SampleEvery,
		AttackEntries: cur.AttackEntries,
		ListsGen:      cur.ListsGen + 1,
		RateBatch:     max(c.RateLimit.Batch, 1),
		SourceBits:    cur.SourceBits,
		ServiceBits:   cur.ServiceBits, // the table rebuild below owns it
		ServiceHalf:   cur.ServiceHalf,
		ServiceSpill:  cur.ServiceSpill,
		Hz:            uint32(m.clk.hz),
		ClockJiffies:  m.clk.jiffies,
		ClockMonoNs:   m.clk.monoNs,
		// Pending counts reach rate_limits at least every 100 ms, so
		// that dumps of it stay fresh.
		FlushIntervalT: m.clk.ticksPerSecond() / 10,
	}
	if m.sourceCache != nil { // only the loading process has it
		s.SourceBits = uint32(bits.TrailingZeros32(m.sourceCache.MaxEntries()))
	}
	if c.FilterServices {
		s.Flags |= filterConfigFlagCONFIG_FILTER_SERVICES
	}
	if c.Fragments == "drop" {
		s.Flags |= filterConfigFlagCONFIG_DROP_FRAGMENTS
	}
	if c.AllowICMP {
		s.Flags |= filterConfigFlagCONFIG_ALLOW_ICMP
	}
	if c.RateLimit.Enabled {
		s.Flags |= filterConfigFlagCONFIG_RATE_LIMIT
	}
	s.Normal = c.RateLimit.Normal.compile(m.clk)
	s.Attack = c.RateLimit.Attack.compile(m.clk)
	// Settings first: the table rebuild below flips service_half in them.
	if err := m.config.Put(uint32(0), s); err != nil {
		return fmt.Errorf("write filter settings: %w", err)
	}

	var bits [hintSlotsPerFamily / 64]uint64
	for _, p := range c.ReflectionPorts {
		bits[p/64] |= 1 << (p % 64)
	}
	for i, b := range bits {
		if err := m.reflection.Put(uint32(i), b); err != nil {
			return fmt.Errorf("write reflection ports: %w", err)
		}
	}
	if err := m.setServicesLocked(c.Services); err != nil {
		return err
	}
	if err := m.setProfileAllowLocked(c.Allow); err != nil {
		return err
	}
	return m.bumpListsGen()
}

// setProfileAllowLocked makes the profile-owned allowlist entries exactly
// want: entries a previous profile listed and this one does not are
// removed (rampartctl's own entries stay), and a prefix both list is
// owned by the profile, without expiry.
func (m *Maps) setProfileAllowLocked(want []netip.Prefix) error {
	keep := map[netip.Prefix]bool{}
	for _, p := range want {
		cp, err := canonical(p)
		if err != nil {
			return err
		}
		keep[cp] = true
	}
	entries, err := m.Entries(Allowlist)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		if e.FromProfile && !keep[e.Prefix] {
			if err := m.trie(Allowlist, e.Prefix).Delete(lpmKey(e.Prefix)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("remove %s, no longer in the profile, from the allowlist: %w", e.Prefix, err)
			}
			removed = true
		}
	}
	for p := range keep {
		if err := m.addLocked(Allowlist, p, 0, filterPrefixFlagPREFIX_FROM_PROFILE); err != nil {
			return err
		}
	}
	if removed {
		if err := m.bumpListsGen(); err != nil {
			return err
		}
		return m.rebuildHintsLocked()
	}
	return nil
}

// compile turns rates into the GCRA intervals and depths the filter uses,
// in ticks of its clock.
func (l Limits) compile(c clock) filterLimits {
	var out filterLimits
	tps := c.ticksPerSecond()
	if l.PacketsPerSecond > 0 {
		out.PacketIntervalT = max(tps/l.PacketsPerSecond, 1)
		out.PacketDepthT = out.PacketIntervalT * l.PacketBurst
	}
	if l.BytesPerSecond > 0 {
		out.ByteIntervalT_q20 = max(scaleMulDiv(tps, 1<<20, l.BytesPerSecond), 1)
		out.ByteDepthT = scaleMulDiv(l.ByteBurst, tps, l.BytesPerSecond)
	}
	if l.SYNsPerSecond > 0 {
		out.SynIntervalT = max(tps/l.SYNsPerSecond, 1)
		out.SynDepthT = out.SynIntervalT * l.SYNBurst
	}
	return out
}

// Counter is packets and bytes seen under one reason, summed over CPUs.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// Stats returns the counters of every reason, indexed by Reason, summed
// over CPUs, read in one batch syscall.
func (m *Maps) Stats() ([]Counter, error) {
	keys := make([]uint32, reasonCount)
	cpus := ebpf.MustPossibleCPU()
	values := make([]filterCounter, reasonCount*cpus)
	var cursor ebpf.MapBatchCursor
	n, err := m.stats.BatchLookup(&cursor, keys, values, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := make([]Counter, reasonCount)
	for i := range n {
		for c := range cpus {
			v := values[i*cpus+c]
			out[keys[i]].Packets += v.Packets
			out[keys[i]].Bytes += v.Bytes
		}
	}
	return out, nil
}

// List selects the allowlist or the blocklist.
type List int

const (
	Allowlist List = iota
	Blocklist
)

func (l List) String() string {
	if l == Allowlist {
		return "allowlist"
	}
	return "blocklist"
}

func (l List) flag() uint32 {
	if l == Allowlist {
		return uint32(filterHintFlagHINT_ALLOW)
	}
	return uint32(filterHintFlagHINT_BLOCK)
}

func (m *Maps) tries(l List) (v4, v6 *ebpf.Map) {
	if l == Allowlist {
		return m.allowV4, m.allowV6
	}
	return m.blockV4, m.blockV6
}

// ListEntry is one prefix of a list. A zero Expires never expires.
// FromProfile entries belong to the profile's allow list: a reload that no
// longer lists them removes them.
type ListEntry struct {
	Prefix      netip.Prefix
	Added       time.Time
	Expires     time.Time
	FromProfile bool
}

// canonical masks the prefix and turns IPv4-mapped IPv6 into IPv4, so
// that a prefix has one key however it was written.
func canonical(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %s", p)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %s mixes IPv4-mapped and IPv6 space", p)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func lpmKey(p netip.Prefix) any {
	if p.Addr().Is4() {
		return filterLpmV4Key{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As4()}
	}
	return filterLpmV6Key{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()}
}

// Add puts a prefix on a list; ttl 0 never expires. Adding a listed prefix
// again replaces its expiry.
func (m *Maps) Add(l List, p netip.Prefix, ttl time.Duration) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.addLocked(l, p, ttl, 0); err != nil {
		return err
	}
	return m.bumpListsGen()
}

func (m *Maps) addLocked(l List, p netip.Prefix, ttl time.Duration, flags filterPrefixFlag) error {
	p, err := canonical(p)
	if err != nil {
		return err
	}
	now := monotonicNow()
	e := filterPrefixEntry{AddedJ: m.clk.jiffiesAt(now), Flags: uint32(flags)}
	if ttl > 0 {
		// Rounded up: an entry never expires before its TTL.
		e.ExpiresJ = m.clk.jiffiesAt(now+uint64(ttl)) + 1
	}
	// Hint first: the filter must never find a prefix behind a clear slot.
	var hintErr error
	hintSlotsOf(p, func(slot uint32) {
		if hintErr == nil {
			hintErr = m.orHint(slot, l.flag())
		}
	})
	if hintErr != nil {
		return fmt.Errorf("set source hint: %w", hintErr)
	}
	trie := m.trie(l, p)
	if err := trie.Put(lpmKey(p), e); err != nil {
		if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("add %s to %s: list is full (%d entries): raise capacity in the profile", p, l, trie.MaxEntries())
		}
		return fmt.Errorf("add %s to %s: %w", p, l, err)
	}
	return nil
}

// trie is the LPM trie of list l for p's family.
func (m *Maps) trie(l List, p netip.Prefix) *ebpf.Map {
	v4, v6 := m.tries(l)
	if p.Addr().Is4() {
		return v4
	}
	return v6
}

func (m *Maps) orHint(slot, flag uint32) error {
	var v uint32
	if err := m.hints.Lookup(slot, &v); err != nil {
		return err
	}
	if v&flag == flag {
		return nil
	}
	return m.hints.Put(slot, v|flag)
}

// Delete removes a prefix from a list; ErrNotListed when it is not there.
func (m *Maps) Delete(l List, p netip.Prefix) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	p, err = canonical(p)
	if err != nil {
		return err
	}
	if err := m.trie(l, p).Delete(lpmKey(p)); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete %s from %s: %w", p, l, ErrNotListed)
		}
		return fmt.Errorf("delete %s from %s: %w", p, l, err)
	}
	if err := m.bumpListsGen(); err != nil {
		return err
	}
	return m.rebuildHintsLocked()
}

// Entries lists a list's prefixes, expired ones included until swept.
func (m *Maps) Entries(l List) ([]ListEntry, error) {
	v4, v6 := m.tries(l)
	var out []ListEntry
	var e filterPrefixEntry
	var k4 filterLpmV4Key
	it := v4.Iterate()
	for it.Next(&k4, &e) {
		out = append(out, ListEntry{Prefix: netip.PrefixFrom(netip.AddrFrom4(k4.Addr), int(k4.Prefixlen)),
			Added: m.wallTime(e.AddedJ), Expires: m.wallTime(e.ExpiresJ), FromProfile: e.Flags&uint32(filterPrefixFlagPREFIX_FROM_PROFILE) != 0})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", l, err)
	}
	var k6 filterLpmV6Key
	it = v6.Iterate()
	for it.Next(&k6, &e) {
		out = append(out, ListEntry{Prefix: netip.PrefixFrom(netip.AddrFrom16(k6.Addr), int(k6.Prefixlen)),
			Added: m.wallTime(e.AddedJ), Expires: m.wallTime(e.ExpiresJ), FromProfile: e.Flags&uint32(filterPrefixFlagPREFIX_FROM_PROFILE) != 0})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", l, err)
	}
	slices.SortFunc(out, func(a, b ListEntry) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out, nil
}

// Sweep removes expired prefixes from both lists and rebuilds the source
// hints from what remains. It returns how many prefixes it removed.
func (m *Maps) Sweep() (int, error) {
	unlock, err := m.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	now := m.clk.jiffiesAt(monotonicNow())
	removed := 0
	for _, trie := range []*ebpf.Map{m.allowV4, m.allowV6, m.blockV4, m.blockV6} {
		var key []byte
		var e filterPrefixEntry
		var expired [][]byte
		it := trie.Iterate()
		for it.Next(&key, &e) {
			if e.ExpiresJ != 0 && e.ExpiresJ <= now {
				expired = append(expired, slices.Clone(key))
			}
		}
		if err := it.Err(); err != nil {
			return removed, fmt.Errorf("sweep: %w", err)
		}
		for _, k := range expired {
			if err := trie.Delete(k); err == nil {
				removed++
			}
		}
	}
	if removed == 0 {
		return 0, nil
	}
	if err := m.bumpListsGen(); err != nil {
		return removed, err
	}
	return removed, m.rebuildHintsLocked()
}

// rebuildHintsLocked recomputes every slot from the tries. Slots are only
// ever cleared here, after the prefixes behind them left the tries.
func (m *Maps) rebuildHintsLocked() error {
	want := make([]uint32, 2*hintSlotsPerFamily)
	for _, l := range []List{Allowlist, Blocklist} {
		entries, err := m.Entries(l)
		if err != nil {
			return err
		}
		for _, e := range entries {
			hintSlotsOf(e.Prefix, func(slot uint32) { want[slot] |= l.flag() })
		}
	}
	keys := make([]uint32, len(want))
	for i := range keys {
		keys[i] = uint32(i)
	}
	cur := make([]uint32, len(want))
	var cursor ebpf.MapBatchCursor
	if _, err := m.hints.BatchLookup(&cursor, keys, cur, nil); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("read source hints: %w", err)
	}
	for i := range want {
		if want[i] != cur[i] {
			if err := m.hints.Put(uint32(i), want[i]); err != nil {
				return fmt.Errorf("write source hint: %w", err)
			}
		}
	}
	return nil
}

// ServiceEntry is one served (address, protocol, port).
type ServiceEntry struct {
	Addr  netip.Addr
	Proto uint8 // unix.IPPROTO_TCP or unix.IPPROTO_UDP
	Port  uint16
}

func addrKey(a netip.Addr) filterAddrKey {
	return filterAddrKey{Addr: a.Unmap().As16()}
}

func addrFromKey(b [16]byte) netip.Addr { return netip.AddrFrom16(b).Unmap() }

func serviceKey(s ServiceEntry) filterServiceKey {
	return filterServiceKey{Addr: addrKey(s.Addr).Addr, Port: htons(s.Port), Proto: s.Proto}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// expand lists every (address, protocol, port) of a profile's services.
func expand(svcs []Service) []ServiceEntry {
	var out []ServiceEntry
	for _, s := range svcs {
		for _, a := range s.Addrs {
			for _, p := range s.TCP {
				out = append(out, ServiceEntry{Addr: a.Unmap(), Proto: unix.IPPROTO_TCP, Port: p})
			}
			for _, p := range s.UDP {
				out = append(out, ServiceEntry{Addr: a.Unmap(), Proto: unix.IPPROTO_UDP, Port: p})
			}
		}
	}
	return out
}

// SetServices makes the served set exactly svcs.
func (m *Maps) SetServices(svcs []Service) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.setServicesLocked(svcs)
}

func (m *Maps) setServicesLocked(svcs []Service) error {
	want := map[filterServiceKey]bool{}
	for _, s := range expand(svcs) {
		want[serviceKey(s)] = true
	}
	have, err := m.serviceKeys()
	if err != nil {
		return err
	}
	for _, k := range have {
		if !want[k] {
			if err := m.services.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("delete service: %w", err)
			}
		}
	}
	for k := range want {
		if err := m.services.Put(k, filterServiceValue{}); err != nil {
			if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("services exceed capacity (%d): raise capacity.services", m.services.MaxEntries())
			}
			return fmt.Errorf("add service: %w", err)
		}
	}
	if err := m.rebuildServedLocked(); err != nil {
		return err
	}
	return m.rebuildServiceTableLocked()
}

func (m *Maps) serviceKeys() ([]filterServiceKey, error) {
	var out []filterServiceKey
	var k filterServiceKey
	var v filterServiceValue
	it := m.services.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return out, nil
}

// rebuildServedLocked derives the served-address flags from the services.
func (m *Maps) rebuildServedLocked() error {
	keys, err := m.serviceKeys()
	if err != nil {
		return err
	}
	want := map[filterAddrKey]filterServedFlag{}
	for _, k := range keys {
		ak := filterAddrKey{Addr: k.Addr}
		switch k.Proto {
		case unix.IPPROTO_TCP:
			want[ak] |= filterServedFlagSERVED_TCP
		case unix.IPPROTO_UDP:
			want[ak] |= filterServedFlagSERVED_UDP
		default:
			if _, ok := want[ak]; !ok {
				want[ak] = 0
			}
		}
	}
	var ak filterAddrKey
	var sv filterServedAddr
	var stale []filterAddrKey
	it := m.served.Iterate()
	for it.Next(&ak, &sv) {
		if _, ok := want[ak]; !ok {
			stale = append(stale, ak)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read served addresses: %w", err)
	}
	for k, f := range want {
		if err := m.served.Put(k, filterServedAddr{Flags: f}); err != nil {
			return fmt.Errorf("write served address: %w", err)
		}
	}
	for _, k := range stale {
		_ = m.served.Delete(k)
	}
	return nil
}

// Services lists the served (address, protocol, port) entries.
func (m *Maps) Services() ([]ServiceEntry, error) {
	keys, err := m.serviceKeys()
	if err != nil {
		return nil, err
	}
	out := make([]ServiceEntry, 0, len(keys))
	for _, k := range keys {
		out = append(out, ServiceEntry{Addr: addrFromKey(k.Addr), Proto: k.Proto, Port: htons(k.Port)})
	}
	slices.SortFunc(out, func(a, b ServiceEntry) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		return int(a.Port) - int(b.Port)
	})
	return out, nil
}

// SetAttack switches a destination address into or out of attack mode,
// where the stricter attack limits apply to traffic toward it.
func (m *Maps) SetAttack(a netip.Addr, on bool) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	k := addrKey(a)
	if on {
		err = m.attack.Update(k, filterAttackEntry{SinceNs: monotonicNow()}, ebpf.UpdateNoExist)
		if errors.Is(err, ebpf.ErrKeyExist) {
			err = nil
		}
	} else {
		err = m.attack.Delete(k)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("set attack mode for %s: %w", a, err)
	}
	addrs, err := m.AttackAddrs()
	if err != nil {
		return err
	}
	if err := m.updateSettings(func(s *filterSettings) { s.AttackEntries = uint32(len(addrs)) }); err != nil {
		return err
	}
	return m.rebuildServiceTableLocked()
}

// AttackAddrs lists the destination addresses in attack mode.
func (m *Maps) AttackAddrs() ([]netip.Addr, error) {
	var out []netip.Addr
	var k filterAddrKey
	var v filterAttackEntry
	it := m.attack.Iterate()
	for it.Next(&k, &v) {
		out = append(out, addrFromKey(k.Addr))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read attack addresses: %w", err)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// RateSource is one source's rate-limit state (IPv6 sources by /64).
type RateSource struct {
	Prefix   netip.Prefix
	LastSeen time.Time
	Packets  uint64
	Bytes    uint64
	Dropped  uint64
}

// RateSources calls fn for each tracked source until fn returns false.
// Weakly consistent: the filter keeps updating while it runs.
func (m *Maps) RateSources(fn func(RateSource) bool) error {
	var k filterAddrKey
	var v filterRateState
	it := m.rate.Iterate()
	for it.Next(&k, &v) {
		a := addrFromKey(k.Addr)
		bits := 32
		if a.Is6() {
			bits = 64
		}
		if !fn(RateSource{Prefix: netip.PrefixFrom(a, bits), LastSeen: m.wallTime(v.LastSeenJ),
			Packets: v.Packets, Bytes: v.Bytes, Dropped: v.Dropped}) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read rate sources: %w", err)
	}
	return nil
}

// ResetRateState forgets every source's buckets and every CPU's cached
// sources (tests and benchmarks).
func (m *Maps) ResetRateState() error {
	var k filterAddrKey
	var keys []filterAddrKey
	var v filterRateState
	it := m.rate.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read rate sources: %w", err)
	}
	for _, k := range keys {
		_ = m.rate.Delete(k)
	}
	if m.sourceCache == nil {
		return nil // opened from pins: the loader's caches are its own
	}
	n := m.sourceCache.MaxEntries()
	idx := make([]uint32, n)
	for i := range idx {
		idx[i] = uint32(i)
	}
	zero := make([]filterSourceSlot, int(n)*ebpf.MustPossibleCPU())
	if _, err := m.sourceCache.BatchUpdate(idx, zero, nil); err != nil {
		return fmt.Errorf("clear source cache: %w", err)
	}
	return nil
}

// Settings is the filter's current configuration as the kernel sees it.
type Settings struct {
	FilterServices, DropFragments, RateLimit, AllowICMP bool
	SampleEvery, AttackEntries                          uint32
}

// Settings reads back the active settings.
func (m *Maps) Settings() (Settings, error) {
	s, err := m.readSettings()
	if err != nil {
		return Settings{}, err
	}
	return Settings{
		FilterServices: s.Flags&filterConfigFlagCONFIG_FILTER_SERVICES != 0,
		DropFragments:  s.Flags&filterConfigFlagCONFIG_DROP_FRAGMENTS != 0,
		RateLimit:      s.Flags&filterConfigFlagCONFIG_RATE_LIMIT != 0,
		AllowICMP:      s.Flags&filterConfigFlagCONFIG_ALLOW_ICMP != 0,
		SampleEvery:    s.SampleEvery,
		AttackEntries:  s.AttackEntries,
	}, nil
}
