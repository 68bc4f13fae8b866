package xdp

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/rampart-edge/rampart/internal/check"
)

// Config is the filter's section of a profile. It is plain data: Validate
// checks it without touching the machine; Filter.Configure applies it.
type Config struct {
	// FilterServices drops traffic to any (address, protocol, port) not in
	// Services. ICMP passes when AllowICMP is set (PMTU discovery and IPv6
	// neighbour discovery need it).
	FilterServices bool `yaml:"filter_services"`
	AllowICMP      bool `yaml:"allow_icmp"`
	// Fragments is "drop" or "pass". Passed fragments are checked against
	// the lists, the served addresses and the rate limits, not ports.
	Fragments string `yaml:"fragments"`
	// SampleEvery sends 1 in N drops (per reason and CPU) to the sample
	// ring; 0 turns sampling off.
	SampleEvery uint32 `yaml:"sample_every"`
	// ReflectionPorts are UDP source ports of amplification vectors; UDP
	// from them to a served address with no UDP service is dropped.
	ReflectionPorts []uint16  `yaml:"reflection_ports"`
	RateLimit       RateLimit `yaml:"rate_limit"`
	Services        []Service `yaml:"services"`
	// Allow lists prefixes that always pass (the edge's resolvers, origins,
	// monitoring). Runtime additions go through rampartctl.
	Allow         []netip.Prefix `yaml:"allow"`
	SweepInterval time.Duration  `yaml:"sweep_interval"`
	Capacity      Capacity       `yaml:"capacity"`
}

// RateLimit holds the per-source token buckets. Attack limits apply to
// packets toward addresses switched to attack mode and must be stricter.
type RateLimit struct {
	Enabled bool `yaml:"enabled"`
	// Batch is how many packets a source well under its limits may pass
	// (per CPU) before they are charged to its bucket together; a source
	// with less room than that in any bucket is judged packet by packet.
	// 1 judges every packet (exact, and the most costly).
	Batch  uint32 `yaml:"batch"`
	Normal Limits `yaml:"normal"`
	Attack Limits `yaml:"attack"`
}

// Limits are rates per source address (IPv6 by /64). A zero rate turns that
// bucket off; bursts say how much may arrive at once.
type Limits struct {
	PacketsPerSecond uint64 `yaml:"packets_per_second"`
	PacketBurst      uint64 `yaml:"packet_burst"`
	BytesPerSecond   uint64 `yaml:"bytes_per_second"`
	ByteBurst        uint64 `yaml:"byte_burst"`
	SYNsPerSecond    uint64 `yaml:"syns_per_second"`
	SYNBurst         uint64 `yaml:"syn_burst"`
}

// Service is a set of ports this edge serves on a set of addresses.
type Service struct {
	Addrs []netip.Addr `yaml:"addrs"`
	TCP   []uint16     `yaml:"tcp"`
	UDP   []uint16     `yaml:"udp"`
}

// Capacity sizes every map. All are fixed at load; under a flood the rate
// table evicts least recently used sources instead of growing.
type Capacity struct {
	RateSources uint32 `yaml:"rate_sources"`
	// SourceCacheSlots is the per-CPU cache of recent sources (a power of
	// two): each slot remembers a source's list verdict and pending rate
	// accounting, so repeat packets need no hash or trie lookup.
	SourceCacheSlots uint32 `yaml:"source_cache_slots"`
	AllowPrefixes    uint32 `yaml:"allow_prefixes"`
	BlockPrefixes    uint32 `yaml:"block_prefixes"`
	Services         uint32 `yaml:"services"`
	AttackAddrs      uint32 `yaml:"attack_addrs"`
	SampleRingBytes  uint32 `yaml:"sample_ring_bytes"`
}

// DefaultReflectionPorts are the usual UDP amplification sources: echo,
// chargen, DNS, NTP, NetBIOS, SNMP, CLDAP, SSDP, RIPv1, memcached, WS-Discovery,
// ARD, CoAP, Ubiquiti discovery, mDNS, QOTD, Portmap, MSSQL, TFTP, OpenVPN,
// Jenkins discovery and others.
var DefaultReflectionPorts = []uint16{
	7, 17, 19, 53, 69, 111, 123, 137, 161, 389, 427, 520, 1194, 1434, 1900,
	3283, 3702, 5353, 5683, 10001, 11211, 27015, 33848, 37810,
}

// maxPacketRate keeps a packet's cost above a dozen ticks even at HZ=100
// (100 jiffies/s × 2^24 ticks/jiffy = 1.7 G ticks/s), so rounding stays
// under 10 %.
const maxPacketRate = 100_000_000

// maxBucketDepth bounds a bucket at an hour of its rate: deeper ones are
// no limit at all, and their tick arithmetic would overflow.
const maxBucketDepth = time.Hour

// minBucketDepth keeps every bucket deeper than the filter's clock step
// (one jiffy, 4 ms at HZ=250): a shallower bucket could not refill between
// steps and would hold a source below its configured rate.
const minBucketDepth = 10 * time.Millisecond

// Validate returns every problem in the section, each with its field path.
func (c *Config) Validate() error {
	p := check.New("")
	if c.Fragments != "drop" && c.Fragments != "pass" {
		p.Addf("fragments", `must be "drop" or "pass", got %q`, c.Fragments)
	}
	for i, port := range c.ReflectionPorts {
		if port == 0 {
			p.Addf("reflection_ports["+strconv.Itoa(i)+"]", "port 0 is not a source port")
		}
	}
	c.RateLimit.validate(p.In("rate_limit"))
	for i, s := range c.Services {
		sp := p.In("services[" + strconv.Itoa(i) + "]")
		if len(s.Addrs) == 0 {
			sp.Addf("addrs", "at least one address is required")
		}
		for j, a := range s.Addrs {
			if !a.IsValid() || a.IsUnspecified() {
				sp.Addf("addrs["+strconv.Itoa(j)+"]", "must be a unicast address, got %q", a.String())
			}
		}
		if len(s.TCP)+len(s.UDP) == 0 {
			sp.Addf("tcp", "a service needs at least one tcp or udp port")
		}
		if slices.Contains(s.TCP, 0) || slices.Contains(s.UDP, 0) {
			sp.Addf("tcp", "port 0 cannot be served")
		}
	}
	for i, a := range c.Allow {
		if !a.IsValid() {
			p.Addf("allow["+strconv.Itoa(i)+"]", "invalid prefix")
		}
	}
	if c.SweepInterval < 100*time.Millisecond || c.SweepInterval > time.Hour {
		p.Addf("sweep_interval", "must be in 100ms..1h, got %s", c.SweepInterval)
	}
	cp := p.In("capacity")
	check.Range(cp, "rate_sources", c.Capacity.RateSources, 1024, 1<<26)
	if n := c.Capacity.SourceCacheSlots; n < 1024 || n > 1<<22 || n&(n-1) != 0 {
		cp.Addf("source_cache_slots", "must be a power of two in 1024..4194304, got %d", n)
	}
	check.Range(cp, "allow_prefixes", c.Capacity.AllowPrefixes, 16, 1<<24)
	check.Range(cp, "block_prefixes", c.Capacity.BlockPrefixes, 16, 1<<24)
	check.Range(cp, "services", c.Capacity.Services, 16, 1<<20)
	check.Range(cp, "attack_addrs", c.Capacity.AttackAddrs, 16, 1<<20)
	r := c.Capacity.SampleRingBytes
	if r < 4096 || r > 1<<30 || r&(r-1) != 0 {
		cp.Addf("sample_ring_bytes", "must be a power of two in 4096..1073741824, got %d", r)
	}
	var services uint32
	for _, s := range c.Services {
		services += uint32(len(s.Addrs) * (len(s.TCP) + len(s.UDP)))
	}
	if services > c.Capacity.Services {
		p.Addf("services", "%d (address, port) pairs exceed capacity.services %d", services, c.Capacity.Services)
	}
	if uint32(len(c.Allow)) > c.Capacity.AllowPrefixes {
		p.Addf("allow", "%d prefixes exceed capacity.allow_prefixes %d", len(c.Allow), c.Capacity.AllowPrefixes)
	}
	return p.Err()
}

func (r *RateLimit) validate(p check.Problems) {
	if !r.Enabled {
		return
	}
	check.Range(p, "batch", r.Batch, 1, 64)
	r.Normal.validate(p.In("normal"))
	r.Attack.validate(p.In("attack"))
	stricter := func(field string, attack, normal uint64) {
		if normal != 0 && (attack == 0 || attack > normal) {
			p.Addf("attack."+field, "must be stricter than normal (1..%d), got %d", normal, attack)
		}
	}
	stricter("packets_per_second", r.Attack.PacketsPerSecond, r.Normal.PacketsPerSecond)
	stricter("bytes_per_second", r.Attack.BytesPerSecond, r.Normal.BytesPerSecond)
	stricter("syns_per_second", r.Attack.SYNsPerSecond, r.Normal.SYNsPerSecond)
}

func (l *Limits) validate(p check.Problems) {
	bucket := func(rateField, burstField string, rate, burst, maxRate, minBurst uint64) {
		if rate == 0 {
			return
		}
		if rate > maxRate {
			p.Addf(rateField, "must be at most %d, got %d", maxRate, rate)
			return
		}
		if burst < minBurst {
			p.Addf(burstField, "must be at least %d, got %d", minBurst, burst)
			return
		}
		if burst > rate*uint64(maxBucketDepth/time.Second) {
			p.Addf(burstField, "must cover at most %s at %d/s (at most %d), got %d",
				maxBucketDepth, rate, rate*uint64(maxBucketDepth/time.Second), burst)
			return
		}
		if time.Duration(burst*uint64(time.Second)/rate) < minBucketDepth {
			p.Addf(burstField, "must cover at least %s at %d/s (at least %d), got %d",
				minBucketDepth, rate, (rate*uint64(minBucketDepth)+uint64(time.Second)-1)/uint64(time.Second), burst)
		}
	}
	bucket("packets_per_second", "packet_burst", l.PacketsPerSecond, l.PacketBurst, maxPacketRate, 1)
	if l.BytesPerSecond != 0 && l.BytesPerSecond < 1000 {
		p.Addf("bytes_per_second", "must be 0 (off) or at least 1000, got %d", l.BytesPerSecond)
	}
	bucket("bytes_per_second", "byte_burst", l.BytesPerSecond, l.ByteBurst, 1<<40, 1514)
	bucket("syns_per_second", "syn_burst", l.SYNsPerSecond, l.SYNBurst, maxPacketRate, 1)
}
