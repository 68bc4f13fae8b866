package admin

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	o := Options{DefaultLimit: 100, MaxTop: 1000}
	tests := []struct {
		name     string
		visitors bool
		raw      string
		o        *Options // nil: o
		want     Query
		wantErr  []string // substrings of the error, all required
	}{
		{name: "empty", raw: "", want: Query{Limit: 100}},
		{name: "v4 address", raw: "src=192.0.2.7", want: Query{Src: netip.MustParsePrefix("192.0.2.7/32"), Limit: 100}},
		{name: "v6 prefix", raw: "src=2001:db8::/32", want: Query{Src: netip.MustParsePrefix("2001:db8::/32"), Limit: 100}},
		{name: "escaped prefix", raw: "src=2001%3Adb8%3A%3A%2F32", want: Query{Src: netip.MustParsePrefix("2001:db8::/32"), Limit: 100}},
		{name: "v4-mapped becomes v4", raw: "src=::ffff:192.0.2.0/120", want: Query{Src: netip.MustParsePrefix("192.0.2.0/24"), Limit: 100}},
		{name: "zone 0 is matched", raw: "zone=0", want: Query{MatchZone: true, Limit: 100}},
		{name: "everything", raw: "src=10.0.0.0/8&zone=7&min_score=50&limit=5",
			want: Query{Src: netip.MustParsePrefix("10.0.0.0/8"), Zone: 7, MatchZone: true, MinScore: 50, Limit: 5}},
		{name: "limit 0 is all", raw: "limit=0", want: Query{}},
		{name: "top defaults to bytes", raw: "top=10", want: Query{Top: 10, Limit: 10, By: "bytes"}},
		{name: "top by requests", raw: "top=10&by=requests", want: Query{Top: 10, Limit: 10, By: "requests"}},
		{name: "lower limit lowers top", raw: "top=10&by=score&limit=3", want: Query{Top: 3, Limit: 3, By: "score"}},
		{name: "higher limit leaves top", raw: "top=10&limit=30", want: Query{Top: 10, Limit: 10, By: "bytes"}},
		{name: "limit 0 leaves top", raw: "top=10&limit=0", want: Query{Top: 10, Limit: 10, By: "bytes"}},
		{name: "top above the default limit", raw: "top=1000", want: Query{Top: 1000, Limit: 1000, By: "bytes"}},
		{name: "visitors default by rate", visitors: true, raw: "top=2", want: Query{Top: 2, Limit: 2, By: "rate"}},
		{name: "visitors by blocks", visitors: true, raw: "top=2&by=blocks&src=2001:db8::1",
			want: Query{Src: netip.MustParsePrefix("2001:db8::1/128"), Top: 2, Limit: 2, By: "blocks"}},
		{name: "max limit bounds", raw: "limit=50", o: &Options{MaxLimit: 50}, want: Query{Limit: 50}},
		{name: "max limit lowers the default", raw: "", o: &Options{MaxLimit: 50}, want: Query{Limit: 50}},

		{name: "unknown parameter", raw: "source=1.2.3.4", wantErr: []string{`unknown parameter "source" (want src, zone, min_score, limit, top, by)`}},
		{name: "zone on visitors", visitors: true, raw: "zone=1", wantErr: []string{`unknown parameter "zone" (want src, min_score, limit, top, by)`}},
		{name: "repeated", raw: "src=1.2.3.4&src=1.2.3.5", wantErr: []string{`parameter "src" given 2 times`}},
		{name: "empty value", raw: "limit=", wantErr: []string{`parameter "limit" is empty`}},
		{name: "bad escape", raw: "src=%zz", wantErr: []string{"malformed query string"}},
		{name: "bad address", raw: "src=1.2.3", wantErr: []string{`src: invalid prefix "1.2.3": want ADDR or ADDR/BITS`}},
		{name: "host bits", raw: "src=10.1.2.3/8", wantErr: []string{`host bits set; did you mean 10.0.0.0/8 or 10.1.2.3/32?`}},
		{name: "address zone", raw: "src=fe80::1%25eth0", wantErr: []string{"src: invalid prefix"}},
		{name: "mixed mapped prefix", raw: "src=::ffff:0:0/64", wantErr: []string{"mixes IPv4-mapped"}},
		{name: "zone not a number", raw: "zone=x", wantErr: []string{`zone: want a zone number 0..4294967295, got "x"`}},
		{name: "zone too big", raw: "zone=4294967296", wantErr: []string{"zone: want a zone number"}},
		{name: "negative limit", raw: "limit=-1", wantErr: []string{`limit: want a count of lines (0: all), got "-1"`}},
		{name: "limit over max", raw: "limit=51", o: &Options{MaxLimit: 50}, wantErr: []string{"limit: must be in 1..50 here, got 51"}},
		{name: "limit 0 refused under max", raw: "limit=0", o: &Options{MaxLimit: 50}, wantErr: []string{"limit: must be in 1..50 here, got 0"}},
		{name: "score over 100", raw: "min_score=101", wantErr: []string{`min_score: want a score 0..100, got "101"`}},
		{name: "score over 255", raw: "min_score=300", wantErr: []string{`min_score: want a score 0..100, got "300"`}},
		{name: "top 0", raw: "top=0", wantErr: []string{`top: want a count 1..1000, got "0"`}},
		{name: "top over max", raw: "top=1001", wantErr: []string{`top: want a count 1..1000, got "1001"`}},
		{name: "by without top", raw: "by=bytes", wantErr: []string{"by=bytes needs top=N"}},
		{name: "flow order on visitors", visitors: true, raw: "top=1&by=bytes", wantErr: []string{`by: unknown visitor order "bytes"`}},
		{name: "visitor order on flows", raw: "top=1&by=rate", wantErr: []string{`by: unknown flow order "rate": want bytes, requests or score`}},
		{name: "every problem at once", raw: "limit=x&min_score=y&top=z&nope=1",
			wantErr: []string{"limit: want", "min_score: want", "top: want", `unknown parameter "nope"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := o
			if tc.o != nil {
				opts = *tc.o
			}
			parse := ParseFlowQuery
			if tc.visitors {
				parse = ParseVisitorQuery
			}
			got, err := parse(tc.raw, opts)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseQuery: the parser never panics, returns a query xor an error,
// every accepted query is within its bounds, and encoding it with Values
// and parsing again gives the same query.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "src=192.0.2.0/24&zone=3&min_score=10&limit=20", "top=5&by=requests", "top=5&by=rate",
		"src=2001:db8::1", "src=::ffff:10.0.0.0/104", "limit=0", "by=score", "src=%zz", "a=1&a=2",
		"top=100000&limit=3", "min_score=100", "zone=4294967295", "src=10.1.2.3/8", ";", "src=fe80::1%25x",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, visitors bool) {
		o := Options{DefaultLimit: 50, MaxTop: 500}
		parse := ParseFlowQuery
		if visitors {
			parse = ParseVisitorQuery
		}
		q, err := parse(raw, o)
		if err != nil {
			if q != (Query{}) {
				t.Fatalf("error %v with a query %+v", err, q)
			}
			return
		}
		if q.Limit < 0 || q.Top < 0 || q.Top > 500 || q.MinScore > 100 {
			t.Fatalf("out of bounds: %+v", q)
		}
		if (q.Top > 0) != (q.By != "") || (q.Top > 0 && q.Limit != q.Top) {
			t.Fatalf("inconsistent ranking: %+v", q)
		}
		if visitors && q.MatchZone {
			t.Fatalf("zone on visitors: %+v", q)
		}
		if q.Src.IsValid() && (q.Src != q.Src.Masked() || q.Src.Addr().Is4In6() || q.Src.Addr().Zone() != "") {
			t.Fatalf("src not canonical: %v", q.Src)
		}
		again, err := parse(q.Values().Encode(), o)
		if err != nil || again != q {
			t.Fatalf("round trip of %+v via %q: %+v, %v", q, q.Values().Encode(), again, err)
		}
	})
}
