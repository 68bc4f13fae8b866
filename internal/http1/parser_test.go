package http1

import (
	"errors"
	"strings"
	"testing"
)

func testParser(tb testing.TB, l Limits) *Parser {
	tb.Helper()
	p, err := NewParser(l)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

type want struct {
	method, target, host string
	minor                int
	form                 TargetForm
	cl                   int64
	chunked, keepAlive   bool
	expect100            bool
	headers              int
}

// get is the usual minimal HTTP/1.1 head plus extra header lines.
func get(extra string) string {
	return "GET / HTTP/1.1\r\nHost: a.example\r\n" + extra + "\r\n"
}

func TestParse(t *testing.T) {
	okGet := want{method: "GET", target: "/", host: "a.example", minor: 1, cl: -1, keepAlive: true, headers: 1}
	with := func(w want, f func(*want)) want { f(&w); return w }
	long := strings.Repeat("a", 100)

	tests := []struct {
		name    string
		limits  *Limits
		in      string
		want    want
		wantErr *Error // nil: success
	}{
		// Accepted.
		{name: "minimal get", in: get(""), want: okGet},
		{name: "post content-length", in: get("Content-Length: 5\r\n"), want: with(okGet, func(w *want) { w.cl = 5; w.headers = 2 })},
		{name: "content-length zero and leading zeros", in: get("Content-Length: 007\r\n"), want: with(okGet, func(w *want) { w.cl = 7; w.headers = 2 })},
		{name: "chunked", in: get("Transfer-Encoding: chunked\r\n"), want: with(okGet, func(w *want) { w.chunked = true; w.headers = 2 })},
		{name: "chunked any case with OWS", in: get("transfer-encoding: \tChunKed \r\n"), want: with(okGet, func(w *want) { w.chunked = true; w.headers = 2 })},
		{name: "connection close", in: get("Connection: keep-alive, Close\r\n"), want: with(okGet, func(w *want) { w.keepAlive = false; w.headers = 2 })},
		{name: "connection other option", in: get("Connection: upgrade\r\n"), want: with(okGet, func(w *want) { w.headers = 2 })},
		{name: "two connection fields", in: get("Connection: foo\r\nConnection: close\r\n"), want: with(okGet, func(w *want) { w.keepAlive = false; w.headers = 3 })},
		{name: "http10 default close", in: "GET / HTTP/1.0\r\n\r\n", want: want{method: "GET", target: "/", minor: 0, cl: -1}},
		{name: "http10 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n", want: want{method: "GET", target: "/", host: "h", minor: 0, cl: -1, keepAlive: true, headers: 2}},
		{name: "http10 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", want: want{method: "GET", target: "/", minor: 0, cl: -1, headers: 1}},
		{name: "expect 100-continue", in: get("Expect: 100-Continue\r\nContent-Length: 1\r\n"), want: with(okGet, func(w *want) { w.expect100 = true; w.cl = 1; w.headers = 3 })},
		{name: "expect ignored in http10", in: "PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", want: want{method: "PUT", target: "/x", cl: -1, headers: 1}},
		{name: "absolute form takes host from target", in: "GET http://b.example:8080/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n", want: with(okGet, func(w *want) {
			w.target = "http://b.example:8080/p?q"
			w.host = "b.example:8080"
			w.form = AbsoluteForm
		})},
		{name: "absolute form https no path", in: "GET HTTPS://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n", want: with(okGet, func(w *want) { w.target = "HTTPS://b.example"; w.host = "b.example"; w.form = AbsoluteForm })},
		{name: "options asterisk", in: "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", want: with(okGet, func(w *want) { w.method = "OPTIONS"; w.target = "*"; w.form = AsteriskForm })},
		{name: "extension method", in: "PURGE /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: with(okGet, func(w *want) { w.method = "PURGE"; w.target = "/x" })},
		{name: "percent-encoding and query", in: "GET /a%20b?c=%2F&d HTTP/1.1\r\nHost: a.example\r\n\r\n", want: with(okGet, func(w *want) { w.target = "/a%20b?c=%2F&d" })},
		{name: "ipv6 host", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", want: with(okGet, func(w *want) { w.host = "[::1]:8080" })},
		{name: "empty value and obs-text", in: get("X-Empty:\r\nX-Utf8: caf\xc3\xa9\r\n"), want: with(okGet, func(w *want) { w.headers = 3 })},
		{name: "trailer field", in: get("Trailer: X-Sum, X-Other\r\nTransfer-Encoding: chunked\r\n"), want: with(okGet, func(w *want) { w.chunked = true; w.headers = 3 })},
		{name: "value with inner tab", in: get("X-A: a\tb\r\n"), want: with(okGet, func(w *want) { w.headers = 2 })},
		{name: "exactly at limits", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 19, MaxHeaders: 1}, in: "GET /12 HTTP/1.1\r\nHost: a.example\r\n\r\n", want: with(okGet, func(w *want) { w.target = "/12" })},

		// Request line.
		{name: "one leading empty line skipped", in: "\r\n" + get(""), want: okGet},
		{name: "two leading empty lines", in: "\r\n\r\n" + get(""), wantErr: errLeadingEmptyLine},
		{name: "leading bare LF", in: "\n" + get(""), wantErr: errBareLF},
		{name: "leading CRLF then bare LF", in: "\r\n\n" + get(""), wantErr: errBareLF},
		{name: "leading bare CR", in: "\r" + get(""), wantErr: errBareCR},
		{name: "leading CRLF then space incomplete", in: "\r\n GET", wantErr: errRequestLine},
		{name: "leading space", in: " " + get(""), wantErr: errRequestLine},
		{name: "leading space incomplete", in: " GET", wantErr: errRequestLine},
		{name: "double space", in: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errRequestLine},
		{name: "trailing space", in: "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", wantErr: errVersion},
		{name: "tab separator", in: "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errRequestLine},
		{name: "missing version", in: "GET /\r\nHost: h\r\n\r\n", wantErr: errRequestLine},
		{name: "lowercase version", in: "GET / http/1.1\r\nHost: h\r\n\r\n", wantErr: errVersion},
		{name: "http 1.2", in: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", wantErr: errVersionNotSupp},
		{name: "http 2.0", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", wantErr: errVersionNotSupp},
		{name: "http 0.9 style", in: "GET /\r\n\r\n", wantErr: errRequestLine},
		{name: "bad method char", in: "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errMethod},
		{name: "connect", in: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", wantErr: errConnect},
		{name: "asterisk outside options", in: "GET * HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errAsterisk},
		{name: "authority form outside connect", in: "GET a.example:80 HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "fragment in target", in: "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "bad percent-encoding", in: "GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "non-ascii target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "absolute form with userinfo", in: "GET http://u@b.example/ HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "absolute form other scheme", in: "GET ftp://b.example/ HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "absolute form ip literal", in: "GET http://[::1]/ HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "absolute form bad port", in: "GET http://b:8x/ HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errTarget},
		{name: "bare LF request line", in: "GET / HTTP/1.1\nHost: h\r\n\r\n", wantErr: errBareLF},
		{name: "bare CR request line", in: "GET / HTTP/1.1\rHost: h\r\n\r\n", wantErr: errBareCR},
		{name: "request line too long", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 100, MaxHeaders: 4}, in: "GET /123 HTTP/1.1\r\nHost: h\r\n\r\n", wantErr: errURITooLong},
		{name: "request line too long before its end", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 100, MaxHeaders: 4}, in: "GET /" + long, wantErr: errURITooLong},

		// Header lines.
		{name: "bare LF header", in: "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", wantErr: errBareLF},
		{name: "LF only everywhere", in: "GET / HTTP/1.1\nHost: h\n\n", wantErr: errBareLF},
		{name: "bare LF end of head", in: "GET / HTTP/1.1\r\nHost: h\r\n\n", wantErr: errBareLF},
		{name: "bare CR in value", in: get("X: a\rb\r\n"), wantErr: errBareCR},
		{name: "obs-fold", in: get("X: a\r\n b\r\n"), wantErr: errObsFold},
		{name: "whitespace before first field", in: "GET / HTTP/1.1\r\n Host: h\r\n\r\n", wantErr: errObsFold},
		{name: "space before colon", in: get("X : a\r\n"), wantErr: errSpaceBeforeColon},
		{name: "empty name", in: get(": a\r\n"), wantErr: errHeaderName},
		{name: "no colon", in: get("X-No-Colon\r\n"), wantErr: errHeaderName},
		{name: "bad name char", in: get("X(y): a\r\n"), wantErr: errHeaderName},
		{name: "NUL in value", in: get("X: a\x00b\r\n"), wantErr: errHeaderValue},
		{name: "DEL in value", in: get("X: a\x7fb\r\n"), wantErr: errHeaderValue},
		{name: "CTL in value", in: get("X: a\x01b\r\n"), wantErr: errHeaderValue},
		{name: "too many headers", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 1000, MaxHeaders: 2}, in: get("A: 1\r\nB: 2\r\n"), wantErr: errTooManyHeaders},
		{name: "header section too large", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 30, MaxHeaders: 10}, in: get("A: " + long + "\r\n"), wantErr: errHeadersTooLarge},
		{name: "header section too large before its end", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 30, MaxHeaders: 10}, in: "GET / HTTP/1.1\r\nHost: a.example\r\nA: " + long, wantErr: errHeadersTooLarge},
		{name: "one byte over header limit", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 18, MaxHeaders: 1}, in: "GET /12 HTTP/1.1\r\nHost: a.example\r\n\r\n", wantErr: errHeadersTooLarge},

		// Framing.
		{name: "CL and TE", in: get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), wantErr: errCLAndTE},
		{name: "TE and CL", in: get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), wantErr: errCLAndTE},
		{name: "duplicate CL same value", in: get("Content-Length: 5\r\nContent-Length: 5\r\n"), wantErr: errDupContentLength},
		{name: "duplicate CL different value", in: get("Content-Length: 5\r\nContent-Length: 6\r\n"), wantErr: errDupContentLength},
		{name: "CL list", in: get("Content-Length: 5, 5\r\n"), wantErr: errContentLength},
		{name: "CL signed", in: get("Content-Length: +5\r\n"), wantErr: errContentLength},
		{name: "CL negative", in: get("Content-Length: -1\r\n"), wantErr: errContentLength},
		{name: "CL hex", in: get("Content-Length: 0x5\r\n"), wantErr: errContentLength},
		{name: "CL empty", in: get("Content-Length:\r\n"), wantErr: errContentLength},
		{name: "CL overflow", in: get("Content-Length: 9223372036854775808\r\n"), wantErr: errContentLength},
		{name: "CL inner space", in: get("Content-Length: 1 2\r\n"), wantErr: errContentLength},
		{name: "TE list chunked last", in: get("Transfer-Encoding: gzip, chunked\r\n"), wantErr: errTransferEncoding},
		{name: "TE chunked identity", in: get("Transfer-Encoding: chunked, identity\r\n"), wantErr: errTransferEncoding},
		{name: "TE chunked twice in list", in: get("Transfer-Encoding: chunked, chunked\r\n"), wantErr: errTransferEncoding},
		{name: "TE chunked twice in fields", in: get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), wantErr: errTransferEncoding},
		{name: "TE identity", in: get("Transfer-Encoding: identity\r\n"), wantErr: errUnknownCoding},
		{name: "TE gzip", in: get("Transfer-Encoding: gzip\r\n"), wantErr: errUnknownCoding},
		{name: "TE chunked with param", in: get("Transfer-Encoding: chunked;q=1\r\n"), wantErr: errTransferEncoding},
		{name: "TE empty", in: get("Transfer-Encoding:\r\n"), wantErr: errTransferEncoding},
		{name: "TE vertical tab", in: get("Transfer-Encoding: \x0bchunked\r\n"), wantErr: errHeaderValue},
		{name: "TE obs-fold", in: get("Transfer-Encoding: chunked\r\n , identity\r\n"), wantErr: errObsFold},
		{name: "TE space before colon", in: get("Transfer-Encoding : chunked\r\n"), wantErr: errSpaceBeforeColon},
		{name: "trailer names content-length", in: get("Trailer: X-Sum, content-length\r\nTransfer-Encoding: chunked\r\n"), wantErr: errTrailerField},
		{name: "trailer names transfer-encoding", in: get("Trailer: Transfer-Encoding\r\n"), wantErr: errTrailerField},
		{name: "trailer names trailer", in: get("Trailer: ,trailer\r\n"), wantErr: errTrailerField},
		{name: "TE in http10", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errTEInHTTP10},

		// Host and Expect.
		{name: "missing host", in: "GET / HTTP/1.1\r\n\r\n", wantErr: errMissingHost},
		{name: "missing host absolute form", in: "GET http://a/ HTTP/1.1\r\n\r\n", wantErr: errMissingHost},
		{name: "two hosts", in: get("Host: b.example\r\n"), wantErr: errMultipleHost},
		{name: "two hosts http10", in: "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", wantErr: errMultipleHost},
		{name: "empty host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", wantErr: errHost},
		{name: "host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", wantErr: errHost},
		{name: "host with path", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", wantErr: errHost},
		{name: "host with space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", wantErr: errHost},
		{name: "host empty port", in: "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", wantErr: errHost},
		{name: "other expectation", in: get("Expect: something\r\n"), wantErr: errExpectation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits
			if tc.limits != nil {
				l = *tc.limits
			}
			p := testParser(t, l)
			r := NewRequest(l)
			n, err := p.Parse([]byte(tc.in), r)
			if tc.wantErr != nil {
				var e *Error
				if !errors.As(err, &e) || e != tc.wantErr {
					t.Fatalf("Parse error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(tc.in) {
				t.Errorf("n = %d, want %d", n, len(tc.in))
			}
			got := want{
				method: string(r.Method), target: string(r.Target), host: string(r.Host),
				minor: r.Minor, form: r.Form, cl: r.ContentLength, chunked: r.Chunked,
				keepAlive: r.KeepAlive, expect100: r.Expect100, headers: len(r.Headers),
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseIncomplete(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewRequest(DefaultLimits)
	full := get("Content-Length: 3\r\n")
	for i := 0; i < len(full); i++ {
		if _, err := p.Parse([]byte(full[:i]), r); err != ErrIncomplete {
			t.Fatalf("prefix %q: err = %v, want ErrIncomplete", full[:i], err)
		}
	}
	// A pipelined second request and a body after the head are left alone.
	buf := []byte(full + "abc" + get(""))
	n, err := p.Parse(buf, r)
	if err != nil || n != len(full) {
		t.Fatalf("Parse = %d, %v; want %d, nil", n, err, len(full))
	}
	n2, err := p.Parse(buf[n+3:], r)
	if err != nil || n2 != len(get("")) {
		t.Fatalf("second Parse = %d, %v", n2, err)
	}

	// The CRLF an old client sends after a POST body is part of the next
	// head: no prefix of it is complete, and n covers it.
	buf = []byte("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\n" + get(""))
	n, err = p.Parse(buf, r)
	if err != nil || string(buf[n:n+2]) != "ab" {
		t.Fatalf("POST Parse = %d, %v", n, err)
	}
	next := buf[n+2:]
	for i := 0; i < len(next); i++ {
		if _, err := p.Parse(next[:i], r); err != ErrIncomplete {
			t.Fatalf("prefix %q: err = %v, want ErrIncomplete", next[:i], err)
		}
	}
	n, err = p.Parse(next, r)
	if err != nil || n != len(next) || string(r.Method) != "GET" || string(r.Host) != "a.example" {
		t.Fatalf("Parse after CRLF = %d, %v, %q %q", n, err, r.Method, r.Host)
	}
}

func TestRequestGet(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewRequest(DefaultLimits)
	if _, err := p.Parse([]byte(get("X-Forwarded-For: 1.2.3.4\r\n")), r); err != nil {
		t.Fatal(err)
	}
	if got := string(r.Get("x-forwarded-for")); got != "1.2.3.4" {
		t.Errorf("Get = %q", got)
	}
	if r.Get("absent") != nil {
		t.Error("Get(absent) != nil")
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name    string
		limits  Limits
		wantErr []string
	}{
		{name: "default", limits: DefaultLimits},
		{name: "all wrong", limits: Limits{}, wantErr: []string{"max_request_line", "max_header_bytes", "max_headers"}},
		{name: "too many headers", limits: Limits{MaxRequestLine: 100, MaxHeaderBytes: 100, MaxHeaders: 1 << 20}, wantErr: []string{"max_headers: must be in 1..4096, got 1048576"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limits.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseZeroAlloc(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewRequest(DefaultLimits)
	inputs := [][]byte{
		[]byte(benchGET),
		[]byte(get("Transfer-Encoding: chunked\r\nConnection: close\r\n")),
		[]byte(get("Content-Length: 5\r\nContent-Length: 5\r\n")), // rejected
		[]byte("GET / HTTP/1.1\r\nHost: a"),                       // incomplete
		[]byte("\r\n" + get("Trailer: X-Sum\r\n")),                // leading CRLF
	}
	for _, in := range inputs {
		if allocs := testing.AllocsPerRun(100, func() { _, _ = p.Parse(in, r) }); allocs != 0 {
			t.Errorf("Parse(%q) allocates %v times", in, allocs)
		}
	}
}
