package flowtable

import (
	"encoding/binary"
	"net/netip"
)

// FlowKey is a connection's 5-tuple, IPv4 as IPv4-mapped IPv6. Every byte
// is a field (no padding): keys are hashed as bytes.
type FlowKey struct {
	Src   [16]byte
	Dst   [16]byte
	Ports [4]byte // source then destination, big-endian
	Proto uint8
}

// NewFlowKey builds the key of a flow from src to dst.
func NewFlowKey(src, dst netip.AddrPort, proto uint8) FlowKey {
	k := FlowKey{Src: src.Addr().As16(), Dst: dst.Addr().As16(), Proto: proto}
	binary.BigEndian.PutUint16(k.Ports[0:], src.Port())
	binary.BigEndian.PutUint16(k.Ports[2:], dst.Port())
	return k
}

// Source is the flow's source address and port.
func (k *FlowKey) Source() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.Src).Unmap(), binary.BigEndian.Uint16(k.Ports[0:]))
}

// Destination is the flow's destination address and port.
func (k *FlowKey) Destination() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.Dst).Unmap(), binary.BigEndian.Uint16(k.Ports[2:]))
}

// Verdict is what the pipeline decided for a flow or a visitor.
type Verdict uint8

const (
	VerdictNone Verdict = iota
	VerdictAllow
	VerdictChallenge
	VerdictTarpit
	VerdictRateDelay
	VerdictBlock
)

var verdictNames = [...]string{"none", "allow", "challenge", "tarpit", "rate_delay", "block"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Flow is one connection's state: 48 bytes, so that ten million flows with
// IPv6-capable keys fit in under a GiB.
type Flow struct {
	Created     int64 // unix ns
	LastSeen    int64 // unix ns
	BytesIn     uint64
	BytesOut    uint64
	RequestsIn  uint32
	RequestsOut uint32
	Zone        uint32 // zone id from the profile; 0 = none yet
	Loop        uint16 // owning event loop
	Verdict     Verdict
	Score       uint8 // threat score 0..100
}

// Flows is the table of connections.
type Flows = Table[FlowKey, Flow]

// NewFlows makes a flow table of the given capacity.
func NewFlows(capacity int) (*Flows, error) { return New[FlowKey, Flow](capacity) }
