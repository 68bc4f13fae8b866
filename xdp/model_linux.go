package xdp

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"time"
)

// Model is a reference implementation of filter.c in plain Go: given the
// same map state it reaches the same Reason for a frame as the BPF program.
// Tests and the differential fuzz target run both and require agreement, so
// a mistake in either shows up as a disagreement. It is written from the
// order in doc.go, with its own byte-level parser and no generated types.
//
// It leaves out what only makes the filter fast: the source hints, the
// per-CPU source cache (cached list verdicts, batched rate accounting) and
// the inline service table. Correct ones never change a verdict, so the
// model keeps the plain semantics they must preserve: longest-prefix match
// over the lists, exact (address, protocol, port) services, and a GCRA
// bucket charged packet by packet. The filter charges in batches no larger
// than the room its buckets have left, which on one CPU gives the same
// verdicts.
//
// Time is explicit: Now is the monotonic instant the model judges at, both
// for list expiry and for the token buckets. Holding Now still models a
// burst that arrives faster than any bucket refills.
//
// A Model is plain data owned by one goroutine; it touches no kernel state.
type Model struct {
	FilterServices bool
	DropFragments  bool
	RateLimit      bool
	AllowICMP      bool
	Normal, Attack ModelLimits
	// Now is the model's clock in ns; only differences matter (expiry
	// times given to Add are on it too).
	Now uint64

	allow, block map[netip.Prefix]uint64 // canonical prefix → expiry (0 never)
	services     map[modelService]bool
	served       map[[16]byte]uint8 // address → modelServedTCP|modelServedUDP
	attack       map[[16]byte]bool
	reflection   map[uint16]bool
	rate         map[[16]byte]*modelBucket
}

// ModelLimits are the GCRA parameters of one set of limits, as the filter
// keeps them: a packet conforms when a bucket's theoretical arrival time
// advanced by its cost stays within depth of now. A zero interval turns
// that bucket off. Byte costs are in 1/1024 ns per byte.
type ModelLimits struct {
	PacketInterval, PacketDepth uint64
	ByteIntervalQ10, ByteDepth  uint64
	SYNInterval, SYNDepth       uint64
}

type modelService struct {
	addr  [16]byte
	proto uint8
	port  uint16
}

type modelBucket struct{ packetTAT, byteTAT, synTAT uint64 }

const (
	modelServedTCP = 1 << 0
	modelServedUDP = 1 << 1
)

// NewModel returns a model holding what Filter.Configure(c) writes into
// fresh maps. The rate limits are derived here from the rates, not taken
// from the loader, so the two derivations check each other.
func NewModel(c Config) *Model {
	m := &Model{
		FilterServices: c.FilterServices,
		DropFragments:  c.Fragments == "drop",
		RateLimit:      c.RateLimit.Enabled,
		AllowICMP:      c.AllowICMP,
		Normal:         modelLimits(c.RateLimit.Normal),
		Attack:         modelLimits(c.RateLimit.Attack),
		allow:          map[netip.Prefix]uint64{},
		block:          map[netip.Prefix]uint64{},
		attack:         map[[16]byte]bool{},
		reflection:     map[uint16]bool{},
		rate:           map[[16]byte]*modelBucket{},
	}
	for _, p := range c.ReflectionPorts {
		m.reflection[p] = true
	}
	m.SetServices(c.Services)
	for _, p := range c.Allow {
		if err := m.Add(Allowlist, p, 0); err != nil {
			panic(err) // Validate rejects invalid prefixes
		}
	}
	return m
}

func modelLimits(l Limits) ModelLimits {
	var out ModelLimits
	const sec = uint64(time.Second)
	if l.PacketsPerSecond > 0 {
		out.PacketInterval = sec / l.PacketsPerSecond
		out.PacketDepth = mulDiv(l.PacketBurst, sec, l.PacketsPerSecond)
	}
	if l.BytesPerSecond > 0 {
		// ns per byte in Q10 fixed point; the depth is the burst's duration.
		out.ByteIntervalQ10 = mulDiv(1024, sec, l.BytesPerSecond)
		out.ByteDepth = mulDiv(l.ByteBurst, sec, l.BytesPerSecond)
	}
	if l.SYNsPerSecond > 0 {
		out.SYNInterval = sec / l.SYNsPerSecond
		out.SYNDepth = mulDiv(l.SYNBurst, sec, l.SYNsPerSecond)
	}
	return out
}

// mulDiv is a*b/c without overflowing in between, saturating at the top.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// Add lists a prefix until the monotonic instant expiresNs (0: never),
// replacing the expiry of an entry already listed.
func (m *Model) Add(l List, p netip.Prefix, expiresNs uint64) error {
	p, err := modelCanonical(p)
	if err != nil {
		return err
	}
	m.list(l)[p] = expiresNs
	return nil
}

// Delete removes a prefix from a list; ErrNotListed when it is not there.
func (m *Model) Delete(l List, p netip.Prefix) error {
	p, err := modelCanonical(p)
	if err != nil {
		return err
	}
	if _, ok := m.list(l)[p]; !ok {
		return ErrNotListed
	}
	delete(m.list(l), p)
	return nil
}

// Sweep drops expired entries; like the filter's, matching is unchanged
// by it, since an expired entry never matches.
func (m *Model) Sweep() int {
	n := 0
	for _, list := range []map[netip.Prefix]uint64{m.allow, m.block} {
		for p, exp := range list {
			if exp != 0 && exp <= m.Now {
				delete(list, p)
				n++
			}
		}
	}
	return n
}

func (m *Model) list(l List) map[netip.Prefix]uint64 {
	if l == Allowlist {
		return m.allow
	}
	return m.block
}

// modelCanonical keys IPv4-mapped prefixes as IPv4, as the loader does.
func modelCanonical(p netip.Prefix) (netip.Prefix, error) {
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

// SetServices makes the served set exactly svcs and derives the served
// addresses from it.
func (m *Model) SetServices(svcs []Service) {
	m.services = map[modelService]bool{}
	m.served = map[[16]byte]uint8{}
	for _, s := range svcs {
		for _, a := range s.Addrs {
			k := a.Unmap().As16()
			for _, p := range s.TCP {
				m.services[modelService{k, 6, p}] = true
				m.served[k] |= modelServedTCP
			}
			for _, p := range s.UDP {
				m.services[modelService{k, 17, p}] = true
				m.served[k] |= modelServedUDP
			}
		}
	}
}

// SetAttack switches a destination to the attack limits or back.
func (m *Model) SetAttack(a netip.Addr, on bool) {
	if on {
		m.attack[a.Unmap().As16()] = true
	} else {
		delete(m.attack, a.Unmap().As16())
	}
}

// ResetRateState forgets every source's buckets.
func (m *Model) ResetRateState() { m.rate = map[[16]byte]*modelBucket{} }

// modelPacket is what the checks after parsing need from a frame.
type modelPacket struct {
	ipv6      bool
	src, dst  [16]byte // IPv4 as ::ffff:a.b.c.d
	proto     uint8
	sport     uint16
	dport     uint16
	tcpFlags  uint8
	fragment  bool // any fragment, first or later
	hasPorts  bool // a TCP or UDP header was parsed
	frameSize int
}

// Judge returns the reason the filter reaches for frame, updating the
// model's token buckets as the filter would.
func (m *Model) Judge(frame []byte) Reason {
	p, r := modelParse(frame)
	if r != ReasonPass {
		return r
	}
	// The allowlist wins over everything after parsing, the blocklist over
	// everything else.
	if m.listed(m.allow, &p) {
		return ReasonAllowlist
	}
	if m.listed(m.block, &p) {
		return ReasonBlocklist
	}
	if p.fragment && m.DropFragments {
		return ReasonFragmentDropped
	}
	if p.proto == 6 && p.hasPorts && modelBadTCPFlags(p.tcpFlags) {
		return ReasonTCPFlags
	}
	if p.proto == 17 && p.hasPorts && m.reflection[p.sport] {
		if f, ok := m.served[p.dst]; ok && f&modelServedUDP == 0 {
			return ReasonUDPReflection
		}
	}
	if m.FilterServices && !m.isServed(&p) {
		return ReasonNotServed
	}
	if m.RateLimit {
		if r := m.charge(&p); r != ReasonPass {
			return r
		}
	}
	if p.fragment {
		return ReasonFragmentPassed
	}
	return ReasonPass
}

// listed is longest-prefix match as an LPM trie does it: the longest
// prefix containing the source decides alone, so an expired /24 inside a
// live /16 hides the /16 until it is swept.
func (m *Model) listed(list map[netip.Prefix]uint64, p *modelPacket) bool {
	var src netip.Addr
	if p.ipv6 {
		src = netip.AddrFrom16(p.src) // a mapped address in an IPv6 header stays IPv6
	} else {
		src = netip.AddrFrom4([4]byte(p.src[12:]))
	}
	best, found := -1, false
	var exp uint64
	for pfx, e := range list {
		if pfx.Addr().Is4() != src.Is4() || !modelContains(pfx, src) {
			continue
		}
		if pfx.Bits() > best {
			best, exp, found = pfx.Bits(), e, true
		}
	}
	return found && (exp == 0 || exp > m.Now)
}

// modelContains compares bits by hand rather than with netip, whose rules
// for mapped addresses are not the trie's.
func modelContains(p netip.Prefix, a netip.Addr) bool {
	pb, ab := p.Addr().AsSlice(), a.AsSlice()
	if len(pb) != len(ab) {
		return false
	}
	for i := 0; i < p.Bits(); i++ {
		mask := byte(0x80) >> (i % 8)
		if pb[i/8]&mask != ab[i/8]&mask {
			return false
		}
	}
	return true
}

// modelBadTCPFlags: no real stack sends a segment without flags, SYN with
// FIN or RST, FIN with RST, or one that is neither SYN nor RST and lacks
// ACK (FIN, PSH, URG and Xmas scans). ECE and CWR do not matter.
func modelBadTCPFlags(f uint8) bool {
	const fin, syn, rst, psh, ack, urg = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
	f &= fin | syn | rst | psh | ack | urg
	has := func(bits uint8) bool { return f&bits == bits }
	switch {
	case f == 0:
		return true
	case has(syn | fin), has(syn | rst), has(fin | rst):
		return true
	case f&(ack|syn|rst) == 0:
		return true
	}
	return false
}

func (m *Model) isServed(p *modelPacket) bool {
	if (p.proto == 1 || p.proto == 58) && m.AllowICMP {
		return true
	}
	if p.fragment && !p.hasPorts {
		// A later fragment has no ports: the address must serve its protocol.
		switch p.proto {
		case 6:
			return m.served[p.dst]&modelServedTCP != 0
		case 17:
			return m.served[p.dst]&modelServedUDP != 0
		}
		return false
	}
	var port uint16
	if p.hasPorts {
		port = p.dport
	}
	return m.services[modelService{p.dst, p.proto, port}]
}

// charge runs the source's GCRA buckets: SYN (pure SYNs only), packets,
// bytes, in that order; a bucket that refuses leaves all three unchanged.
func (m *Model) charge(p *modelPacket) Reason {
	lim := &m.Normal
	if m.attack[p.dst] {
		lim = &m.Attack
	}
	key := p.src
	if p.ipv6 {
		clear(key[8:]) // one bucket per /64
	}
	b := m.rate[key]
	if b == nil {
		b = &modelBucket{}
		m.rate[key] = b
	}
	now := m.Now
	conforms := func(tat, cost, depth uint64) (uint64, bool) {
		next := max(tat, now) + cost
		return next, next <= now+depth
	}
	syn, pkt, byt := b.synTAT, b.packetTAT, b.byteTAT
	var ok bool
	if lim.SYNInterval != 0 && p.proto == 6 && p.hasPorts && p.tcpFlags&0x12 == 0x02 {
		if syn, ok = conforms(b.synTAT, lim.SYNInterval, lim.SYNDepth); !ok {
			return ReasonRateSYN
		}
	}
	if lim.PacketInterval != 0 {
		if pkt, ok = conforms(b.packetTAT, lim.PacketInterval, lim.PacketDepth); !ok {
			return ReasonRatePackets
		}
	}
	if lim.ByteIntervalQ10 != 0 {
		if byt, ok = conforms(b.byteTAT, uint64(p.frameSize)*lim.ByteIntervalQ10>>10, lim.ByteDepth); !ok {
			return ReasonRateBytes
		}
	}
	b.synTAT, b.packetTAT, b.byteTAT = syn, pkt, byt
	return ReasonPass
}

// Ethernet types and IP protocol numbers the parser cares about.
const (
	modelEtherIPv4    = 0x0800
	modelEtherIPv6    = 0x86dd
	modelEtherVLAN    = 0x8100
	modelEtherQinQ    = 0x88a8
	modelMaxVLANs     = 2
	modelMaxIPv6Ext   = 8
	modelIPv6Fragment = 44
	modelIPv6AH       = 51
)

var be = binary.BigEndian

// modelParse parses a frame and returns ReasonPass with the packet, the
// first malformation's reason, or ReasonNonIP.
func modelParse(b []byte) (modelPacket, Reason) {
	p := modelPacket{frameSize: len(b)}
	if len(b) < 14 {
		return p, ReasonEthTruncated
	}
	etherType := be.Uint16(b[12:])
	off := 14
	vlan := func(t uint16) bool { return t == modelEtherVLAN || t == modelEtherQinQ }
	for range modelMaxVLANs {
		if !vlan(etherType) {
			break
		}
		if len(b) < off+4 {
			return p, ReasonVLANTruncated
		}
		etherType = be.Uint16(b[off+2:])
		off += 4
	}
	switch {
	case vlan(etherType):
		return p, ReasonVLANTooDeep
	case etherType == modelEtherIPv4:
		return p, modelParseIPv4(&p, b[off:])
	case etherType == modelEtherIPv6:
		return p, modelParseIPv6(&p, b[off:])
	}
	return p, ReasonNonIP
}

func modelParseIPv4(p *modelPacket, l3 []byte) Reason {
	if len(l3) < 20 {
		return ReasonIPv4Truncated
	}
	if l3[0]>>4 != 4 {
		return ReasonIPv4BadVersion
	}
	ihl := int(l3[0]&0x0f) * 4
	if ihl < 20 {
		return ReasonIPv4BadIHL
	}
	if ihl > len(l3) {
		return ReasonIPv4Truncated
	}
	total := int(be.Uint16(l3[2:]))
	if total < ihl || total > len(l3) {
		return ReasonIPv4BadLength
	}
	p.src = netip.AddrFrom4([4]byte(l3[12:16])).As16()
	p.dst = netip.AddrFrom4([4]byte(l3[16:20])).As16()
	p.proto = l3[9]
	frag := be.Uint16(l3[6:])
	const moreFragments, offsetMask = 0x2000, 0x1fff
	if frag&(moreFragments|offsetMask) != 0 {
		p.fragment = true
		if frag&offsetMask != 0 {
			return ReasonPass // later fragments carry no L4 header
		}
	}
	return modelParseL4(p, l3[ihl:total])
}

func modelIPv6Ext(nh uint8) bool {
	switch nh {
	case 0, 43, 60, 135, 139, 140, modelIPv6Fragment, modelIPv6AH:
		return true
	}
	return false
}

func modelParseIPv6(p *modelPacket, l3 []byte) Reason {
	if len(l3) < 40 {
		return ReasonIPv6Truncated
	}
	if l3[0]>>4 != 6 {
		return ReasonIPv6BadVersion
	}
	plen := int(be.Uint16(l3[4:]))
	if 40+plen > len(l3) {
		return ReasonIPv6BadLength
	}
	// IPv4-mapped addresses never appear on the wire (RFC 4291 2.5.5.2).
	if netip.AddrFrom16([16]byte(l3[8:24])).Is4In6() || netip.AddrFrom16([16]byte(l3[24:40])).Is4In6() {
		return ReasonIPv6Mapped
	}
	p.ipv6 = true
	p.src = [16]byte(l3[8:24])
	p.dst = [16]byte(l3[24:40])
	payload := l3[40 : 40+plen]
	nh := l3[6]
	cur := 0
	for range modelMaxIPv6Ext {
		if !modelIPv6Ext(nh) {
			p.proto = nh
			return modelParseL4(p, payload[cur:])
		}
		var size int
		switch nh {
		case modelIPv6Fragment:
			if cur+8 > len(payload) {
				return ReasonIPv6ExtTruncated
			}
			// RFC 6946: an atomic fragment (offset 0, M clear) is a whole packet.
			if be.Uint16(payload[cur+2:])&0xfff9 != 0 {
				p.fragment = true
			}
			if be.Uint16(payload[cur+2:])&0xfff8 != 0 {
				p.proto = payload[cur]
				return ReasonPass // later fragments carry no L4 header
			}
			size = 8
		case modelIPv6AH:
			if cur+2 > len(payload) {
				return ReasonIPv6ExtTruncated
			}
			size = (int(payload[cur+1]) + 2) * 4 // AH counts 4-byte words, less 2
		default:
			if cur+2 > len(payload) {
				return ReasonIPv6ExtTruncated
			}
			size = (int(payload[cur+1]) + 1) * 8
		}
		nh = payload[cur]
		cur += size
		if cur > len(payload) {
			return ReasonIPv6ExtTruncated
		}
	}
	if modelIPv6Ext(nh) {
		return ReasonIPv6ExtChain
	}
	p.proto = nh
	return modelParseL4(p, payload[cur:])
}

// modelParseL4 parses TCP or UDP from the IP payload (which the IP
// parser has already bounded by the frame).
func modelParseL4(p *modelPacket, seg []byte) Reason {
	switch p.proto {
	case 6:
		if len(seg) < 20 {
			return ReasonTCPTruncated
		}
		doff := int(seg[12]>>4) * 4
		if doff < 20 || doff > len(seg) {
			return ReasonTCPBadOffset
		}
		p.sport, p.dport = be.Uint16(seg[0:]), be.Uint16(seg[2:])
		p.tcpFlags = seg[13]
		p.hasPorts = true
	case 17:
		if len(seg) < 8 {
			return ReasonUDPTruncated
		}
		ulen := int(be.Uint16(seg[4:]))
		if ulen < 8 {
			return ReasonUDPBadLength
		}
		// A first fragment holds only the start of the datagram.
		if !p.fragment && ulen != len(seg) {
			return ReasonUDPBadLength
		}
		p.sport, p.dport = be.Uint16(seg[0:]), be.Uint16(seg[2:])
		p.hasPorts = true
	}
	return ReasonPass
}
