package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	ip4       = netip.MustParseAddr("192.0.2.1")
	ip6       = netip.MustParseAddr("2001:db8::1")
	ip4in6    = netip.MustParseAddr("::ffff:192.0.2.1")
	ip6zone   = netip.MustParseAddr("fe80::1%eth0")
	ipInvalid netip.Addr
)

// fwd is the tail every forwarded head from client ip4 over https ends with,
// after its own fields and Host.
func fwd(xff, fwded, via string) string {
	return "X-Forwarded-For: " + xff + "192.0.2.1\r\n" +
		"Forwarded: " + fwded + "for=192.0.2.1;proto=https;host=a.example\r\n" +
		"Via: " + via + "1.1 rampart\r\n"
}

func TestAppendForwardedRequest(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		ip        netip.Addr // zero: ip4
		invalidIP bool       // use the zero netip.Addr
		proto     string     // empty: https
		want      string
	}{
		{
			name: "minimal get",
			in:   get(""),
			want: "GET / HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "fixed hop-by-hop fields removed",
			in: get("Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
				"TE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
				"Proxy-Authenticate: Basic\r\nAccept: */*\r\n"),
			want: "GET / HTTP/1.1\r\nAccept: */*\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "fields named in connection removed",
			in: get("Connection: X-Secret, , close\r\nX-Secret: 1\r\nx-other: 2\r\n" +
				"Connection: x-OTHER\r\nKeep: yes\r\nX-Secret-Not: 3\r\n"),
			want: "GET / HTTP/1.1\r\nKeep: yes\r\nX-Secret-Not: 3\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "connection cannot remove host or framing",
			in: "POST /f HTTP/1.1\r\nConnection: host, content-length, x-forwarded-for, via\r\nHost: a.example\r\n" +
				"Content-Length: 3\r\nX-Forwarded-For: 10.0.0.1\r\nVia: 1.0 evil\r\n\r\n",
			want: "POST /f HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "Content-Length: 3\r\n\r\n",
		},
		{
			name: "x-forwarded-for appended as one field",
			in:   get("X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.3\r\nX-Forwarded-For:\r\n"),
			want: "GET / HTTP/1.1\r\nAccept: */*\r\nHost: a.example\r\n" + fwd("10.0.0.1, 10.0.0.2, 10.0.0.3, ", "", "") + "\r\n",
		},
		{
			name: "forwarded and via appended",
			in:   get("Forwarded: for=198.51.100.7;proto=http\r\nVia: 1.0 fred, 1.1 p.example (Apache/1.1)\r\n"),
			want: "GET / HTTP/1.1\r\nHost: a.example\r\n" +
				fwd("", "for=198.51.100.7;proto=http, ", "1.0 fred, 1.1 p.example (Apache/1.1), ") + "\r\n",
		},
		{
			name: "ipv6 client",
			in:   get(""),
			ip:   ip6,
			want: "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 2001:db8::1\r\n" +
				"Forwarded: for=\"[2001:db8::1]\";proto=https;host=a.example\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "ipv6 client with zone",
			in:   get(""),
			ip:   ip6zone,
			want: "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: fe80::1\r\n" +
				"Forwarded: for=\"[fe80::1]\";proto=https;host=a.example\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "ipv4-mapped client written as ipv4",
			in:   get(""),
			ip:   ip4in6,
			want: "GET / HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name:      "invalid client is unknown",
			in:        get(""),
			invalidIP: true,
			want: "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: unknown\r\n" +
				"Forwarded: for=unknown;proto=https;host=a.example\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name:  "http proto and quoted host with port",
			in:    "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			proto: "http",
			want: "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\nX-Forwarded-For: 192.0.2.1\r\n" +
				"Forwarded: for=192.0.2.1;proto=http;host=\"[::1]:8080\"\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "absolute form becomes origin form",
			in:   "GET HTTP://b.example:8080/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n",
			want: "GET /p?q HTTP/1.1\r\nHost: b.example:8080\r\nX-Forwarded-For: 192.0.2.1\r\n" +
				"Forwarded: for=192.0.2.1;proto=https;host=\"b.example:8080\"\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "absolute form without path",
			in:   "GET https://a.example?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
			want: "GET /?x=1 HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "asterisk form",
			in:   "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
			want: "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "chunked framing rewritten and trailer removed",
			in:   get("transfer-encoding: Chunked\r\nTrailer: X-Sum\r\nExpect: 100-continue\r\n"),
			want: "GET / HTTP/1.1\r\nExpect: 100-continue\r\nHost: a.example\r\n" + fwd("", "", "") +
				"Transfer-Encoding: chunked\r\n\r\n",
		},
		{
			name: "content-length normalised",
			in:   get("content-length: 0007\r\n"),
			want: "GET / HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "Content-Length: 7\r\n\r\n",
		},
		{
			name: "http10 with host forwarded as http11",
			in:   "GET / HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n",
			want: "GET / HTTP/1.1\r\nHost: a.example\r\n" + fwd("", "", "") + "\r\n",
		},
		{
			name: "http10 without host stays http10",
			in:   "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
			want: "GET /old HTTP/1.0\r\nUser-Agent: x\r\nX-Forwarded-For: 192.0.2.1\r\n" +
				"Forwarded: for=192.0.2.1;proto=https\r\nVia: 1.1 rampart\r\n\r\n",
		},
	}
	p := testParser(t, DefaultLimits)
	r := NewRequest(DefaultLimits)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Parse([]byte(tc.in), r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			ip, proto := tc.ip, tc.proto
			if !tc.invalidIP && !ip.IsValid() {
				ip = ip4
			}
			if proto == "" {
				proto = "https"
			}
			got := AppendForwardedRequest([]byte("prefix"), r, ip, proto, "rampart")
			if string(got[:6]) != "prefix" {
				t.Fatalf("dst prefix overwritten: %q", got)
			}
			if string(got[6:]) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got[6:], tc.want)
			}
			checkForwarded(t, r, got[6:], ip, "rampart")
		})
	}
}

// hopByHop lists the fields a forwarded head never carries, written apart
// from the implementation on purpose.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "Proxy-Authorization", "Proxy-Authenticate",
}

// rewritten lists the fields the edge writes itself.
var rewritten = []string{"Host", "Content-Length", "X-Forwarded-For", "Forwarded", "Via"}

// checkForwarded checks that out, the forwarded head of orig, parses again
// with Parser and with net/http to orig's method, origin-form target, host,
// framing and end-to-end fields, plus the added ones, and that it carries
// no hop-by-hop field.
func checkForwarded(t *testing.T, orig *Request, out []byte, ip netip.Addr, via string) {
	t.Helper()
	l := DefaultLimits
	l.MaxHeaders = maxHeadersCap
	l.MaxHeaderBytes = maxHeaderBytesCap
	p := testParser(t, l)
	r := NewRequest(l)
	n, err := p.Parse(out, r)
	if err != nil || n != len(out) {
		t.Fatalf("forwarded head does not parse again: %d of %d, %v\n%q", n, len(out), err, out)
	}

	wantTarget := string(orig.Target)
	if orig.Form == AbsoluteForm {
		wantTarget = strings.TrimPrefix(wantTarget[strings.Index(wantTarget, "//")+2:], string(orig.Host))
		if !strings.HasPrefix(wantTarget, "/") {
			wantTarget = "/" + wantTarget
		}
	}
	if string(r.Method) != string(orig.Method) || string(r.Target) != wantTarget || string(r.Host) != string(orig.Host) {
		t.Fatalf("line %q %q host %q, want %q %q host %q", r.Method, r.Target, r.Host, orig.Method, wantTarget, orig.Host)
	}
	if r.Form == AbsoluteForm {
		t.Fatalf("forwarded target %q is absolute-form", r.Target)
	}
	if r.Chunked != orig.Chunked || r.ContentLength != orig.ContentLength {
		t.Fatalf("framing chunked=%v cl=%d, want %v %d", r.Chunked, r.ContentLength, orig.Chunked, orig.ContentLength)
	}

	// The model: orig's fields minus hop-by-hop and rewritten ones.
	var options []string
	for _, h := range orig.Headers {
		if http.CanonicalHeaderKey(string(h.Name)) == "Connection" {
			for o := range strings.SplitSeq(string(h.Value), ",") {
				options = append(options, http.CanonicalHeaderKey(strings.TrimSpace(o)))
			}
		}
	}
	var want []string
	for _, h := range orig.Headers {
		k := http.CanonicalHeaderKey(string(h.Name))
		if slices.Contains(hopByHop, k) || slices.Contains(rewritten, k) || slices.Contains(options, k) {
			continue
		}
		want = append(want, k+": "+string(h.Value))
	}
	var got []string
	counts := map[string]int{}
	for _, h := range r.Headers {
		k := http.CanonicalHeaderKey(string(h.Name))
		if slices.Contains(hopByHop, k) && !(k == "Transfer-Encoding" && orig.Chunked) {
			t.Fatalf("hop-by-hop field %q forwarded\n%q", h.Name, out)
		}
		if slices.Contains(options, k) && !slices.Contains(rewritten, k) {
			t.Fatalf("field %q named in Connection forwarded\n%q", h.Name, out)
		}
		counts[k]++
		if slices.Contains(rewritten, k) || k == "Transfer-Encoding" {
			continue
		}
		got = append(got, k+": "+string(h.Value))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("end-to-end fields\n%q\nwant\n%q", got, want)
	}
	if counts["X-Forwarded-For"] != 1 || counts["Forwarded"] != 1 || counts["Via"] != 1 {
		t.Fatalf("added fields counted %v", counts)
	}
	ipText := "unknown"
	if ip.IsValid() {
		ipText = ip.Unmap().WithZone("").String()
	}
	if xff := string(r.Get("x-forwarded-for")); !strings.HasSuffix(xff, ipText) {
		t.Fatalf("X-Forwarded-For %q does not end with %s", xff, ipText)
	}
	if v := string(r.Get("via")); !strings.HasSuffix(v, "1.1 "+via) {
		t.Fatalf("Via %q does not end with 1.1 %s", v, via)
	}

	// net/http reads the same.
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
	if err != nil {
		t.Fatalf("net/http rejects the forwarded head: %v\n%q", err, out)
	}
	if req.Method != string(r.Method) || req.RequestURI != string(r.Target) || req.Host != string(r.Host) {
		t.Fatalf("net/http line %q %q %q, want %q %q %q", req.Method, req.RequestURI, req.Host, r.Method, r.Target, r.Host)
	}
	if req.ContentLength != r.ContentLength && !(r.ContentLength < 0 && !r.Chunked && req.ContentLength == 0) {
		t.Fatalf("net/http Content-Length %d, want %d", req.ContentLength, r.ContentLength)
	}
	if r.Chunked != slices.Equal(req.TransferEncoding, []string{"chunked"}) {
		t.Fatalf("net/http Transfer-Encoding %q, chunked %v", req.TransferEncoding, r.Chunked)
	}
	ours := http.Header{}
	for _, h := range r.Headers {
		ours.Add(string(h.Name), string(h.Value))
	}
	theirs := req.Header.Clone()
	for _, k := range []string{"Host", "Transfer-Encoding"} {
		ours.Del(k)
		theirs.Del(k)
	}
	if ours.Get("Cache-Control") == "" {
		theirs.Del("Cache-Control") // added by net/http for Pragma: no-cache
	}
	if len(ours) != len(theirs) {
		t.Fatalf("headers %q vs net/http %q", ours, theirs)
	}
	for k, v := range ours {
		if !slices.Equal(v, theirs[k]) {
			t.Fatalf("header %s: %q vs net/http %q", k, v, theirs[k])
		}
	}
}

func TestAppendForwardedRequestZeroAlloc(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewRequest(DefaultLimits)
	in := []byte(strings.Replace(benchGET, "Connection: keep-alive", "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 10.0.0.1", 1))
	if _, err := p.Parse(in, r); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 4096)
	for _, ip := range []netip.Addr{ip4, ip6, ip4in6, ip6zone, ipInvalid} {
		if n := testing.AllocsPerRun(100, func() {
			dst = AppendForwardedRequest(dst[:0], r, ip, "https", "rampart")
		}); n != 0 {
			t.Errorf("%v: %v allocs per run, want 0", ip, n)
		}
	}
}

func FuzzForward(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(get("Connection: X-A, te\r\nX-A: 1\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\n")))
	f.Add([]byte(get("Connection: x-forwarded-for, host, forwarded\r\nForwarded: for=x\r\nUpgrade: h2c\r\n")))
	f.Add([]byte("GET http://b.example HTTP/1.1\r\nHost: a\r\nVia: 1.0 a\r\n\r\n"))
	l := Limits{MaxRequestLine: 256, MaxHeaderBytes: 512, MaxHeaders: 8}
	p := testParser(f, l)
	r := NewRequest(l)
	ips := []netip.Addr{ip4, ip6, ip4in6, ip6zone, ipInvalid}
	dst := make([]byte, 0, 4096)
	f.Fuzz(func(t *testing.T, buf []byte) {
		if _, err := p.Parse(buf, r); err != nil {
			return
		}
		ip := ips[len(buf)%len(ips)]
		dst = AppendForwardedRequest(dst[:0], r, ip, "http", "edge-1")
		checkForwarded(t, r, dst, ip, "edge-1")
	})
}

func BenchmarkForward(b *testing.B) {
	in := []byte(benchGET)
	p := testParser(b, DefaultLimits)
	r := NewRequest(DefaultLimits)
	if _, err := p.Parse(in, r); err != nil {
		b.Fatal(err)
	}
	b.Run("baseline-net-http-header-write", func(b *testing.B) {
		// What a net/http based proxy does per request: copy the header
		// map, drop hop-by-hop fields, add X-Forwarded-For, serialise.
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			h := req.Header.Clone()
			for _, k := range hopByHop {
				h.Del(k)
			}
			h.Set("X-Forwarded-For", "192.0.2.1")
			h.Set("Via", "1.1 rampart")
			out.WriteString(req.Method + " " + req.RequestURI + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
			if err := h.Write(&out); err != nil {
				b.Fatal(err)
			}
			out.WriteString("\r\n")
		}
	})
	b.Run("rampart", func(b *testing.B) {
		dst := make([]byte, 0, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			dst = AppendForwardedRequest(dst[:0], r, ip4, "https", "rampart")
		}
	})
}
