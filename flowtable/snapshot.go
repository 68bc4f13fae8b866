package flowtable

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Entry is one key and its value, copied out of a table.
type Entry[K comparable, V any] struct {
	Key   K
	Value V
}

// TopN returns up to n entries for which keep returns true (a nil keep
// keeps all), ranked by rank, highest first: rank(a, b) > 0 when a ranks
// above b. It walks the table once with Range and so sees the same weakly
// consistent snapshot; writers are never held up beyond Range's per-slot
// read. It holds at most n entries (a min-heap of the best so far), never a
// copy of the table, so n bounds its memory: callers cap n.
func (t *Table[K, V]) TopN(n int, keep func(k *K, v *V) bool, rank func(a, b *Entry[K, V]) int) []Entry[K, V] {
	if n <= 0 {
		return nil
	}
	h := make([]Entry[K, V], 0, min(n, max(t.Len(), 16)))
	// Candidates are built in one place: a fresh variable per entry would
	// escape to the heap through rank (a func value) at every entry.
	cand := new(Entry[K, V])
	t.Range(func(k *K, v *V) bool {
		if keep != nil && !keep(k, v) {
			return true
		}
		cand.Key, cand.Value = *k, *v
		if len(h) < n {
			h = append(h, *cand)
			heapUp(h, len(h)-1, rank)
		} else if rank(cand, &h[0]) > 0 {
			h[0] = *cand
			heapDown(h, 0, rank)
		}
		return true
	})
	// Heap sort in place: each pass moves the lowest left to the end, so
	// h ends highest first, with no allocation per comparison.
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		heapDown(h[:end], 0, rank)
	}
	return h
}

// heapUp and heapDown keep h a min-heap under rank: h[0] ranks lowest, so
// it is the one a better entry replaces.
func heapUp[K comparable, V any](h []Entry[K, V], i int, rank func(a, b *Entry[K, V]) int) {
	for i > 0 {
		p := (i - 1) / 2
		if rank(&h[i], &h[p]) >= 0 {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func heapDown[K comparable, V any](h []Entry[K, V], i int, rank func(a, b *Entry[K, V]) int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		least := l
		if r := l + 1; r < len(h) && rank(&h[r], &h[l]) < 0 {
			least = r
		}
		if rank(&h[least], &h[i]) >= 0 {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

// FlowOrder is what TopFlows ranks flows by.
type FlowOrder uint8

const (
	FlowsByBytes    FlowOrder = iota + 1 // bytes in + out
	FlowsByRequests                      // requests in + out
	FlowsByScore                         // threat score
)

var flowOrderNames = [...]string{FlowsByBytes: "bytes", FlowsByRequests: "requests", FlowsByScore: "score"}

func (o FlowOrder) String() string {
	if o > 0 && int(o) < len(flowOrderNames) {
		return flowOrderNames[o]
	}
	return fmt.Sprintf("FlowOrder(%d)", uint8(o))
}

// ParseFlowOrder reads "bytes", "requests" or "score".
func ParseFlowOrder(s string) (FlowOrder, error) {
	for o, name := range flowOrderNames {
		if o > 0 && s == name {
			return FlowOrder(o), nil
		}
	}
	return 0, fmt.Errorf("unknown flow order %q: want bytes, requests or score", s)
}

// VisitorOrder is what TopVisitors ranks visitors by.
type VisitorOrder uint8

const (
	VisitorsByRate   VisitorOrder = iota + 1 // requests per second over the last RateWindows seconds
	VisitorsByErrors                         // error count
	VisitorsByBlocks                         // block count
	VisitorsByScore                          // threat score
)

var visitorOrderNames = [...]string{VisitorsByRate: "rate", VisitorsByErrors: "errors", VisitorsByBlocks: "blocks", VisitorsByScore: "score"}

func (o VisitorOrder) String() string {
	if o > 0 && int(o) < len(visitorOrderNames) {
		return visitorOrderNames[o]
	}
	return fmt.Sprintf("VisitorOrder(%d)", uint8(o))
}

// ParseVisitorOrder reads "rate", "errors", "blocks" or "score".
func ParseVisitorOrder(s string) (VisitorOrder, error) {
	for o, name := range visitorOrderNames {
		if o > 0 && s == name {
			return VisitorOrder(o), nil
		}
	}
	return 0, fmt.Errorf("unknown visitor order %q: want rate, errors, blocks or score", s)
}

// FlowFilter selects flows; the zero value selects every flow.
type FlowFilter struct {
	// Src, when valid, must contain the flow's source address. IPv4 is
	// written as IPv4 (198.51.100.0/24), not IPv4-mapped IPv6.
	Src netip.Prefix
	// Zone is compared only when MatchZone is set, since zone 0 (none
	// yet) is a zone one may want to see.
	Zone      uint32
	MatchZone bool
	MinScore  uint8
}

// Match reports whether the filter selects the flow.
func (f *FlowFilter) Match(k *FlowKey, v *Flow) bool {
	if v.Score < f.MinScore || (f.MatchZone && v.Zone != f.Zone) {
		return false
	}
	return !f.Src.IsValid() || f.Src.Contains(netip.AddrFrom16(k.Src).Unmap())
}

// VisitorFilter selects visitors; the zero value selects every visitor.
type VisitorFilter struct {
	// Prefix, when valid, must overlap the visitor's prefix: an address
	// selects the visitor it belongs to (its /64 for IPv6), a wider
	// prefix every visitor inside it. IPv4 is written as IPv4.
	Prefix   netip.Prefix
	MinScore uint8
}

// Match reports whether the filter selects the visitor.
func (f *VisitorFilter) Match(k *VisitorKey, v *Visitor) bool {
	if v.Score < f.MinScore {
		return false
	}
	return !f.Prefix.IsValid() || f.Prefix.Overlaps(k.Prefix())
}

// TopFlows returns the n flows the filter selects that rank highest by
// order, highest first (see FlowRank).
func TopFlows(t *Flows, f FlowFilter, by FlowOrder, n int) []Entry[FlowKey, Flow] {
	return t.TopN(n, f.Match, FlowRank(by))
}

// FlowRank orders flows for TopN by the given order; ties go to the lower
// key, so that the answer is deterministic for a quiet table. It panics
// on an order that is not one of the constants.
func FlowRank(by FlowOrder) func(a, b *Entry[FlowKey, Flow]) int {
	var metric func(v *Flow) uint64
	switch by {
	case FlowsByBytes:
		metric = func(v *Flow) uint64 { return satAdd(v.BytesIn, v.BytesOut) }
	case FlowsByRequests:
		metric = func(v *Flow) uint64 { return uint64(v.RequestsIn) + uint64(v.RequestsOut) }
	case FlowsByScore:
		metric = func(v *Flow) uint64 { return uint64(v.Score) }
	default:
		panic(fmt.Sprintf("flowtable: rank flows by %v", by))
	}
	return func(a, b *Entry[FlowKey, Flow]) int {
		if c := cmp.Compare(metric(&a.Value), metric(&b.Value)); c != 0 {
			return c
		}
		return compareFlowKeys(&b.Key, &a.Key)
	}
}

// TopVisitors returns the n visitors the filter selects that rank highest
// by order, highest first, with rates taken at now (see VisitorRank).
func TopVisitors(t *Visitors, f VisitorFilter, by VisitorOrder, n int, now time.Time) []Entry[VisitorKey, Visitor] {
	return t.TopN(n, f.Match, VisitorRank(by, now))
}

// VisitorRank orders visitors for TopN by the given order, with rates
// taken at now; ties go to the lower key. It panics on an order that is
// not one of the constants.
func VisitorRank(by VisitorOrder, now time.Time) func(a, b *Entry[VisitorKey, Visitor]) int {
	sec := now.Unix()
	var metric func(v *Visitor) uint64
	switch by {
	case VisitorsByRate:
		metric = func(v *Visitor) uint64 { return WindowRequests(v, sec) }
	case VisitorsByErrors:
		metric = func(v *Visitor) uint64 { return uint64(v.Errors) }
	case VisitorsByBlocks:
		metric = func(v *Visitor) uint64 { return uint64(v.Blocks) }
	case VisitorsByScore:
		metric = func(v *Visitor) uint64 { return uint64(v.Score) }
	default:
		panic(fmt.Sprintf("flowtable: rank visitors by %v", by))
	}
	return func(a, b *Entry[VisitorKey, Visitor]) int {
		if c := cmp.Compare(metric(&a.Value), metric(&b.Value)); c != 0 {
			return c
		}
		return bytes.Compare(b.Key[:], a.Key[:])
	}
}

// WindowRequests is the number of requests counted in the RateWindows
// seconds up to and including sec: Rate(sec) × RateWindows, as an integer.
func WindowRequests(v *Visitor, sec int64) uint64 {
	return uint64(math.Round(v.Rate(sec) * RateWindows))
}

func compareFlowKeys(a, b *FlowKey) int {
	if c := bytes.Compare(a.Src[:], b.Src[:]); c != 0 {
		return c
	}
	if c := bytes.Compare(a.Dst[:], b.Dst[:]); c != 0 {
		return c
	}
	if c := bytes.Compare(a.Ports[:], b.Ports[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Proto, b.Proto)
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}
