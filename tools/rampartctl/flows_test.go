package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/admin"
	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/xdp"
)

// adminFixture serves a flow and a visitor table filled by the test, as
// the daemon's admin listener does, on a unix socket (and on TCP).
type adminFixture struct {
	flows    *flowtable.Flows
	visitors *flowtable.Visitors
	sock     string // "unix:/path" for --admin
	tcp      string // "127.0.0.1:port"
	now      time.Time
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	fx := &adminFixture{now: time.Now()}
	var err error
	if fx.flows, err = flowtable.NewFlows(1024); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.flows.Close() })
	if fx.visitors, err = flowtable.NewVisitors(1024); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.visitors.Close() })

	// 20 flows: 10.0.0.i:4000+i → 198.18.0.1:443 (i%4 == 3 from IPv6),
	// zone i%3, score 5i, bytes in 100i and out 7·(20-i), requests i%5.
	for i := range 20 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), uint16(4000+i))
		dst := netip.MustParseAddrPort("198.18.0.1:443")
		if i%4 == 3 {
			src = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), uint16(4000+i))
			dst = netip.MustParseAddrPort("[2001:db8::1]:443")
		}
		fx.flows.Upsert(flowtable.NewFlowKey(src, dst, 6), func(v *flowtable.Flow, _ bool) {
			*v = flowtable.Flow{Created: fx.now.Add(-time.Minute).UnixNano(), LastSeen: fx.now.Add(-time.Duration(i) * time.Second).UnixNano(),
				BytesIn: uint64(100 * i), BytesOut: uint64(7 * (20 - i)), RequestsIn: uint32(i % 5), RequestsOut: uint32(i % 5),
				Zone: uint32(i % 3), Loop: uint16(i % 2), Verdict: flowtable.VerdictAllow, Score: uint8(5 * i)}
		})
	}
	// 6 visitors: 192.0.2.i with i·8 requests this second, i errors,
	// 6-i blocks, score 15i; and one IPv6 /64.
	sec := fx.now.Unix()
	for i := range 6 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if i == 5 {
			a = netip.MustParseAddr("2001:db8:5::77")
		}
		fx.visitors.Upsert(flowtable.NewVisitorKey(a), func(v *flowtable.Visitor, _ bool) {
			v.FirstSeen, v.LastSeen = fx.now.Add(-time.Hour).UnixNano(), fx.now.UnixNano()
			v.Count(sec, uint32(8*i))
			v.Errors, v.Blocks, v.Connections, v.Score = uint32(i), uint32(6-i), 1, uint8(15*i)
			v.Verdict = flowtable.VerdictChallenge
		})
	}

	mux := http.NewServeMux()
	mux.Handle("GET /flows", admin.Flows(fx.flows, admin.Options{}))
	mux.Handle("GET /visitors", admin.Visitors(fx.visitors, admin.Options{Now: func() time.Time { return fx.now }}))
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	fx.sock = "unix:" + path
	tcp := httptest.NewServer(mux)
	t.Cleanup(tcp.Close)
	fx.tcp = strings.TrimPrefix(tcp.URL, "http://")
	return fx
}

// jsonLines decodes rampartctl's --json output.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var recs []T
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r T
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestFlowsCommand(t *testing.T) {
	fx := newAdminFixture(t)
	root := t.TempDir() // no pinned filter: flows needs none
	srcs := func(recs []admin.FlowRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Src)
		}
		return out
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"every flow as a table", []string{"flows"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 22 { // heading, 20 rows, count
				t.Fatalf("%d lines:\n%s", len(lines), out)
			}
			if f := strings.Fields(lines[0]); strings.Join(f, " ") != "SRC DST PROTO ZONE LOOP AGE IDLE BYTES_IN BYTES_OUT REQ_IN REQ_OUT VERDICT SCORE" {
				t.Errorf("heading %q", lines[0])
			}
			// Columns line up: every row's second column starts where DST does.
			col := strings.Index(lines[0], "DST")
			for _, l := range lines[1:21] {
				if l[col-1] != ' ' || l[col] == ' ' {
					t.Errorf("row not aligned with the heading:\n%s\n%s", lines[0], l)
				}
			}
			if !strings.Contains(out, "10.0.0.4:4004") || !strings.Contains(out, "[2001:db8::3]:4003") {
				t.Errorf("rows missing:\n%s", out)
			}
			if lines[21] != "20 flows shown, of about 20 in the table" {
				t.Errorf("count line %q", lines[21])
			}
		}},
		{"top by bytes", []string{"flows", "--top", "3", "--by", "bytes", "--json"}, func(t *testing.T, out string) {
			// bytes 100i + 7(20-i) grow with i: 19, 18, 17.
			if got := strings.Join(srcs(jsonLines[admin.FlowRecord](t, out)), " "); got != "[2001:db8::13]:4019 10.0.0.18:4018 10.0.0.17:4017" {
				t.Errorf("got %s", got)
			}
		}},
		{"top by requests in zone 0", []string{"flows", "--top", "2", "--by", "requests", "--zone", "0", "--json"}, func(t *testing.T, out string) {
			// zone 0: i = 0, 3, 6, 9, 12, 15, 18; requests 2·(i%5): 9 → 8, 18 → 6 and 3 → 6 (lower key first)
			if got := strings.Join(srcs(jsonLines[admin.FlowRecord](t, out)), " "); got != "10.0.0.9:4009 10.0.0.18:4018" {
				t.Errorf("got %s", got)
			}
		}},
		{"source prefix and score", []string{"flows", "--src", "10.0.0.0/29", "--min-score", "20", "--json"}, func(t *testing.T, out string) {
			recs := jsonLines[admin.FlowRecord](t, out)
			if len(recs) != 3 { // i = 4, 5, 6 (7 is IPv6)
				t.Fatalf("got %v", srcs(recs))
			}
			for _, r := range recs {
				if !netip.MustParsePrefix("10.0.0.0/29").Contains(netip.MustParseAddrPort(r.Src).Addr()) || r.Score < 20 {
					t.Errorf("%+v does not match", r)
				}
			}
		}},
		{"ipv6 source", []string{"flows", "--src", "2001:db8::/32", "--json"}, func(t *testing.T, out string) {
			if recs := jsonLines[admin.FlowRecord](t, out); len(recs) != 5 {
				t.Errorf("got %v", srcs(recs))
			}
		}},
		{"limit cuts with a hint", []string{"flows", "--limit", "2"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "2 flows shown, of about 20 in the table; the limit cut the listing (--limit N for more, 0 for all)") {
				t.Errorf("no hint:\n%s", out)
			}
		}},
		{"nothing matches", []string{"flows", "--src", "198.51.100.0/24"}, func(t *testing.T, out string) {
			if out != "no flows match (20 in the table)\n" {
				t.Errorf("got %q", out)
			}
		}},
		{"visitors table", []string{"visitors"}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 8 || strings.Join(strings.Fields(lines[0]), " ") != "PREFIX AGE IDLE RATE/S REQS ERRORS BLOCKS CONNS SCORE VERDICT" {
				t.Fatalf("got:\n%s", out)
			}
			if !strings.Contains(out, "2001:db8:5::/64") || !strings.Contains(out, "6 visitors shown") {
				t.Errorf("got:\n%s", out)
			}
		}},
		{"visitors top by rate", []string{"visitors", "--top", "2", "--json"}, func(t *testing.T, out string) {
			recs := jsonLines[admin.VisitorRecord](t, out)
			if len(recs) != 2 || recs[0].Prefix != "2001:db8:5::/64" || recs[0].Rate != 5 || recs[0].RequestsWindow != 40 ||
				recs[1].Prefix != "192.0.2.4/32" {
				t.Errorf("got %+v", recs)
			}
		}},
		{"visitors top by blocks in a prefix", []string{"visitors", "--src", "192.0.2.2/31", "--top", "1", "--by", "blocks", "--json"}, func(t *testing.T, out string) {
			if recs := jsonLines[admin.VisitorRecord](t, out); len(recs) != 1 || recs[0].Prefix != "192.0.2.2/32" || recs[0].Blocks != 4 {
				t.Errorf("got %+v", recs)
			}
		}},
		{"visitors of a v6 address", []string{"visitors", "--src", "2001:db8:5::1", "--min-score", "60", "--json"}, func(t *testing.T, out string) {
			if recs := jsonLines[admin.VisitorRecord](t, out); len(recs) != 1 || recs[0].Score != 75 {
				t.Errorf("got %+v", recs)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustRun(t, root, append(tc.args, "--admin", fx.sock)...))
		})
	}

	t.Run("json is what the daemon sent", func(t *testing.T) {
		resp, err := http.Get("http://" + fx.tcp + "/flows?src=10.0.0.0/28&top=4&by=score")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var want bytes.Buffer
		if _, err := want.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		got := mustRun(t, root, "flows", "--admin", fx.tcp, "--src", "10.0.0.0/28", "--top", "4", "--by", "score", "--json")
		if got != want.String() || strings.Count(got, "\n") != 4 {
			t.Errorf("got\n%s\nwant\n%s", got, want.String())
		}
	})
}

func TestFlowsCommandErrors(t *testing.T) {
	fx := newAdminFixture(t)
	root := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"flow order for visitors", []string{"visitors", "--top", "3", "--by", "bytes"}, `invalid --by "bytes": visitors rank by rate, errors, blocks or score`},
		{"visitor order for flows", []string{"flows", "--top", "3", "--by", "rate"}, `invalid --by "rate": flows rank by bytes, requests or score`},
		{"by without top", []string{"flows", "--by", "bytes"}, "--by bytes needs --top N"},
		{"top 0", []string{"flows", "--top", "0"}, "invalid --top 0"},
		{"negative limit", []string{"flows", "--limit", "-5"}, "invalid --limit -5"},
		{"score over 100", []string{"visitors", "--min-score", "101"}, "invalid --min-score 101"},
		{"host bits", []string{"flows", "--src", "10.1.2.3/8"}, "--src: invalid prefix \"10.1.2.3/8\": host bits set; did you mean 10.0.0.0/8 or 10.1.2.3/32?"},
		{"daemon refuses", []string{"flows", "--top", "100001"}, "the daemon refused /flows (400 Bad Request): bad query: top: want a count 1..100000"},
		{"no daemon", []string{"flows", "--admin", "unix:" + filepath.Join(t.TempDir(), "none.sock")}, "cannot reach the daemon's admin listener at unix:"},
		{"bad admin address", []string{"flows", "--admin", "http://127.0.0.1:9180"}, `invalid --admin "http://127.0.0.1:9180": want HOST:PORT or unix:/path`},
		{"zone with bpf", []string{"flows", "--bpf", "--zone", "1"}, "--zone and --min-score need the daemon's flow table"},
		{"admin with bpf", []string{"flows", "--bpf", "--admin", "127.0.0.1:1"}, "--bpf reads the pinned maps, not the daemon"},
		{"bpf order", []string{"flows", "--bpf", "--top", "1", "--by", "score"}, `invalid --by "score": with --bpf, flows rank by packets, bytes or dropped`},
		{"bpf without state", []string{"flows", "--bpf"}, "no filter state under"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--admin") && !strings.Contains(strings.Join(args, " "), "--bpf") {
				args = append(args, "--admin", fx.sock)
			}
			out, _, err := rampartctl(t, root, args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q (stdout %q)", err, tc.wantErr, out)
			}
		})
	}
}

func TestCoverIndex(t *testing.T) {
	now := time.Now()
	entries := []xdp.ListEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24")},
		{Prefix: netip.MustParsePrefix("198.51.100.128/25")},
		{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Expires: now.Add(-time.Second)}, // expired
		{Prefix: netip.MustParsePrefix("2001:db8::/32")},
		{Prefix: netip.MustParsePrefix("2001:db9:0:0:1::/80")}, // narrower than a /64 source
	}
	c := newCoverIndex(entries, now)
	tests := []struct {
		src, want string // want "" for none
	}{
		{"198.51.100.1/32", "198.51.100.0/24"},
		{"198.51.100.200/32", "198.51.100.128/25"},
		{"198.51.101.1/32", ""},
		{"203.0.113.7/32", ""},
		{"2001:db8:1:2::/64", "2001:db8::/32"},
		{"2001:db9::/64", ""},
	}
	for _, tc := range tests {
		got, ok := c.find(netip.MustParsePrefix(tc.src))
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("find(%s) = %v, %v; want %q", tc.src, got, ok, tc.want)
		}
	}
}

func TestTopSources(t *testing.T) {
	sel := &topSources{n: 3, better: func(a, b *xdp.RateSource) bool {
		if a.Packets != b.Packets {
			return a.Packets > b.Packets
		}
		return a.Prefix.Addr().Less(b.Prefix.Addr())
	}}
	for i, p := range []uint64{5, 1, 9, 7, 7, 3, 0, 8} {
		sel.add(xdp.RateSource{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32), Packets: p})
	}
	var got []string
	for _, s := range sel.sorted() {
		got = append(got, s.Prefix.String())
	}
	if strings.Join(got, " ") != "10.0.0.2/32 10.0.0.7/32 10.0.0.3/32" {
		t.Errorf("got %v", got)
	}
}

// TestFlowsBPF reads the rate-limit and block state of a pinned filter
// after frames went through it, with no daemon.
func TestFlowsBPF(t *testing.T) {
	f, root, _ := pinnedFilter(t, func(c *xdp.Config) { c.RateLimit.Batch = 1 })
	syn := func(src string) []byte {
		return packets.MustBuild(packets.Spec{Src: packets.Addr(src), Dst: edge, Proto: packets.TCP,
			SrcPort: 40000, DstPort: 443, Flags: "S", Payload: make([]byte, 10)})
	}
	sent := map[string]int{"198.18.0.2": 5, "198.18.0.3": 2, "198.19.66.6": 3, "2001:db8::2": 4}
	for src, n := range sent {
		if src == "2001:db8::2" {
			for range n {
				if _, err := f.Run(packets.MustBuild(packets.Spec{Src: packets.Addr(src), Dst: packets.Addr("2001:db8::1"),
					Proto: packets.TCP, SrcPort: 40000, DstPort: 443, Flags: "S"})); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		for range n {
			if _, err := f.Run(syn(src)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Blocked after it was tracked: its row names the covering prefix.
	mustRun(t, root, "block", "add", "198.19.66.0/24")
	mustRun(t, root, "block", "add", "203.0.113.0/24", "--ttl", "1h")

	out := mustRun(t, root, "flows", "--bpf")
	for _, want := range []string{
		"rate_limits on test0: 4 of 4 tracked sources",
		"PREFIX", "PACKETS", "BLOCKED_BY",
		"198.19.66.6/32", "198.19.66.0/24",
		"2001:db8::/64",
		"blocklist on test0: 2 of 2 prefixes",
		"203.0.113.0/24",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	type line struct {
		Table     string     `json:"table"`
		Prefix    string     `json:"prefix"`
		Packets   uint64     `json:"packets"`
		Bytes     uint64     `json:"bytes"`
		Dropped   uint64     `json:"dropped"`
		BlockedBy *string    `json:"blocked_by"`
		Expires   *time.Time `json:"expires"`
	}
	recs := jsonLines[line](t, mustRun(t, root, "flows", "--bpf", "--json"))
	got := map[string]line{}
	for _, r := range recs {
		got[r.Table+" "+r.Prefix] = r
	}
	if len(recs) != 6 {
		t.Fatalf("got %d lines: %+v", len(recs), recs)
	}
	for src, n := range sent {
		bits := "/32"
		if strings.Contains(src, ":") {
			src, bits = "2001:db8::", "/64"
		}
		r, ok := got["rate_limits "+src+bits]
		if !ok || r.Packets != uint64(n) || r.Bytes == 0 || r.Dropped != 0 {
			t.Errorf("rate source %s: %+v (present %v), want %d packets", src, r, ok, n)
		}
	}
	if r := got["rate_limits 198.19.66.6/32"]; r.BlockedBy == nil || *r.BlockedBy != "198.19.66.0/24" {
		t.Errorf("blocked source: %+v", r)
	}
	if r := got["rate_limits 198.18.0.2/32"]; r.BlockedBy != nil {
		t.Errorf("unblocked source names %q", *r.BlockedBy)
	}
	if r, ok := got["blocklist 203.0.113.0/24"]; !ok || r.Expires == nil {
		t.Errorf("blocklist entry with a ttl: %+v", r)
	}
	if r, ok := got["blocklist 198.19.66.0/24"]; !ok || r.Expires != nil {
		t.Errorf("blocklist entry without a ttl: %+v", r)
	}

	// Ranked and filtered.
	recs = jsonLines[line](t, mustRun(t, root, "flows", "--bpf", "--json", "--top", "2", "--by", "packets", "--src", "198.18.0.0/15"))
	if len(recs) != 3 || recs[0].Prefix != "198.18.0.2/32" || recs[1].Prefix != "198.19.66.6/32" || recs[2].Table != "blocklist" {
		t.Errorf("top 2 by packets in 198.18.0.0/15: %+v", recs)
	}
	recs = jsonLines[line](t, mustRun(t, root, "flows", "--bpf", "--json", "--limit", "1", "--src", "2001:db8::/32"))
	if len(recs) != 1 || recs[0].Prefix != "2001:db8::/64" {
		t.Errorf("limit 1 in 2001:db8::/32: %+v", recs)
	}
}
