package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

// testNow is the clock of the visitor tests.
var testNow = time.Unix(1_800_000_000, 123456789)

func testFlowKey(i int) flowtable.FlowKey {
	if i%4 == 3 {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i >> 16), byte(i >> 8), byte(i), 15: 2})
		return flowtable.NewFlowKey(netip.AddrPortFrom(src, uint16(1024+i%5000)), netip.MustParseAddrPort("[2001:db8:ffff::1]:443"), 6)
	}
	src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return flowtable.NewFlowKey(netip.AddrPortFrom(src, uint16(1024+i%5000)), netip.MustParseAddrPort("198.18.0.1:443"), 17)
}

// testFlow: zone i%3, score i%101, bytes and requests from i so that
// the orders differ.
func testFlow(i int) flowtable.Flow {
	return flowtable.Flow{
		Created: testNow.Add(-time.Duration(i) * time.Second).UnixNano(), LastSeen: testNow.UnixNano() - int64(i),
		BytesIn: uint64(i * 7 % 1000), BytesOut: uint64(i % 13), RequestsIn: uint32(i * 11 % 97), RequestsOut: 1,
		Zone: uint32(i % 3), Loop: uint16(i % 2), Verdict: flowtable.Verdict(i % 6), Score: uint8(i % 101),
	}
}

func newTestFlows(t testing.TB, capacity, n int) *flowtable.Flows {
	t.Helper()
	ft, err := flowtable.NewFlows(capacity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ft.Close() })
	for i := range n {
		v := testFlow(i)
		ft.Upsert(testFlowKey(i), func(p *flowtable.Flow, _ bool) { *p = v })
	}
	// A table at under half load may still evict the odd entry (both
	// of a key's buckets full): the large tests count what is there.
	if ft.Len() != n && n < 10000 {
		t.Fatalf("table holds %d flows, want %d", ft.Len(), n)
	}
	return ft
}

func newTestVisitors(t testing.TB) *flowtable.Visitors {
	t.Helper()
	vt, err := flowtable.NewVisitors(1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vt.Close() })
	sec := testNow.Unix()
	for i := range 40 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if i%4 == 3 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, byte(i), 15: 9})
		}
		vt.Upsert(flowtable.NewVisitorKey(a), func(v *flowtable.Visitor, _ bool) {
			v.FirstSeen = testNow.Add(-time.Hour).UnixNano()
			v.LastSeen = testNow.UnixNano()
			v.Count(sec, uint32(i*3%40))
			v.Count(sec-1, uint32(i%5))
			v.Errors, v.Blocks, v.Connections = uint32(i%7), uint32(i%9), uint32(i)
			v.Score, v.Verdict = uint8(i*13%101), flowtable.Verdict(i%6)
		})
	}
	return vt
}

// get runs one request against h and returns the status, headers and
// body lines.
func get(t *testing.T, h http.Handler, target string) (int, http.Header, []string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body := strings.TrimSuffix(rec.Body.String(), "\n")
	var lines []string
	if body != "" {
		lines = strings.Split(body, "\n")
	}
	return rec.Code, rec.Header(), lines
}

func decodeLines[T any](t *testing.T, lines []string) []T {
	t.Helper()
	out := make([]T, 0, len(lines))
	for _, l := range lines {
		var r T
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// TestRecordJSON: the hand-written lines are exactly what encoding/json
// writes for the record types, for random and extreme entries.
func TestRecordJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		k := testFlowKey(r.IntN(1 << 20))
		v := flowtable.Flow{Created: r.Int64(), LastSeen: r.Int64N(1 << 62), BytesIn: r.Uint64(), BytesOut: r.Uint64(),
			RequestsIn: r.Uint32(), RequestsOut: r.Uint32(), Zone: r.Uint32(), Loop: uint16(r.Uint32()),
			Verdict: flowtable.Verdict(r.IntN(8)), Score: uint8(r.Uint32())}
		if i == 0 {
			k, v = flowtable.FlowKey{}, flowtable.Flow{}
		}
		want, err := json.Marshal(NewFlowRecord(&k, &v))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFlowJSON(nil, &k, &v); string(got) != string(want)+"\n" {
			t.Fatalf("flow line\n got %s\nwant %s", got, want)
		}

		fk := testFlowKey(r.IntN(1 << 20))
		vk := flowtable.NewVisitorKey(fk.Source().Addr())
		var vv flowtable.Visitor
		sec := r.Int64N(1 << 32)
		for range r.IntN(20) {
			vv.Count(sec-r.Int64N(12), r.Uint32N(1<<28))
		}
		vv.FirstSeen, vv.LastSeen, vv.Errors, vv.Blocks, vv.Connections = r.Int64(), r.Int64(), r.Uint32(), r.Uint32(), r.Uint32()
		vv.Score, vv.Verdict = uint8(r.Uint32()), flowtable.Verdict(r.IntN(8))
		now := time.Unix(sec, r.Int64N(1e9))
		want, err = json.Marshal(NewVisitorRecord(&vk, &vv, now))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendVisitorJSON(nil, &vk, &vv, sec); string(got) != string(want)+"\n" {
			t.Fatalf("visitor line\n got %s\nwant %s", got, want)
		}
	}
}

func TestFlowsHandler(t *testing.T) {
	const n = 500
	ft := newTestFlows(t, 2048, n)
	h := Flows(ft, Options{DefaultLimit: 100, MaxTop: 1000})
	all := map[string]flowtable.Flow{}
	for i := range n {
		k := testFlowKey(i)
		all[k.Source().String()] = testFlow(i)
	}

	tests := []struct {
		name   string
		query  string
		filter func(src netip.AddrPort, v flowtable.Flow) bool // nil: all
		limit  int                                             // expected line count when unranked
		rank   func(a, b flowtable.Flow) int                   // ranked queries: highest first
	}{
		{name: "default limit", query: "", limit: 100},
		{name: "limit 0 is everything", query: "limit=0", limit: n},
		{name: "limit", query: "limit=7", limit: 7},
		{name: "v4 prefix", query: "src=10.0.1.0/24&limit=0", limit: n,
			filter: func(s netip.AddrPort, _ flowtable.Flow) bool {
				return netip.MustParsePrefix("10.0.1.0/24").Contains(s.Addr())
			}},
		{name: "v6 prefix", query: "src=2001:db8::/32&limit=0", limit: n,
			filter: func(s netip.AddrPort, _ flowtable.Flow) bool { return s.Addr().Is6() }},
		{name: "one address", query: "src=10.0.0.9", limit: n,
			filter: func(s netip.AddrPort, _ flowtable.Flow) bool { return s.Addr() == netip.MustParseAddr("10.0.0.9") }},
		{name: "zone", query: "zone=2&limit=0", limit: n,
			filter: func(_ netip.AddrPort, v flowtable.Flow) bool { return v.Zone == 2 }},
		{name: "zone and score", query: "zone=0&min_score=90&limit=0", limit: n,
			filter: func(_ netip.AddrPort, v flowtable.Flow) bool { return v.Zone == 0 && v.Score >= 90 }},
		{name: "no match", query: "src=192.0.2.0/24", limit: n,
			filter: func(netip.AddrPort, flowtable.Flow) bool { return false }},
		{name: "top by bytes", query: "top=25&by=bytes", limit: 25,
			rank: func(a, b flowtable.Flow) int { return int(a.BytesIn+a.BytesOut) - int(b.BytesIn+b.BytesOut) }},
		{name: "top by requests in zone 1", query: "top=10&by=requests&zone=1", limit: 10,
			filter: func(_ netip.AddrPort, v flowtable.Flow) bool { return v.Zone == 1 },
			rank: func(a, b flowtable.Flow) int {
				return int(a.RequestsIn+a.RequestsOut) - int(b.RequestsIn+b.RequestsOut)
			}},
		{name: "top by score limited", query: "top=50&by=score&limit=5", limit: 5,
			rank: func(a, b flowtable.Flow) int { return int(a.Score) - int(b.Score) }},
		{name: "top more than match", query: "top=1000&by=score&src=10.0.0.0/28", limit: 1000,
			filter: func(s netip.AddrPort, _ flowtable.Flow) bool {
				return netip.MustParsePrefix("10.0.0.0/28").Contains(s.Addr())
			},
			rank: func(a, b flowtable.Flow) int { return int(a.Score) - int(b.Score) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, lines := get(t, h, "/flows?"+tc.query)
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, lines)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type %q", ct)
			}
			if hdr.Get(HeaderTableLen) != strconv.Itoa(n) || hdr.Get(HeaderTableCapacity) != strconv.Itoa(ft.Capacity()) {
				t.Errorf("table headers %v", hdr)
			}
			recs := decodeLines[FlowRecord](t, lines)
			matching := 0
			for src, v := range all {
				if tc.filter == nil || tc.filter(netip.MustParseAddrPort(src), v) {
					matching++
				}
			}
			if want := min(matching, tc.limit); len(recs) != want {
				t.Fatalf("got %d lines, want %d", len(recs), want)
			}
			seen := map[string]bool{}
			for i, r := range recs {
				v, ok := all[r.Src]
				if !ok || seen[r.Src] {
					t.Fatalf("line %d: unknown or repeated source %s", i, r.Src)
				}
				seen[r.Src] = true
				if tc.filter != nil && !tc.filter(netip.MustParseAddrPort(r.Src), v) {
					t.Errorf("line %d (%s) does not match the filter", i, r.Src)
				}
				if r.BytesIn != v.BytesIn || r.Zone != v.Zone || r.Score != v.Score || r.Verdict != v.Verdict.String() ||
					!r.LastSeen.Equal(time.Unix(0, v.LastSeen)) {
					t.Errorf("line %d: %+v does not match %+v", i, r, v)
				}
				if tc.rank != nil && i > 0 && tc.rank(all[recs[i-1].Src], v) < 0 {
					t.Errorf("line %d ranks above line %d", i, i-1)
				}
			}
			if tc.rank != nil {
				// The lines are the highest: nothing left out ranks above the last.
				last := all[recs[len(recs)-1].Src]
				for src, v := range all {
					if !seen[src] && (tc.filter == nil || tc.filter(netip.MustParseAddrPort(src), v)) && tc.rank(v, last) > 0 {
						t.Errorf("%s left out but ranks above the last line", src)
					}
				}
			}
		})
	}
}

func TestVisitorsHandler(t *testing.T) {
	vt := newTestVisitors(t)
	h := Visitors(vt, Options{Now: func() time.Time { return testNow }})
	sec := testNow.Unix()
	all := map[string]flowtable.Visitor{}
	vt.Range(func(k *flowtable.VisitorKey, v *flowtable.Visitor) bool {
		all[k.Prefix().String()] = *v
		return true
	})
	tests := []struct {
		name   string
		query  string
		want   int
		filter func(p netip.Prefix, v flowtable.Visitor) bool
		metric func(v flowtable.Visitor) uint64 // ranked queries
	}{
		{name: "all", query: "", want: 40},
		{name: "limit", query: "limit=3", want: 3},
		{name: "v4 prefix", query: "src=192.0.2.0/29", want: 6,
			filter: func(p netip.Prefix, _ flowtable.Visitor) bool {
				return p.Overlaps(netip.MustParsePrefix("192.0.2.0/29"))
			}},
		{name: "v6 address finds its /64", query: "src=2001:db8:0:7::1234", want: 1,
			filter: func(p netip.Prefix, _ flowtable.Visitor) bool { return p == netip.MustParsePrefix("2001:db8:0:7::/64") }},
		{name: "min score", query: "min_score=80",
			filter: func(_ netip.Prefix, v flowtable.Visitor) bool { return v.Score >= 80 }},
		{name: "top by rate", query: "top=5", want: 5,
			metric: func(v flowtable.Visitor) uint64 { return flowtable.WindowRequests(&v, sec) }},
		{name: "top by errors", query: "top=5&by=errors", want: 5,
			metric: func(v flowtable.Visitor) uint64 { return uint64(v.Errors) }},
		{name: "top by blocks", query: "top=5&by=blocks", want: 5,
			metric: func(v flowtable.Visitor) uint64 { return uint64(v.Blocks) }},
		{name: "top by score above 50", query: "top=100&by=score&min_score=50",
			filter: func(_ netip.Prefix, v flowtable.Visitor) bool { return v.Score >= 50 },
			metric: func(v flowtable.Visitor) uint64 { return uint64(v.Score) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, lines := get(t, h, "/visitors?"+tc.query)
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, lines)
			}
			recs := decodeLines[VisitorRecord](t, lines)
			want := tc.want
			if want == 0 {
				for p, v := range all {
					if tc.filter(netip.MustParsePrefix(p), v) {
						want++
					}
				}
			}
			if len(recs) != want {
				t.Fatalf("got %d lines, want %d", len(recs), want)
			}
			for i, r := range recs {
				v, ok := all[r.Prefix]
				if !ok {
					t.Fatalf("unknown prefix %s", r.Prefix)
				}
				if tc.filter != nil && !tc.filter(netip.MustParsePrefix(r.Prefix), v) {
					t.Errorf("line %d (%s) does not match the filter", i, r.Prefix)
				}
				if r.Rate != v.Rate(sec) || r.RequestsWindow != flowtable.WindowRequests(&v, sec) ||
					r.Errors != v.Errors || r.Connections != v.Connections || !r.FirstSeen.Equal(time.Unix(0, v.FirstSeen)) {
					t.Errorf("line %d: %+v does not match %+v", i, r, v)
				}
				if tc.metric != nil && i > 0 && tc.metric(all[recs[i-1].Prefix]) < tc.metric(v) {
					t.Errorf("line %d ranks above line %d", i, i-1)
				}
			}
		})
	}
}

func TestHandlerRejects(t *testing.T) {
	flows := Flows(newTestFlows(t, 64, 3), Options{})
	visitors := Visitors(newTestVisitors(t), Options{})
	tests := []struct {
		name     string
		h        http.Handler
		method   string
		target   string
		wantCode int
		wantBody string
	}{
		{"unknown parameter", flows, "GET", "/flows?limt=3", 400, `bad query: unknown parameter "limt"`},
		{"bad prefix", flows, "GET", "/flows?src=10.0.0.256", 400, `bad query: src: invalid prefix "10.0.0.256"`},
		{"bad zone", flows, "GET", "/flows?zone=-1", 400, "bad query: zone: want a zone number"},
		{"bad order", flows, "GET", "/flows?top=3&by=rate", 400, `bad query: by: unknown flow order "rate"`},
		{"top too large", flows, "GET", "/flows?top=100001", 400, "bad query: top: want a count 1..100000"},
		{"two problems on one line", flows, "GET", "/flows?limit=x&top=y", 400, `bad query: limit: want a count of lines (0: all), got "x"; top: want`},
		{"zone on visitors", visitors, "GET", "/visitors?zone=1", 400, `bad query: unknown parameter "zone"`},
		{"post", flows, "POST", "/flows", 405, "method POST not allowed: use GET"},
		{"delete visitors", visitors, "DELETE", "/visitors", 405, "use GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", rec.Header().Get("Allow"))
			}
		})
	}
	rec := httptest.NewRecorder()
	flows.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/flows", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get(HeaderTableLen) != "3" {
		t.Errorf("HEAD: %d, %d bytes, headers %v", rec.Code, rec.Body.Len(), rec.Header())
	}
}

// TestStreamLargeTable serves 100 000 flows over a real connection: the
// default limit cuts a plain GET, limit=0 streams every flow exactly once,
// and a client that hangs up after the first line ends the handler.
func TestStreamLargeTable(t *testing.T) {
	ft := newTestFlows(t, 1<<18, 100_000)
	n := ft.Len()
	done := make(chan *countingWriter, 4)
	h := Flows(ft, Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		done <- cw
	}))
	defer srv.Close()

	count := func(query string) (int, http.Header) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + "/flows?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		seen := map[string]bool{}
		lines := 0
		for sc.Scan() {
			// Decoding every line would dominate the test under -race:
			// decode a sample, and tell flows apart by their src and dst.
			if lines%997 == 0 {
				var r FlowRecord
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("line %d: %v", lines, err)
				}
			}
			key, _, ok := strings.Cut(sc.Text(), `,"proto"`)
			if !ok || seen[key] {
				t.Fatalf("line %d: malformed or repeated: %q", lines, sc.Text())
			}
			seen[key] = true
			lines++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		<-done
		return lines, resp.Header
	}
	if got, hdr := count(""); got != DefaultLimit || hdr.Get(HeaderLimit) != strconv.Itoa(DefaultLimit) || hdr.Get(HeaderTableLen) != strconv.Itoa(n) {
		t.Errorf("default: %d lines, headers %v; want %d", got, hdr, DefaultLimit)
	}
	if got, _ := count("limit=0"); got != n {
		t.Errorf("limit=0: %d lines, want %d", got, n)
	}
	if got, _ := count("limit=54321"); got != 54321 {
		t.Errorf("limit=54321: %d lines", got)
	}

	// Hang up after the first line of a full dump: the handler must
	// return without having written the whole table. (Whether it also
	// stops walking is not visible from here; stream.tick checks.)
	resp, err := srv.Client().Get(srv.URL + "/flows?limit=0")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil || !bytes.HasPrefix(line, []byte(`{"src":`)) {
		t.Fatalf("first line %q: %v", line, err)
	}
	resp.Body.Close()
	srv.CloseClientConnections()
	select {
	case cw := <-done:
		if cw.failed > 1 || cw.lines >= n {
			t.Errorf("after the hang-up the handler wrote %d of %d lines, %d writes failing", cw.lines, n, cw.failed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still running 10 s after the client hung up")
	}
}

// countingWriter counts the lines a handler got written and the writes
// that failed.
type countingWriter struct {
	http.ResponseWriter
	lines, failed int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.lines += bytes.Count(p[:n], []byte("\n"))
	if err != nil {
		c.failed++
	}
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// TestStreamFlushes: lines of a sparse match reach the client while the
// walk is still going, not only when it ends.
func TestStreamFlushes(t *testing.T) {
	ft := newTestFlows(t, 64, 3)
	release := make(chan struct{})
	h := Flows(ft, Options{FlushInterval: time.Millisecond})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Headers go out before the walk: a client sees the answer start.
		h.ServeHTTP(w, r)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	resp, err := srv.Client().Get(srv.URL + "/flows")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The handler has finished writing but the request is held open: the
	// three lines must have been flushed to the client already.
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !json.Valid([]byte(line)) {
			t.Fatalf("line %d not JSON: %q", i, line)
		}
	}
	if got := resp.Header.Get(HeaderTableLen); got != "3" {
		t.Errorf("%s = %q", HeaderTableLen, got)
	}
}
