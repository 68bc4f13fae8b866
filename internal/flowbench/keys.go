package flowbench

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/rampart-edge/rampart/flowtable"
)

// Key is key i of a reproducible universe of distinct flows: 60 % from
// IPv4 clients (the address is a bijection of i, so IPv4 keys never
// collide), 40 % from IPv6 clients in random /64s of 2000::/3 (the
// interface id is a bijection of i); ephemeral source ports; one of 16
// service addresses per family on 443 (TCP, or UDP for QUIC), 80 or 8443.
func Key(seed uint64, i int) flowtable.FlowKey {
	p := rand.NewPCG(seed, uint64(i))
	a, b := p.Uint64(), p.Uint64()
	srcPort := uint16(32768 + b%28232)
	svc := byte(b>>16) & 15
	var dstPort uint16
	var proto uint8 = 6
	switch c := (b >> 24) % 100; {
	case c < 70:
		dstPort = 443
	case c < 80:
		dstPort, proto = 443, 17
	case c < 95:
		dstPort = 80
	default:
		dstPort = 8443
	}
	var src, dst netip.Addr
	if a%100 < 60 {
		var s [4]byte
		binary.BigEndian.PutUint32(s[:], mix32(uint32(i)^uint32(seed)))
		src = netip.AddrFrom4(s)
		dst = netip.AddrFrom4([4]byte{192, 0, 2, 1 + svc})
	} else {
		var s [16]byte
		binary.BigEndian.PutUint32(s[0:], 0x2000_0000|uint32(a>>8)&0x1fff_ffff)
		binary.BigEndian.PutUint32(s[4:], uint32(a>>37))
		binary.BigEndian.PutUint64(s[8:], mix64(uint64(i)^seed))
		src = netip.AddrFrom16(s)
		dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1 + svc})
	}
	return flowtable.NewFlowKey(netip.AddrPortFrom(src, srcPort), netip.AddrPortFrom(dst, dstPort), proto)
}

// Universe is keys 0 to live-1 (the ones the stores start with, for
// NewSim) followed by live/4 spare ones, at least 64: deletes return keys
// to the spares and inserts take them back, so the spares need only
// outlast the random walk of one run's inserts minus deletes.
func Universe(seed uint64, live int) []flowtable.FlowKey {
	keys := make([]flowtable.FlowKey, live+max(live/4, 64))
	for i := range keys {
		keys[i] = Key(seed, i)
	}
	return keys
}

// mix32 and mix64 are bijections (xor-shifts and odd multiplications)
// that scatter consecutive indexes over the address space.
func mix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
