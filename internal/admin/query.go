package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-edge/rampart/flowtable"
)

// Query is a parsed, normalised request for a table dump.
//
// Without Top, the table is streamed in table order, at most Limit lines
// (0: every entry). With Top, the Top highest entries by By are sent,
// highest first; an explicit limit lower than top lowers Top, and Limit
// then equals Top.
type Query struct {
	Src       netip.Prefix // invalid: any source
	Zone      uint32
	MatchZone bool // flows only
	MinScore  uint8
	Limit     int
	Top       int
	By        string // an order name when Top > 0, else ""
}

// FlowFilter is the query's filter for flows.
func (q *Query) FlowFilter() flowtable.FlowFilter {
	return flowtable.FlowFilter{Src: q.Src, Zone: q.Zone, MatchZone: q.MatchZone, MinScore: q.MinScore}
}

// VisitorFilter is the query's filter for visitors.
func (q *Query) VisitorFilter() flowtable.VisitorFilter {
	return flowtable.VisitorFilter{Prefix: q.Src, MinScore: q.MinScore}
}

// Values encodes the query so that parsing it again gives the same Query.
func (q *Query) Values() url.Values {
	v := url.Values{}
	if q.Src.IsValid() {
		v.Set("src", q.Src.String())
	}
	if q.MatchZone {
		v.Set("zone", strconv.FormatUint(uint64(q.Zone), 10))
	}
	if q.MinScore > 0 {
		v.Set("min_score", strconv.Itoa(int(q.MinScore)))
	}
	v.Set("limit", strconv.Itoa(q.Limit))
	if q.Top > 0 {
		v.Set("top", strconv.Itoa(q.Top))
		v.Set("by", q.By)
	}
	return v
}

type tableKind uint8

const (
	flowsTable tableKind = iota
	visitorsTable
)

// ParseFlowQuery parses the query string of GET /flows:
//
//	src=ADDR|PREFIX   flows whose source is inside (IPv4 or IPv6)
//	zone=N            flows of zone N (0: not yet assigned)
//	min_score=N       flows scored N (0..100) or more
//	limit=N           at most N lines (default o.DefaultLimit; 0: all)
//	top=N&by=ORDER    the N highest by bytes (default), requests or score
//
// Unknown or repeated parameters are errors, so a typo never widens a
// query silently. Every problem is returned, joined.
func ParseFlowQuery(raw string, o Options) (Query, error) {
	return parseQuery(flowsTable, raw, o.withDefaults())
}

// ParseVisitorQuery parses the query string of GET /visitors: as
// ParseFlowQuery, without zone; src matches visitors whose prefix (an
// IPv4 address or an IPv6 /64) overlaps it, and by is rate (default),
// errors, blocks or score.
func ParseVisitorQuery(raw string, o Options) (Query, error) {
	return parseQuery(visitorsTable, raw, o.withDefaults())
}

func parseQuery(kind tableKind, raw string, o Options) (Query, error) {
	known := []string{"src", "zone", "min_score", "limit", "top", "by"}
	if kind == visitorsTable {
		known = slices.DeleteFunc(known, func(s string) bool { return s == "zone" })
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return Query{}, fmt.Errorf("malformed query string: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys) // problems in a stable order
	get := map[string]string{}
	for _, k := range keys {
		switch {
		case !slices.Contains(known, k):
			bad("unknown parameter %q (want %s)", k, strings.Join(known, ", "))
		case len(vals[k]) > 1:
			bad("parameter %q given %d times", k, len(vals[k]))
		case vals[k][0] == "":
			bad("parameter %q is empty", k)
		default:
			get[k] = vals[k][0]
		}
	}

	var q Query
	if s, ok := get["src"]; ok {
		if q.Src, err = ParsePrefix(s); err != nil {
			bad("src: %w", err)
		}
	}
	if s, ok := get["zone"]; ok {
		z, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			bad("zone: want a zone number 0..%d, got %q", uint32(1<<32-1), s)
		}
		q.Zone, q.MatchZone = uint32(z), true
	}
	if s, ok := get["min_score"]; ok {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil || n > 100 {
			bad("min_score: want a score 0..100, got %q", s)
		}
		q.MinScore = uint8(min(n, 100))
	}
	limit, limitSet := o.DefaultLimit, false
	if s, ok := get["limit"]; ok {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 0:
			bad("limit: want a count of lines (0: all), got %q", s)
		case o.MaxLimit > 0 && (n == 0 || n > o.MaxLimit):
			bad("limit: must be in 1..%d here, got %d", o.MaxLimit, n)
		default:
			limit, limitSet = n, true
		}
	}
	if s, ok := get["top"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > o.MaxTop {
			bad("top: want a count 1..%d, got %q", o.MaxTop, s)
		}
		q.Top = n
	}
	if s, ok := get["by"]; ok {
		if _, ok := get["top"]; !ok {
			bad("by=%s needs top=N", s)
		}
		q.By = s
		var err error
		if kind == flowsTable {
			_, err = flowtable.ParseFlowOrder(s)
		} else {
			_, err = flowtable.ParseVisitorOrder(s)
		}
		if err != nil {
			bad("by: %w", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Query{}, err
	}
	q.Limit = limit
	if q.Top > 0 {
		if q.By == "" {
			q.By = flowtable.FlowsByBytes.String()
			if kind == visitorsTable {
				q.By = flowtable.VisitorsByRate.String()
			}
		}
		if limitSet && limit > 0 {
			q.Top = min(q.Top, limit)
		}
		q.Limit = q.Top
	}
	return q, nil
}

// ParsePrefix reads a filter prefix: ADDR/BITS, or a bare address meaning
// /32 or /128. IPv4-mapped IPv6 becomes IPv4, as the tables' keys are
// shown. Host bits must be clear: "10.1.2.3/8" is more likely a typo for
// /24 or /32 than a wish to see all of 10.0.0.0/8.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q: want ADDR or ADDR/BITS", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: want ADDR or ADDR/BITS", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q: mixes IPv4-mapped and other IPv6 addresses", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: host bits set; did you mean %s or %s?",
			s, m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}
