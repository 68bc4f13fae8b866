//go:build linux

package xdp

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/packets"
)

// These tests need no kernel: they pin down the model itself, so that a
// disagreement with the filter points at the filter.

func TestModelParse(t *testing.T) {
	syn6 := tcp(client6, served6, 443, "S")
	tests := []struct {
		name      string
		frame     []byte
		want      Reason
		proto     uint8
		sport     uint16
		dport     uint16
		fragment  bool
		hasPorts  bool
		wantFlags uint8
	}{
		{name: "ipv4 tcp", frame: tcp(client4, served4, 80, "SA"), want: ReasonPass, proto: 6, sport: 40000, dport: 80,
			hasPorts: true, wantFlags: 0x12},
		{name: "ipv6 udp after ext", frame: withIPv6Ext(udp(client6, served6, 53, 443, 8), destOpts(), ah()), want: ReasonPass,
			proto: 17, sport: 53, dport: 443, hasPorts: true},
		{name: "ipv6 later fragment", frame: withIPv6Ext(syn6, fragment(3, true)), want: ReasonPass, proto: 6, fragment: true},
		{name: "ipv6 first fragment", frame: withIPv6Ext(syn6, fragment(0, true)), want: ReasonPass, proto: 6, sport: 40000,
			dport: 443, fragment: true, hasPorts: true, wantFlags: 0x02},
		{name: "ipv4 later fragment", frame: build(packets.Spec{Src: packets.Addr(client4), Dst: packets.Addr(served4),
			Proto: packets.TCP, FragOffset: 1}), want: ReasonPass, proto: 6, fragment: true},
		{name: "ipv4 df is no fragment", frame: edit(tcp(client4, served4, 80, "S"), func(b []byte) { b[l3+6] = 0x40 }),
			want: ReasonPass, proto: 6, sport: 40000, dport: 80, hasPorts: true, wantFlags: 0x02},
		{name: "icmp", frame: build(packets.Spec{Src: packets.Addr(client4), Dst: packets.Addr(served4), Proto: packets.ICMP}),
			want: ReasonPass, proto: 1},
		{name: "ext chain of 8", frame: extChain(8), want: ReasonPass, proto: 6, sport: 40000, dport: 443, hasPorts: true,
			wantFlags: 0x02},
		{name: "ext chain of 9", frame: extChain(9), want: ReasonIPv6ExtChain},
		{name: "13 bytes", frame: make([]byte, 13), want: ReasonEthTruncated},
		{name: "arp", frame: arp(), want: ReasonNonIP},
		{name: "3 tags", frame: build(packets.Spec{VLANs: []uint16{1, 2, 3}, Src: packets.Addr(client4),
			Dst: packets.Addr(served4), Proto: packets.UDP}), want: ReasonVLANTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, r := modelParse(tc.frame)
			if r != tc.want {
				t.Fatalf("reason %s, want %s", r, tc.want)
			}
			if r != ReasonPass {
				return
			}
			if p.proto != tc.proto || p.sport != tc.sport || p.dport != tc.dport || p.fragment != tc.fragment ||
				p.hasPorts != tc.hasPorts || p.tcpFlags != tc.wantFlags {
				t.Errorf("parsed %+v", p)
			}
		})
	}
}

func TestModelAddresses(t *testing.T) {
	// An IPv4-mapped address in an IPv6 header would share the IPv4
	// address's keys: it is dropped before it can.
	if _, r := modelParse(tcp(client6, "::ffff:"+served4, 80, "S")); r != ReasonIPv6Mapped {
		t.Fatalf("mapped destination: %s, want %s", r, ReasonIPv6Mapped)
	}
	p, _ := modelParse(tcp(client4, served4, 80, "S"))
	if want := netip.MustParseAddr("::ffff:" + client4).As16(); p.src != want || p.ipv6 {
		t.Errorf("ipv4 source %x, want %x", p.src, want)
	}
}

func TestModelLongestPrefixDecides(t *testing.T) {
	m := NewModel(testConfig())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	m.Now = 100
	must(m.Add(Blocklist, netip.MustParsePrefix("10.1.0.0/16"), 0))
	must(m.Add(Blocklist, netip.MustParsePrefix("10.1.2.0/24"), 50)) // expired
	must(m.Add(Blocklist, netip.MustParsePrefix("10.1.2.128/25"), 0))
	must(m.Add(Blocklist, netip.MustParsePrefix("::ffff:10.9.0.0/112"), 0)) // 10.9.0.0/16
	if err := m.Add(Blocklist, netip.MustParsePrefix("::ffff:0:0/80"), 0); err == nil {
		t.Error("a prefix mixing mapped and IPv6 space was accepted")
	}
	for _, tc := range []struct {
		src  string
		want Reason
	}{
		{"10.1.3.1", ReasonBlocklist},   // /16
		{"10.1.2.1", ReasonPass},        // expired /24 hides the /16
		{"10.1.2.200", ReasonBlocklist}, // live /25
		{"10.9.1.1", ReasonBlocklist},   // mapped prefix, stored as IPv4
		{"10.2.0.1", ReasonPass},
	} {
		if got := m.Judge(tcp(tc.src, served4, 80, "S")); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.src, got, tc.want)
		}
	}
	// An IPv4-mapped source inside an IPv6 header never reaches the lists.
	if got := m.Judge(tcp("::ffff:10.1.3.1", served6, 443, "S")); got != ReasonIPv6Mapped {
		t.Errorf("mapped source in an IPv6 header: %s", got)
	}
	if n := m.Sweep(); n != 1 {
		t.Errorf("swept %d, want 1", n)
	}
	if got := m.Judge(tcp("10.1.2.1", served4, 80, "S")); got != ReasonBlocklist {
		t.Errorf("after sweep: %s, want blocklist", got)
	}
	if err := m.Delete(Blocklist, netip.MustParsePrefix("10.1.2.0/24")); err != ErrNotListed {
		t.Errorf("delete swept prefix: %v", err)
	}
}

func TestModelRateLimits(t *testing.T) {
	c := testConfig()
	c.RateLimit.Normal = Limits{PacketsPerSecond: 10, PacketBurst: 3, SYNsPerSecond: 1, SYNBurst: 1}
	c.RateLimit.Attack = Limits{PacketsPerSecond: 1, PacketBurst: 1, SYNsPerSecond: 1, SYNBurst: 1}
	m := NewModel(c)
	if m.Normal.PacketInterval != 1e8 || m.Normal.PacketDepth != 3e8 || m.Normal.SYNDepth != 1e9 {
		t.Fatalf("limits %+v", m.Normal)
	}
	ack := tcp(client4, served4, 80, "A")
	syn := tcp(client4, served4, 80, "S")
	for i, want := range []Reason{ReasonPass, ReasonRateSYN, ReasonPass, ReasonPass, ReasonRatePackets} {
		frame := ack
		if i < 2 {
			frame = syn
		}
		if got := m.Judge(frame); got != want {
			t.Fatalf("packet %d: %s, want %s", i, got, want)
		}
	}
	m.Now += 1e8 // one packet's worth
	if got := m.Judge(ack); got != ReasonPass {
		t.Errorf("after refill: %s", got)
	}
	if got := m.Judge(ack); got != ReasonRatePackets {
		t.Errorf("after one refill used: %s", got)
	}
	m.Now += 1e9
	if got := m.Judge(syn); got != ReasonPass {
		t.Errorf("syn after a second: %s", got)
	}
	m.ResetRateState()
	m.SetAttack(packets.Addr(served4), true)
	if got := m.Judge(ack); got != ReasonPass {
		t.Errorf("attack, first: %s", got)
	}
	if got := m.Judge(ack); got != ReasonRatePackets {
		t.Errorf("attack, second: %s", got)
	}
}

func TestModelLimitsDoNotOverflow(t *testing.T) {
	l := modelLimits(Limits{BytesPerSecond: 1 << 40, ByteBurst: 1 << 50, PacketsPerSecond: 3, PacketBurst: math.MaxUint64})
	if l.ByteDepth != (1<<50)/(1<<40)*uint64(time.Second) {
		t.Errorf("byte depth %d", l.ByteDepth)
	}
	if l.PacketDepth != math.MaxUint64 {
		t.Errorf("packet depth %d, want saturated", l.PacketDepth)
	}
	if l.ByteIntervalQ10 != 0 {
		t.Errorf("at 1 TiB/s a byte costs under 1/1024 ns, got %d", l.ByteIntervalQ10)
	}
}

func TestModelBadTCPFlags(t *testing.T) {
	const fin, syn, rst, psh, ack, urg, ece, cwr = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
	bad := map[uint8]bool{
		0: true, ece | cwr: true, syn | fin: true, syn | rst: true, fin | rst: true, fin: true, psh: true, urg: true,
		fin | psh | urg: true, syn | fin | ack: true, fin | rst | ack: true,
		syn: false, syn | ack: false, ack: false, rst: false, rst | ack: false, fin | ack: false, psh | ack: false,
		syn | ece | cwr: false, fin | psh | urg | ack: false,
	}
	for f, want := range bad {
		if got := modelBadTCPFlags(f); got != want {
			t.Errorf("flags %#02x: bad %v, want %v", f, got, want)
		}
	}
}
