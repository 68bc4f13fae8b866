package flowtable

import "net/netip"

// VisitorKey is a source address: IPv4 as IPv4-mapped IPv6, IPv6 by its
// /64 (the host bits zeroed), because one IPv6 host owns a whole /64.
type VisitorKey [16]byte

// NewVisitorKey is the key of the visitor an address belongs to.
func NewVisitorKey(a netip.Addr) VisitorKey {
	k := VisitorKey(a.As16())
	if !a.Unmap().Is4() {
		clear(k[8:])
	}
	return k
}

// Prefix is the address (/32) or /64 the key stands for.
func (k VisitorKey) Prefix() netip.Prefix {
	a := netip.AddrFrom16(k).Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	return netip.PrefixFrom(a, 64)
}

// RateWindows is how many one-second request counters a visitor keeps.
const RateWindows = 8

// Visitor is one source's behaviour across all its connections.
type Visitor struct {
	FirstSeen int64 // unix ns
	LastSeen  int64 // unix ns
	// Requests counts requests per second in a ring indexed by
	// (unix second % RateWindows); WindowStart is the unix second of
	// slot 0's oldest entry still valid (see Rate).
	Requests    [RateWindows]uint32
	WindowStart int64
	Errors      uint32 // 4xx/5xx and malformed requests
	Blocks      uint32 // times a stage blocked or challenged it
	Connections uint32
	Score       uint8 // threat score 0..100
	Verdict     Verdict
	_pad        [2]uint8
}

// Count records n requests at unix second sec, clearing counters of
// seconds that have slid out of the window.
func (v *Visitor) Count(sec int64, n uint32) {
	if sec >= v.WindowStart+RateWindows {
		// Clear the seconds between the newest counted and sec.
		start := max(v.WindowStart+RateWindows, sec-RateWindows+1)
		for s := start; s <= sec; s++ {
			v.Requests[s%RateWindows] = 0
		}
		v.WindowStart = sec - RateWindows + 1
	}
	if sec >= v.WindowStart {
		v.Requests[sec%RateWindows] += n
	}
}

// Rate is the requests per second over the last RateWindows seconds
// before and including sec.
func (v *Visitor) Rate(sec int64) float64 {
	var sum uint32
	for s := max(v.WindowStart, sec-RateWindows+1); s <= sec && s < v.WindowStart+RateWindows; s++ {
		sum += v.Requests[s%RateWindows]
	}
	return float64(sum) / RateWindows
}

// Visitors is the table of sources.
type Visitors = Table[VisitorKey, Visitor]

// NewVisitors makes a visitor table of the given capacity.
func NewVisitors(capacity int) (*Visitors, error) { return New[VisitorKey, Visitor](capacity) }
