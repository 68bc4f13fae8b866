package bench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// The addresses the XDP benchmark's packets use. The legitimate sources sit
// in 198.18.0.0/16 (v4) and 2001:db8::/32 (v6), which no generated blocked
// prefix touches, so their source-hint slots are clear: the common case of
// a source with no listed prefix anywhere near it. hintedSource shares its
// /16 with blocked prefixes, so the filter must walk the trie (and miss)
// before passing it: the case where the hint cannot help.
var (
	servedV4      = netip.MustParseAddr("198.18.0.1") // edge-default serves it: tcp 80, 443, udp 443
	servedV6      = netip.MustParseAddr("2001:db8::1")
	legitV4       = netip.MustParseAddr("198.18.200.10")
	legitV6       = netip.MustParseAddr("2001:db8:1::10")
	hintedSource  = netip.MustParseAddr("198.19.1.10")
	blockedSource = netip.MustParseAddr("198.19.128.77") // inside blockedNet, a /24
	rateSource    = netip.MustParseAddr("198.18.201.10")
	attackDst     = netip.MustParseAddr("198.18.4.1")  // a generated served address
	floodSource   = netip.MustParseAddr("198.19.66.7") // inside floodNet; the live flood's source

	blockedNet = netip.MustParsePrefix("198.19.128.0/24")
	floodNet   = netip.MustParsePrefix("198.19.66.0/24")
	// Benchmark space and documentation space stay free of generated
	// prefixes; the handful placed there on purpose are in deliberateBlocks.
	reservedV4 = netip.MustParsePrefix("198.18.0.0/15")
	reservedV6 = netip.MustParsePrefix("2001:db8::/32")
)

var deliberateBlocks = []netip.Prefix{
	blockedNet,
	floodNet,
	netip.MustParsePrefix("198.19.200.0/22"),
}

// profileSpec is what the XDP benchmark loads: the edge-default profile
// with a realistic amount of state and limits that legitimate test
// traffic (millions of identical packets from one source) never reaches.
type profileSpec struct {
	Config xdp.Config
	Block  []netip.Prefix
}

// Sizes of the realistic profile.
const (
	blockedPrefixes = 10_000
	blockedV6Share  = 0.15
	servedEntries   = 1_000
)

// ProfileInfo describes the state the filter was measured with.
type ProfileInfo struct {
	Base             string  `json:"base"`
	BlockedPrefixes  int     `json:"blocked_prefixes"`
	BlockedV6        int     `json:"blocked_v6"`
	Services         int     `json:"services"`
	AllowPrefixes    int     `json:"allow_prefixes"`
	HintedV4SlotsPct float64 `json:"hinted_v4_slots_pct"`
	HintedV6SlotsPct float64 `json:"hinted_v6_slots_pct"`
	RateLimit        string  `json:"rate_limit"`
}

// buildProfile derives the benchmark profile from edge-default. seed makes
// the blocklist reproducible.
func buildProfile(seed uint64) (*profileSpec, error) {
	base, err := profiles.Load("edge-default")
	if err != nil {
		return nil, fmt.Errorf("load base profile: %w", err)
	}
	c := base.XDP
	if !serves(c.Services, servedV4, 443) || !serves(c.Services, servedV6, 443) {
		return nil, fmt.Errorf("profile edge-default no longer serves %s and %s on tcp 443: update bench/profile.go", servedV4, servedV6)
	}

	// Fill the served set up to servedEntries with 80/443 on generated
	// addresses, one in five IPv6.
	n := 0
	for _, s := range c.Services {
		n += len(s.Addrs) * (len(s.TCP) + len(s.UDP))
	}
	var v4, v6 []netip.Addr
	for i := 0; n+2*(len(v4)+len(v6)) < servedEntries; i++ {
		if i%5 == 4 {
			v6 = append(v6, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(i >> 8), 15: byte(i)}))
			continue
		}
		v4 = append(v4, netip.AddrFrom4([4]byte{198, 18, byte(4 + i/250), byte(i%250 + 1)}))
	}
	if v4[0] != attackDst {
		return nil, fmt.Errorf("first generated served address is %s, want %s", v4[0], attackDst)
	}
	c.Services = append(c.Services,
		xdp.Service{Addrs: v4, TCP: []uint16{80, 443}},
		xdp.Service{Addrs: v6, TCP: []uint16{80, 443}})

	// An edge allows its resolvers and origins.
	c.Allow = append(c.Allow,
		netip.MustParsePrefix("1.1.1.1/32"), netip.MustParsePrefix("8.8.8.8/32"),
		netip.MustParsePrefix("9.9.9.9/32"), netip.MustParsePrefix("149.112.112.112/32"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2606:4700:4700::1111/128"),
		netip.MustParsePrefix("2620:fe::fe/128"), netip.MustParsePrefix("2001:4860:4860::8888/128"))

	// Limits: every bucket on, but so wide that one source sending as fast
	// as BPF_PROG_TEST_RUN can loop never reaches them: 100 M packets and
	// SYNs/s (the most the filter accepts, 10 ns each) and 100 GB/s, each
	// with a second of burst. The batch stays the profile's. The attack
	// limits are tiny: the rate_limited case runs toward an address in
	// attack mode and is dropped on every packet.
	c.RateLimit.Enabled = true
	c.RateLimit.Normal = xdp.Limits{PacketsPerSecond: 1e8, PacketBurst: 1e8, BytesPerSecond: 1e11, ByteBurst: 1e11,
		SYNsPerSecond: 1e8, SYNBurst: 1e8}
	c.RateLimit.Attack = xdp.Limits{PacketsPerSecond: 100, PacketBurst: 10, BytesPerSecond: 1e6, ByteBurst: 1e5,
		SYNsPerSecond: 1, SYNBurst: 1}
	c.Capacity.RateSources = 1 << 16
	c.Capacity.AllowPrefixes = 1024
	c.Capacity.BlockPrefixes = 1 << 14
	c.Capacity.Services = 2048
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("benchmark profile: %w", err)
	}
	return &profileSpec{Config: c, Block: blocklist(seed)}, nil
}

func serves(svcs []xdp.Service, a netip.Addr, tcpPort uint16) bool {
	for _, s := range svcs {
		for _, sa := range s.Addrs {
			for _, p := range s.TCP {
				if sa == a && p == tcpPort {
					return true
				}
			}
		}
	}
	return false
}

// blocklist generates blockedPrefixes distinct prefixes from a seeded PCG:
// IPv4 mostly /16../32 (a few /8../15, many /24 and /32) over public
// space, IPv6 /32../128 over 2000::/3. Generated prefixes stay out of the
// benchmark and documentation ranges and away from the IPv6 legitimate
// source's hint slot; deliberateBlocks are added on top.
func blocklist(seed uint64) []netip.Prefix {
	r := rand.New(rand.NewPCG(seed, 0x72616d7061727421))
	seen := map[netip.Prefix]bool{}
	out := make([]netip.Prefix, 0, blockedPrefixes)
	add := func(p netip.Prefix) {
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range deliberateBlocks {
		add(p)
	}
	wantV6 := int(blockedPrefixes * blockedV6Share)
	legitSlot6 := xdp.HintSlot(legitV6)
	for len(out) < blockedPrefixes-wantV6 {
		var b [4]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 {
			continue
		}
		var bits int
		switch x := r.Float64(); {
		case x < 0.02:
			bits = 8 + r.IntN(8)
		case x < 0.20:
			bits = 16 + r.IntN(8)
		case x < 0.60:
			bits = 24
		case x < 0.80:
			bits = 25 + r.IntN(7)
		default:
			bits = 32
		}
		p := netip.PrefixFrom(netip.AddrFrom4(b), bits).Masked()
		if p.Overlaps(reservedV4) {
			continue
		}
		add(p)
	}
	for len(out) < blockedPrefixes {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f // 2000::/3
		var bits int
		switch x := r.Float64(); {
		case x < 0.25:
			bits = 32 + r.IntN(16)
		case x < 0.55:
			bits = 48
		case x < 0.70:
			bits = 56
		case x < 0.90:
			bits = 64
		default:
			bits = 128
		}
		p := netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		if p.Overlaps(reservedV6) || xdp.HintSlot(p.Addr()) == legitSlot6 {
			continue
		}
		add(p)
	}
	return out
}

// hintSlots lists the source-hint slots some prefix of the given family
// marks. It mirrors the slot mapping of xdp.HintSlot for the prefix lengths
// generated here (IPv6 only /32 and longer).
func hintSlots(prefixes []netip.Prefix, v6 bool) map[uint32]bool {
	slots := map[uint32]bool{}
	for _, p := range prefixes {
		if p.Addr().Is6() != v6 {
			continue
		}
		if p.Addr().Is4() && p.Bits() < 16 {
			b := p.Addr().As4()
			base := uint32(b[0])<<8 | uint32(b[1])
			for i := range uint32(1) << (16 - p.Bits()) {
				slots[base+i] = true
			}
			continue
		}
		slots[xdp.HintSlot(p.Addr())] = true
	}
	return slots
}

// hintedPct is the share of one family's source-hint slots that some
// prefix marks: the chance that a random new source of that family makes
// the filter walk a trie.
func hintedPct(prefixes []netip.Prefix, v6 bool) float64 {
	return 100 * float64(len(hintSlots(prefixes, v6))) / 65536
}
