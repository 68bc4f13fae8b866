package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/xdp"
)

// xdpCase is one kind of packet the filter is timed on.
type xdpCase struct {
	name  string
	frame []byte
	// want lists the reasons the filter may give; anything else fails the
	// benchmark before it is timed.
	want []xdp.Reason
	// compare also times xdp-filter on the frame (legitimate packets).
	compare bool
	// headline marks the legitimate pass paths the issue names: the worst
	// of their ratios to xdp-filter is the headline figure.
	headline bool
	// attack turns attack mode on for the packet's destination while the
	// case runs.
	attack bool
}

func xdpCases() ([]xdpCase, error) {
	syn := func(src, dst netip.Addr, vlans ...uint16) packets.Spec {
		return packets.Spec{VLANs: vlans, Src: src, Dst: dst, Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"}
	}
	pass := []xdp.Reason{xdp.ReasonPass}
	rate := []xdp.Reason{xdp.ReasonRateSYN, xdp.ReasonRatePackets, xdp.ReasonRateBytes}
	specs := []struct {
		c    xdpCase
		spec packets.Spec
	}{
		{xdpCase{name: caseTCPSYN, want: pass, compare: true, headline: true}, syn(legitV4, servedV4)},
		{xdpCase{name: caseUDP, want: pass, compare: true, headline: true}, packets.Spec{Src: legitV4, Dst: servedV4, Proto: packets.UDP,
			SrcPort: 50000, DstPort: 443, Payload: make([]byte, 32)}},
		{xdpCase{name: caseIPv6SYN, want: pass, compare: true, headline: true}, syn(legitV6, servedV6)},
		{xdpCase{name: caseVLANSYN, want: pass, compare: true, headline: true}, syn(legitV4, servedV4, 100)},
		{xdpCase{name: caseHintedSYN, want: pass, compare: true}, syn(hintedSource, servedV4)},
		{xdpCase{name: caseBlocked, want: []xdp.Reason{xdp.ReasonBlocklist}}, syn(blockedSource, servedV4)},
		{xdpCase{name: caseRateLimited, want: rate, attack: true}, syn(rateSource, attackDst)},
	}
	out := make([]xdpCase, 0, len(specs))
	for _, s := range specs {
		f, err := packets.Build(s.spec)
		if err != nil {
			return nil, fmt.Errorf("build %s frame: %w", s.c.name, err)
		}
		s.c.frame = f
		out = append(out, s.c)
	}
	return out, nil
}

// newSourceFrames builds n IPv4 SYNs to a served address, each from a
// different source no frame of an earlier round used: pass ones from
// random public addresses on no list (about a quarter of them share a
// hint slot with some prefix, as random Internet sources would), blocked
// ones from random addresses inside random blocked IPv4 prefixes. This is
// what a flood of spoofed sources looks like to the filter: every packet
// misses its per-CPU source cache.
// hinted[i] says whether pass[i]'s source shares a hint slot with a listed
// prefix (the filter walks the tries for it before passing it).
func newSourceFrames(ps *profileSpec, seed uint64, round, n int) (pass, blocked [][]byte, hinted []bool, err error) {
	r := rand.New(rand.NewPCG(seed, 0x6e6577+uint64(round)))
	var blockedV4 []netip.Prefix
	for _, p := range ps.Block {
		if p.Addr().Is4() {
			blockedV4 = append(blockedV4, p)
		}
	}
	block, allow := newPrefixSet(ps.Block), newPrefixSet(ps.Config.Allow)
	seen := map[netip.Addr]bool{}
	slots := hintSlots(append(slices.Clone(ps.Block), ps.Config.Allow...), false)
	syn := func(src netip.Addr) ([]byte, error) {
		return packets.Build(packets.Spec{Src: src, Dst: servedV4, Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})
	}
	for len(pass) < n {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], r.Uint32())
		a := netip.AddrFrom4(b)
		if b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 || reservedV4.Contains(a) ||
			block.contains(a) || allow.contains(a) || seen[a] {
			continue
		}
		seen[a] = true
		f, err := syn(a)
		if err != nil {
			return nil, nil, nil, err
		}
		pass = append(pass, f)
		hinted = append(hinted, slots[xdp.HintSlot(a)])
	}
	for len(blocked) < n {
		p := blockedV4[r.IntN(len(blockedV4))]
		b := p.Addr().As4()
		host := r.Uint32() & (1<<(32-p.Bits()) - 1)
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])|host)
		a := netip.AddrFrom4(b)
		if allow.contains(a) || seen[a] {
			continue
		}
		seen[a] = true
		f, err := syn(a)
		if err != nil {
			return nil, nil, nil, err
		}
		blocked = append(blocked, f)
	}
	return pass, blocked, hinted, nil
}

// prefixSet answers "is this address inside any of these prefixes" with one
// map lookup per prefix length.
type prefixSet map[netip.Prefix]bool

func newPrefixSet(ps []netip.Prefix) prefixSet {
	s := prefixSet{}
	for _, p := range ps {
		s[p.Masked()] = true
	}
	return s
}

func (s prefixSet) contains(a netip.Addr) bool {
	for bits := range a.BitLen() + 1 {
		if p, err := a.Prefix(bits); err == nil && s[p] {
			return true
		}
	}
	return false
}
