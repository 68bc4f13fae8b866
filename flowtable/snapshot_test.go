package flowtable_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

// snapFlowKey is the i-th flow of the snapshot tests (i < 2^24): sources
// spread over 10.0.0.0/8 and 2001:db8::/40, to port 443 of two edge
// addresses.
func snapFlowKey(i int) flowtable.FlowKey {
	var src, dst netip.Addr
	if i%3 == 2 {
		src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
		dst = netip.MustParseAddr("2001:db8:ffff::1")
	} else {
		src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		dst = netip.MustParseAddr("198.18.0.1")
	}
	return flowtable.NewFlowKey(netip.AddrPortFrom(src, uint16(40000+i%1000)), netip.AddrPortFrom(dst, 443), 6)
}

func snapFlow(r *rand.Rand) flowtable.Flow {
	return flowtable.Flow{
		Created: 1e18, LastSeen: 1e18 + r.Int64N(1e9),
		BytesIn: r.Uint64N(1 << 20), BytesOut: r.Uint64N(1 << 20),
		RequestsIn: r.Uint32N(50), RequestsOut: r.Uint32N(50),
		Zone: r.Uint32N(4), Loop: uint16(r.IntN(2)), Score: uint8(r.IntN(101)),
		Verdict: flowtable.Verdict(r.IntN(6)),
	}
}

// fillFlows puts n flows in a new table and returns them as a map.
func fillFlows(t testing.TB, capacity, n int) (*flowtable.Flows, map[flowtable.FlowKey]flowtable.Flow) {
	t.Helper()
	ft, err := flowtable.NewFlows(capacity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ft.Close() })
	r := rand.New(rand.NewPCG(1, uint64(n)))
	want := map[flowtable.FlowKey]flowtable.Flow{}
	for i := range n {
		k, v := snapFlowKey(i), snapFlow(r)
		ft.Upsert(k, func(p *flowtable.Flow, _ bool) { *p = v })
		want[k] = v
	}
	if ft.Len() != n || ft.Evictions() != 0 {
		t.Fatalf("table holds %d (evicted %d), want %d: raise the test capacity", ft.Len(), ft.Evictions(), n)
	}
	return ft, want
}

func TestTopFlowsMatchesSort(t *testing.T) {
	ft, all := fillFlows(t, 4096, 2000)
	filters := []struct {
		name string
		f    flowtable.FlowFilter
	}{
		{"all", flowtable.FlowFilter{}},
		{"v4 prefix", flowtable.FlowFilter{Src: netip.MustParsePrefix("10.0.3.0/24")}},
		{"v6 prefix", flowtable.FlowFilter{Src: netip.MustParsePrefix("2001:db8::/48")}},
		{"zone 0", flowtable.FlowFilter{MatchZone: true}},
		{"zone 2 score 50", flowtable.FlowFilter{MatchZone: true, Zone: 2, MinScore: 50}},
		{"nothing", flowtable.FlowFilter{Src: netip.MustParsePrefix("192.0.2.0/24")}},
	}
	orders := []flowtable.FlowOrder{flowtable.FlowsByBytes, flowtable.FlowsByRequests, flowtable.FlowsByScore}
	for _, fc := range filters {
		for _, by := range orders {
			for _, n := range []int{0, 1, 7, 100, 5000} {
				t.Run(fmt.Sprintf("%s/%s/%d", fc.name, by, n), func(t *testing.T) {
					got := flowtable.TopFlows(ft, fc.f, by, n)
					var ref []flowtable.Entry[flowtable.FlowKey, flowtable.Flow]
					for k, v := range all {
						if fc.f.Match(&k, &v) {
							ref = append(ref, flowtable.Entry[flowtable.FlowKey, flowtable.Flow]{Key: k, Value: v})
						}
					}
					rank := flowtable.FlowRank(by)
					slices.SortFunc(ref, func(a, b flowtable.Entry[flowtable.FlowKey, flowtable.Flow]) int { return rank(&b, &a) })
					ref = ref[:min(n, len(ref))]
					if len(got) != len(ref) {
						t.Fatalf("got %d entries, want %d", len(got), len(ref))
					}
					for i := range got {
						if got[i] != ref[i] {
							t.Fatalf("entry %d: got %v, want %v", i, got[i], ref[i])
						}
					}
				})
			}
		}
	}
}

func TestFlowRankOrders(t *testing.T) {
	e := func(i int, bytesIn, bytesOut uint64, reqIn, reqOut uint32, score uint8) flowtable.Entry[flowtable.FlowKey, flowtable.Flow] {
		return flowtable.Entry[flowtable.FlowKey, flowtable.Flow]{Key: snapFlowKey(i),
			Value: flowtable.Flow{BytesIn: bytesIn, BytesOut: bytesOut, RequestsIn: reqIn, RequestsOut: reqOut, Score: score}}
	}
	tests := []struct {
		name string
		by   flowtable.FlowOrder
		a, b flowtable.Entry[flowtable.FlowKey, flowtable.Flow]
		want int // sign of rank(a, b)
	}{
		{"bytes sums both ways", flowtable.FlowsByBytes, e(1, 10, 10, 0, 0, 0), e(2, 15, 0, 0, 0, 0), 1},
		{"bytes saturate instead of wrapping", flowtable.FlowsByBytes, e(1, math.MaxUint64, 5, 0, 0, 0), e(2, 1<<62, 0, 0, 0, 0), 1},
		{"requests sum without uint32 overflow", flowtable.FlowsByRequests, e(1, 0, 0, math.MaxUint32, 1, 0), e(2, 0, 0, math.MaxUint32, 0, 0), 1},
		{"score", flowtable.FlowsByScore, e(1, 1e9, 0, 9, 0, 3), e(2, 0, 0, 0, 0, 90), -1},
		{"tie goes to the lower key", flowtable.FlowsByScore, e(1, 0, 0, 0, 0, 5), e(2, 0, 0, 0, 0, 5), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rank := flowtable.FlowRank(tc.by)
			if got := cmp.Compare(rank(&tc.a, &tc.b), 0); got != tc.want {
				t.Errorf("rank = %d, want sign %d", got, tc.want)
			}
			if got := cmp.Compare(rank(&tc.b, &tc.a), 0); got != -tc.want {
				t.Errorf("reversed rank = %d, want sign %d", got, -tc.want)
			}
		})
	}
}

func TestFlowFilterMatch(t *testing.T) {
	key := func(src string) flowtable.FlowKey {
		return flowtable.NewFlowKey(netip.MustParseAddrPort(src), netip.MustParseAddrPort("198.18.0.1:443"), 6)
	}
	tests := []struct {
		name string
		f    flowtable.FlowFilter
		src  string
		flow flowtable.Flow
		want bool
	}{
		{name: "zero filter matches all", src: "192.0.2.1:1", want: true},
		{name: "v4 address in prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("192.0.2.0/24")}, src: "192.0.2.9:1", want: true},
		{name: "v4 address outside prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("192.0.2.0/24")}, src: "192.0.3.9:1"},
		{name: "v4 host prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("192.0.2.9/32")}, src: "192.0.2.9:1", want: true},
		{name: "v4 source against v6 prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("::/0")}, src: "192.0.2.9:1"},
		{name: "v6 address in prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("2001:db8::/32")}, src: "[2001:db8::5]:1", want: true},
		{name: "v6 address outside prefix", f: flowtable.FlowFilter{Src: netip.MustParsePrefix("2001:db9::/32")}, src: "[2001:db8::5]:1"},
		{name: "zone 0 is a zone", f: flowtable.FlowFilter{MatchZone: true}, src: "192.0.2.1:1", flow: flowtable.Flow{Zone: 0}, want: true},
		{name: "zone differs", f: flowtable.FlowFilter{MatchZone: true}, src: "192.0.2.1:1", flow: flowtable.Flow{Zone: 3}},
		{name: "zone ignored unless asked", f: flowtable.FlowFilter{Zone: 7}, src: "192.0.2.1:1", flow: flowtable.Flow{Zone: 3}, want: true},
		{name: "score at minimum", f: flowtable.FlowFilter{MinScore: 40}, src: "192.0.2.1:1", flow: flowtable.Flow{Score: 40}, want: true},
		{name: "score below minimum", f: flowtable.FlowFilter{MinScore: 40}, src: "192.0.2.1:1", flow: flowtable.Flow{Score: 39}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.src)
			if got := tc.f.Match(&k, &tc.flow); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVisitorFilterMatch(t *testing.T) {
	tests := []struct {
		name   string
		prefix string // "" for none
		addr   string
		score  uint8
		min    uint8
		want   bool
	}{
		{name: "zero filter", addr: "192.0.2.1", want: true},
		{name: "v4 address", prefix: "192.0.2.1/32", addr: "192.0.2.1", want: true},
		{name: "v4 other address", prefix: "192.0.2.1/32", addr: "192.0.2.2"},
		{name: "v4 prefix", prefix: "192.0.2.0/24", addr: "192.0.2.200", want: true},
		{name: "v6 address selects its /64", prefix: "2001:db8:1:2::99/128", addr: "2001:db8:1:2::5", want: true},
		{name: "v6 address of another /64", prefix: "2001:db8:1:3::99/128", addr: "2001:db8:1:2::5"},
		{name: "v6 wider prefix", prefix: "2001:db8::/32", addr: "2001:db8:1:2::5", want: true},
		{name: "family mismatch", prefix: "::/0", addr: "192.0.2.1"},
		{name: "min score", min: 10, score: 9, addr: "192.0.2.1"},
		{name: "min score met", min: 10, score: 10, addr: "192.0.2.1", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := flowtable.VisitorFilter{MinScore: tc.min}
			if tc.prefix != "" {
				f.Prefix = netip.MustParsePrefix(tc.prefix)
			}
			k := flowtable.NewVisitorKey(netip.MustParseAddr(tc.addr))
			v := flowtable.Visitor{Score: tc.score}
			if got := f.Match(&k, &v); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopVisitors(t *testing.T) {
	vt, err := flowtable.NewVisitors(1024)
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	now := time.Unix(1_800_000_000, 0)
	sec := now.Unix()
	type row struct {
		addr               string
		reqs, errs, blocks uint32
		score              uint8
		reqsAgo            int64 // seconds before now the requests were counted
	}
	rows := []row{
		{addr: "192.0.2.1", reqs: 80, errs: 1, blocks: 9, score: 10},
		{addr: "192.0.2.2", reqs: 8, errs: 30, blocks: 0, score: 90},
		{addr: "192.0.2.3", reqs: 800, errs: 2, blocks: 1, score: 50, reqsAgo: 30}, // out of the window
		{addr: "2001:db8:1::1", reqs: 16, errs: 5, blocks: 5, score: 70},
		{addr: "2001:db8:1::2", reqs: 24, score: 70}, // same /64: added to the visitor above
	}
	for _, r := range rows {
		vt.Upsert(flowtable.NewVisitorKey(netip.MustParseAddr(r.addr)), func(v *flowtable.Visitor, _ bool) {
			v.Count(sec-r.reqsAgo, r.reqs)
			v.Errors += r.errs
			v.Blocks += r.blocks
			v.Score = r.score
		})
	}
	prefixes := func(es []flowtable.Entry[flowtable.VisitorKey, flowtable.Visitor]) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key.Prefix().String())
		}
		return out
	}
	tests := []struct {
		name string
		by   flowtable.VisitorOrder
		f    flowtable.VisitorFilter
		n    int
		want []string
	}{
		{"rate", flowtable.VisitorsByRate, flowtable.VisitorFilter{}, 3, []string{"192.0.2.1/32", "2001:db8:1::/64", "192.0.2.2/32"}},
		{"errors", flowtable.VisitorsByErrors, flowtable.VisitorFilter{}, 2, []string{"192.0.2.2/32", "2001:db8:1::/64"}},
		{"blocks", flowtable.VisitorsByBlocks, flowtable.VisitorFilter{}, 1, []string{"192.0.2.1/32"}},
		{"score ties by key", flowtable.VisitorsByScore, flowtable.VisitorFilter{}, 4,
			[]string{"192.0.2.2/32", "2001:db8:1::/64", "192.0.2.3/32", "192.0.2.1/32"}},
		{"filtered", flowtable.VisitorsByRate, flowtable.VisitorFilter{Prefix: netip.MustParsePrefix("192.0.2.0/30"), MinScore: 20},
			10, []string{"192.0.2.2/32", "192.0.2.3/32"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := prefixes(flowtable.TopVisitors(vt, tc.f, tc.by, tc.n, now)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	v, _ := vt.Get(flowtable.NewVisitorKey(netip.MustParseAddr("2001:db8:1::7")))
	if got := flowtable.WindowRequests(&v, sec); got != 40 {
		t.Errorf("WindowRequests = %d, want 40", got)
	}
}

func TestOrderNames(t *testing.T) {
	for _, o := range []flowtable.FlowOrder{flowtable.FlowsByBytes, flowtable.FlowsByRequests, flowtable.FlowsByScore} {
		if got, err := flowtable.ParseFlowOrder(o.String()); err != nil || got != o {
			t.Errorf("ParseFlowOrder(%q) = %v, %v", o, got, err)
		}
	}
	for _, o := range []flowtable.VisitorOrder{flowtable.VisitorsByRate, flowtable.VisitorsByErrors,
		flowtable.VisitorsByBlocks, flowtable.VisitorsByScore} {
		if got, err := flowtable.ParseVisitorOrder(o.String()); err != nil || got != o {
			t.Errorf("ParseVisitorOrder(%q) = %v, %v", o, got, err)
		}
	}
	for _, s := range []string{"", "rate", "BYTES", "0"} {
		if _, err := flowtable.ParseFlowOrder(s); err == nil {
			t.Errorf("ParseFlowOrder(%q) accepted", s)
		}
	}
	for _, s := range []string{"", "bytes", "requests"} {
		if _, err := flowtable.ParseVisitorOrder(s); err == nil {
			t.Errorf("ParseVisitorOrder(%q) accepted", s)
		}
	}
}

// TestTopNMemoryBounded: a top-10 over 100 000 flows holds ten entries,
// not a copy of the table (which would be about 9 MB). What Range itself
// allocates while walking is measured apart and not charged to TopN.
func TestTopNMemoryBounded(t *testing.T) {
	ft, _ := fillFlows(t, 1<<18, 100_000)
	allocated := func(fn func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var got []flowtable.Entry[flowtable.FlowKey, flowtable.Flow]
	top := allocated(func() { got = flowtable.TopFlows(ft, flowtable.FlowFilter{}, flowtable.FlowsByBytes, 10) })
	walk := allocated(func() { ft.Range(func(*flowtable.FlowKey, *flowtable.Flow) bool { return true }) })
	if len(got) != 10 {
		t.Fatalf("got %d entries", len(got))
	}
	if top > walk+64<<10 {
		t.Errorf("top 10 of 100 000 allocated %d bytes, Range alone %d: want under 64 KiB more", top, walk)
	}
	t.Logf("top 10 of 100 000: %d bytes allocated, Range alone %d", top, walk)
}

// TestTopNWhileWriting ranks a table that writers keep changing: every
// entry returned must be a consistent copy (the writers keep BytesOut =
// 2 × BytesIn) and the answer must be in order.
func TestTopNWhileWriting(t *testing.T) {
	ft, err := flowtable.NewFlows(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; !stop.Load(); i++ {
				k := snapFlowKey(r.IntN(3000))
				if i%10 == 9 {
					ft.Delete(k)
					continue
				}
				ft.Upsert(k, func(v *flowtable.Flow, _ bool) {
					v.BytesIn += uint64(r.IntN(1000))
					v.BytesOut = 2 * v.BytesIn
				})
			}
		})
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	rounds := 0
	for ; rounds < 5 || time.Now().Before(deadline); rounds++ {
		got := flowtable.TopFlows(ft, flowtable.FlowFilter{}, flowtable.FlowsByBytes, 50)
		for i, e := range got {
			if e.Value.BytesOut != 2*e.Value.BytesIn {
				t.Fatalf("round %d entry %d torn: %+v", rounds, i, e.Value)
			}
			if i > 0 && e.Value.BytesIn*3 > got[i-1].Value.BytesIn*3 {
				t.Fatalf("round %d: entry %d (%d bytes) above entry %d (%d)", rounds, i, e.Value.BytesIn*3, i-1, got[i-1].Value.BytesIn*3)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}
