package xdp

import "fmt"

// Reason says why the filter passed or dropped a packet. Every verdict has
// exactly one reason, and each reason has its own per-CPU counter.
type Reason uint32

// The values come from the C enum through bpf2go, so Go and BPF cannot drift.
const (
	ReasonPass             = Reason(filterReasonREASON_PASS)
	ReasonAllowlist        = Reason(filterReasonREASON_PASS_ALLOWLIST)
	ReasonNonIP            = Reason(filterReasonREASON_PASS_NON_IP)
	ReasonFragmentPassed   = Reason(filterReasonREASON_PASS_FRAGMENT)
	ReasonEthTruncated     = Reason(filterReasonREASON_DROP_ETH_TRUNCATED)
	ReasonVLANTruncated    = Reason(filterReasonREASON_DROP_VLAN_TRUNCATED)
	ReasonVLANTooDeep      = Reason(filterReasonREASON_DROP_VLAN_TOO_DEEP)
	ReasonIPv4Truncated    = Reason(filterReasonREASON_DROP_IPV4TRUNCATED)
	ReasonIPv4BadVersion   = Reason(filterReasonREASON_DROP_IPV4BAD_VERSION)
	ReasonIPv4BadIHL       = Reason(filterReasonREASON_DROP_IPV4BAD_IHL)
	ReasonIPv4BadLength    = Reason(filterReasonREASON_DROP_IPV4BAD_LENGTH)
	ReasonIPv6Truncated    = Reason(filterReasonREASON_DROP_IPV6TRUNCATED)
	ReasonIPv6BadVersion   = Reason(filterReasonREASON_DROP_IPV6BAD_VERSION)
	ReasonIPv6BadLength    = Reason(filterReasonREASON_DROP_IPV6BAD_LENGTH)
	ReasonIPv6ExtTruncated = Reason(filterReasonREASON_DROP_IPV6EXT_TRUNCATED)
	ReasonIPv6ExtChain     = Reason(filterReasonREASON_DROP_IPV6EXT_CHAIN)
	ReasonTCPTruncated     = Reason(filterReasonREASON_DROP_TCP_TRUNCATED)
	ReasonTCPBadOffset     = Reason(filterReasonREASON_DROP_TCP_BAD_OFFSET)
	ReasonUDPTruncated     = Reason(filterReasonREASON_DROP_UDP_TRUNCATED)
	ReasonUDPBadLength     = Reason(filterReasonREASON_DROP_UDP_BAD_LENGTH)
	ReasonBlocklist        = Reason(filterReasonREASON_DROP_BLOCKLIST)
	ReasonFragmentDropped  = Reason(filterReasonREASON_DROP_FRAGMENT)
	ReasonTCPFlags         = Reason(filterReasonREASON_DROP_TCP_FLAGS)
	ReasonUDPReflection    = Reason(filterReasonREASON_DROP_UDP_REFLECTION)
	ReasonNotServed        = Reason(filterReasonREASON_DROP_NOT_SERVED)
	ReasonRatePackets      = Reason(filterReasonREASON_DROP_RATE_PACKETS)
	ReasonRateBytes        = Reason(filterReasonREASON_DROP_RATE_BYTES)
	ReasonRateSYN          = Reason(filterReasonREASON_DROP_RATE_SYN)
	ReasonIPv6Mapped       = Reason(filterReasonREASON_DROP_IPV6MAPPED)
	ReasonInternal         = Reason(filterReasonREASON_DROP_INTERNAL)
	firstDrop              = Reason(filterReasonREASON_FIRST_DROP)
	reasonCount            = int(filterReasonREASON_MAX)
)

var reasonNames = [...]string{
	ReasonPass:             "pass",
	ReasonAllowlist:        "allowlist",
	ReasonNonIP:            "non_ip",
	ReasonFragmentPassed:   "fragment_passed",
	ReasonEthTruncated:     "eth_truncated",
	ReasonVLANTruncated:    "vlan_truncated",
	ReasonVLANTooDeep:      "vlan_too_deep",
	ReasonIPv4Truncated:    "ipv4_truncated",
	ReasonIPv4BadVersion:   "ipv4_bad_version",
	ReasonIPv4BadIHL:       "ipv4_bad_ihl",
	ReasonIPv4BadLength:    "ipv4_bad_length",
	ReasonIPv6Truncated:    "ipv6_truncated",
	ReasonIPv6BadVersion:   "ipv6_bad_version",
	ReasonIPv6BadLength:    "ipv6_bad_length",
	ReasonIPv6ExtTruncated: "ipv6_ext_truncated",
	ReasonIPv6ExtChain:     "ipv6_ext_chain",
	ReasonTCPTruncated:     "tcp_truncated",
	ReasonTCPBadOffset:     "tcp_bad_offset",
	ReasonUDPTruncated:     "udp_truncated",
	ReasonUDPBadLength:     "udp_bad_length",
	ReasonBlocklist:        "blocklist",
	ReasonFragmentDropped:  "fragment",
	ReasonTCPFlags:         "tcp_flags",
	ReasonUDPReflection:    "udp_reflection",
	ReasonNotServed:        "not_served",
	ReasonRatePackets:      "rate_packets",
	ReasonRateBytes:        "rate_bytes",
	ReasonRateSYN:          "rate_syn",
	ReasonIPv6Mapped:       "ipv6_mapped",
	ReasonInternal:         "internal",
}

// Reasons lists every reason in counter order.
func Reasons() []Reason {
	r := make([]Reason, reasonCount)
	for i := range r {
		r[i] = Reason(i)
	}
	return r
}

// Dropped reports whether packets with this reason are dropped.
func (r Reason) Dropped() bool { return r >= firstDrop }

// Verdict is "pass" or "drop".
func (r Reason) Verdict() string {
	if r.Dropped() {
		return "drop"
	}
	return "pass"
}

// String is the reason's stable snake_case name, used as a metric label and
// in tool output.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// ParseReason is the inverse of String.
func ParseReason(s string) (Reason, error) {
	for i, n := range reasonNames {
		if n == s {
			return Reason(i), nil
		}
	}
	return 0, fmt.Errorf("unknown reason %q", s)
}
