package http1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// resp is a minimal 200 head from an origin plus extra field lines.
func resp(extra string) string {
	return "HTTP/1.1 200 OK\r\n" + extra + "\r\n"
}

type wantResp struct {
	minor, status      int
	reason             string
	cl                 int64
	chunked, keepAlive bool
	headers            int
}

func TestParseResponse(t *testing.T) {
	ok200 := wantResp{minor: 1, status: 200, reason: "OK", cl: -1, keepAlive: true}
	with := func(w wantResp, f func(*wantResp)) wantResp { f(&w); return w }
	long := strings.Repeat("a", 100)

	tests := []struct {
		name    string
		limits  *Limits
		in      string
		want    wantResp
		wantErr *Error // nil: success
	}{
		// Accepted.
		{name: "minimal", in: resp(""), want: ok200},
		{name: "content-length", in: resp("Content-Length: 5\r\n"), want: with(ok200, func(w *wantResp) { w.cl = 5; w.headers = 1 })},
		{name: "content-length leading zeros", in: resp("content-length: 007\r\n"), want: with(ok200, func(w *wantResp) { w.cl = 7; w.headers = 1 })},
		{name: "chunked with trailer", in: resp("Transfer-Encoding: Chunked\r\nTrailer: X-Sum\r\n"), want: with(ok200, func(w *wantResp) { w.chunked = true; w.headers = 2 })},
		{name: "connection close", in: resp("Connection: keep-alive, close\r\n"), want: with(ok200, func(w *wantResp) { w.keepAlive = false; w.headers = 1 })},
		{name: "http10 default close", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", want: with(ok200, func(w *wantResp) { w.minor = 0; w.cl = 0; w.keepAlive = false; w.headers = 1 })},
		{name: "http10 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", want: with(ok200, func(w *wantResp) { w.minor = 0; w.headers = 1 })},
		{name: "empty reason with space", in: "HTTP/1.1 204 \r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 204; w.reason = "" })},
		{name: "no reason no space", in: "HTTP/1.1 204\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 204; w.reason = "" })},
		{name: "reason with spaces tab and obs-text", in: "HTTP/1.1 404 Not  Found\t\xc3\xa9 \r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 404; w.reason = "Not  Found\t\xc3\xa9 " })},
		{name: "100 continue", in: "HTTP/1.1 100 Continue\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 100; w.reason = "Continue" })},
		{name: "103 early hints", in: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 103; w.reason = "Early Hints"; w.headers = 1 })},
		{name: "101 switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 101; w.reason = "Switching Protocols"; w.headers = 2 })},
		{name: "599", in: "HTTP/1.1 599 x\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 599; w.reason = "x" })},
		{name: "204 with content-length 0", in: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 204; w.reason = "No Content"; w.cl = 0; w.headers = 1 })},
		{name: "304 with content-length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", want: with(ok200, func(w *wantResp) { w.status = 304; w.reason = "Not Modified"; w.cl = 1234; w.headers = 1 })},
		{name: "exactly at limits", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 8, MaxHeaders: 1}, in: "HTTP/1.1 200 OKA\r\nA: 1\r\n\r\n", want: with(ok200, func(w *wantResp) { w.reason = "OKA"; w.headers = 1 })},

		// Status line.
		{name: "leading empty line", in: "\r\n" + resp(""), wantErr: errOriginStatusLine},
		{name: "lowercase version", in: "http/1.1 200 OK\r\n\r\n", wantErr: errOriginVersion},
		{name: "http 1.2", in: "HTTP/1.2 200 OK\r\n\r\n", wantErr: errOriginVersionNotSupp},
		{name: "http 2.0", in: "HTTP/2.0 200 OK\r\n\r\n", wantErr: errOriginVersionNotSupp},
		{name: "double space", in: "HTTP/1.1  200 OK\r\n\r\n", wantErr: errOriginStatus},
		{name: "tab separator", in: "HTTP/1.1\t200 OK\r\n\r\n", wantErr: errOriginStatusLine},
		{name: "status 099", in: "HTTP/1.1 099 x\r\n\r\n", wantErr: errOriginStatus},
		{name: "status 600", in: "HTTP/1.1 600 x\r\n\r\n", wantErr: errOriginStatus},
		{name: "status four digits", in: "HTTP/1.1 2000 OK\r\n\r\n", wantErr: errOriginStatus},
		{name: "status signed", in: "HTTP/1.1 +20 OK\r\n\r\n", wantErr: errOriginStatus},
		{name: "status line short", in: "HTTP/1.1 20\r\n\r\n", wantErr: errOriginStatusLine},
		{name: "reason DEL", in: "HTTP/1.1 200 O\x7fK\r\n\r\n", wantErr: errOriginReason},
		{name: "reason NUL", in: "HTTP/1.1 200 O\x00K\r\n\r\n", wantErr: errOriginReason},
		{name: "bare CR in reason", in: "HTTP/1.1 200 O\rK\r\n\r\n", wantErr: errOriginBareCR},
		{name: "bare LF status line", in: "HTTP/1.1 200 OK\nX: y\r\n\r\n", wantErr: errOriginBareLF},
		{name: "status line too long", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 100, MaxHeaders: 4}, in: "HTTP/1.1 200 OKAYY\r\n\r\n", wantErr: errOriginStatusTooLong},
		{name: "status line too long before its end", limits: &Limits{MaxRequestLine: 16, MaxHeaderBytes: 100, MaxHeaders: 4}, in: "HTTP/1.1 200 " + long, wantErr: errOriginStatusTooLong},
		{name: "html instead of a head", in: "<html>", wantErr: errOriginStatusLine},
		{name: "tls alert", in: "\x15\x03\x01\x00\x02", wantErr: errOriginStatusLine},
		{name: "bad status before line end", in: "HTTP/1.1 2x", wantErr: errOriginStatusLine},

		// Header lines.
		{name: "bare LF header", in: resp("X: a\nY: b\r\n"), wantErr: errOriginBareLF},
		{name: "LF only everywhere", in: "HTTP/1.1 200 OK\nX: y\n\n", wantErr: errOriginBareLF},
		{name: "bare CR in value", in: resp("X: a\rb\r\n"), wantErr: errOriginBareCR},
		{name: "obs-fold", in: resp("X: a\r\n b\r\n"), wantErr: errOriginObsFold},
		{name: "space before colon", in: resp("X : a\r\n"), wantErr: errOriginSpaceBeforeColon},
		{name: "bad name", in: resp("X(y): a\r\n"), wantErr: errOriginHeaderName},
		{name: "no colon", in: resp("X\r\n"), wantErr: errOriginHeaderName},
		{name: "NUL in value", in: resp("X: a\x00b\r\n"), wantErr: errOriginHeaderValue},
		{name: "too many headers", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 1000, MaxHeaders: 2}, in: resp("A: 1\r\nB: 2\r\nC: 3\r\n"), wantErr: errOriginTooManyHeaders},
		{name: "header section too large", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 30, MaxHeaders: 10}, in: resp("A: " + long + "\r\n"), wantErr: errOriginHeadersTooLarge},

		// Framing.
		{name: "CL and TE", in: resp("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), wantErr: errOriginCLAndTE},
		{name: "TE and CL on 304", in: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", wantErr: errOriginCLAndTE},
		{name: "duplicate CL same value", in: resp("Content-Length: 5\r\nContent-Length: 5\r\n"), wantErr: errOriginDupContentLength},
		{name: "CL list", in: resp("Content-Length: 5, 5\r\n"), wantErr: errOriginContentLength},
		{name: "CL negative", in: resp("Content-Length: -1\r\n"), wantErr: errOriginContentLength},
		{name: "TE gzip", in: resp("Transfer-Encoding: gzip\r\n"), wantErr: errOriginUnknownCoding},
		{name: "TE gzip then chunked", in: resp("Transfer-Encoding: gzip, chunked\r\n"), wantErr: errOriginTransferEncoding},
		{name: "TE twice", in: resp("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), wantErr: errOriginTransferEncoding},
		{name: "TE in http10", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errOriginTEInHTTP10},
		{name: "trailer names content-length", in: resp("Transfer-Encoding: chunked\r\nTrailer: Content-Length\r\n"), wantErr: errOriginTrailerField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits
			if tc.limits != nil {
				l = *tc.limits
			}
			p := testParser(t, l)
			r := NewResponse(l)
			n, err := p.ParseResponse([]byte(tc.in), r)
			if tc.wantErr != nil {
				var e *Error
				if !errors.As(err, &e) || e != tc.wantErr || n != 0 {
					t.Fatalf("ParseResponse = %d, %v; want %v", n, err, tc.wantErr)
				}
				return
			}
			if err != nil || n != len(tc.in) {
				t.Fatalf("ParseResponse = %d, %v; want %d", n, err, len(tc.in))
			}
			got := wantResp{
				minor: r.Minor, status: r.Status, reason: string(r.Reason), cl: r.ContentLength,
				chunked: r.Chunked, keepAlive: r.KeepAlive, headers: len(r.Headers),
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if wantVersion := "HTTP/1." + string(rune('0'+r.Minor)); string(r.Version) != wantVersion {
				t.Errorf("Version %q, want %q", r.Version, wantVersion)
			}
		})
	}
}

// TestOriginErrors checks that every error the shared helpers return has
// its own 502 counterpart, so a broken origin is never blamed on the client.
func TestOriginErrors(t *testing.T) {
	shared := []*Error{
		errBareLF, errBareCR, errHeadersTooLarge, errTooManyHeaders, errObsFold, errHeaderName,
		errSpaceBeforeColon, errHeaderValue, errContentLength, errDupContentLength, errCLAndTE,
		errTransferEncoding, errUnknownCoding, errTEInHTTP10, errTrailerField,
	}
	seen := map[*Error]bool{}
	for _, e := range shared {
		got, ok := originError(e).(*Error)
		if !ok || got.Status != 502 || got == errOriginMalformed || seen[got] || !strings.HasSuffix(got.Reason, e.Reason) {
			t.Errorf("originError(%q) = %v", e.Reason, got)
		}
		seen[got] = true
	}
	if originError(nil) != nil || originError(ErrIncomplete) != ErrIncomplete || originError(errOriginReason) != errOriginReason {
		t.Error("originError changes nil, ErrIncomplete or an origin error")
	}
}

func TestParseResponseIncomplete(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewResponse(DefaultLimits)
	interim := "HTTP/1.1 100 Continue\r\n\r\n"
	final := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
	for _, full := range []string{interim, final, "HTTP/1.0 204\r\n\r\n"} {
		for i := 0; i < len(full); i++ {
			if _, err := p.ParseResponse([]byte(full[:i]), r); err != ErrIncomplete {
				t.Fatalf("prefix %q: err = %v, want ErrIncomplete", full[:i], err)
			}
		}
	}
	// An interim response, then the final one and its body: each parse
	// stops at its own head.
	buf := []byte(interim + final + "abc")
	n, err := p.ParseResponse(buf, r)
	if err != nil || n != len(interim) || !r.Interim() {
		t.Fatalf("ParseResponse = %d, %v, interim %v", n, err, r.Interim())
	}
	n2, err := p.ParseResponse(buf[n:], r)
	if err != nil || n2 != len(final) || r.Interim() || string(buf[n+n2:]) != "abc" {
		t.Fatalf("second ParseResponse = %d, %v", n2, err)
	}
}

func TestResponseGet(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewResponse(DefaultLimits)
	if _, err := p.ParseResponse([]byte(resp("Content-Type: text/html\r\n")), r); err != nil {
		t.Fatal(err)
	}
	if got := string(r.Get("content-type")); got != "text/html" {
		t.Errorf("Get = %q", got)
	}
	if r.Get("absent") != nil {
		t.Error("Get(absent) != nil")
	}
}

func TestBodyFraming(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		method      string
		wantFraming Framing
		wantLen     int64
		wantInterim bool
	}{
		{name: "content-length", in: resp("Content-Length: 5\r\n"), method: "GET", wantFraming: FramingLength, wantLen: 5},
		{name: "content-length zero", in: resp("Content-Length: 0\r\n"), method: "POST", wantFraming: FramingLength},
		{name: "chunked", in: resp("Transfer-Encoding: chunked\r\n"), method: "GET", wantFraming: FramingChunked},
		{name: "neither", in: resp(""), method: "GET", wantFraming: FramingClose},
		{name: "neither http10", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", method: "GET", wantFraming: FramingClose},
		{name: "head with content-length", in: resp("Content-Length: 5\r\n"), method: "HEAD", wantFraming: FramingNone},
		{name: "head with chunked", in: resp("Transfer-Encoding: chunked\r\n"), method: "HEAD", wantFraming: FramingNone},
		{name: "head with neither", in: resp(""), method: "HEAD", wantFraming: FramingNone},
		{name: "204", in: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", method: "DELETE", wantFraming: FramingNone},
		{name: "304 with content-length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", method: "GET", wantFraming: FramingNone},
		{name: "304 with chunked", in: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", method: "GET", wantFraming: FramingNone},
		{name: "100", in: "HTTP/1.1 100 Continue\r\n\r\n", method: "POST", wantFraming: FramingNone, wantInterim: true},
		{name: "103", in: "HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n", method: "GET", wantFraming: FramingNone, wantInterim: true},
		{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", method: "GET", wantFraming: FramingTunnel},
		{name: "101 to head", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", method: "HEAD", wantFraming: FramingTunnel},
		{name: "2xx to connect", in: resp(""), method: "CONNECT", wantFraming: FramingTunnel},
		{name: "407 to connect", in: "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n", method: "CONNECT", wantFraming: FramingLength, wantLen: 3},
		{name: "lowercase head is not HEAD", in: resp("Content-Length: 5\r\n"), method: "head", wantFraming: FramingLength, wantLen: 5},
	}
	p := testParser(t, DefaultLimits)
	r := NewResponse(DefaultLimits)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.ParseResponse([]byte(tc.in), r); err != nil {
				t.Fatal(err)
			}
			f, n := r.BodyFraming([]byte(tc.method))
			if f != tc.wantFraming || n != tc.wantLen {
				t.Errorf("BodyFraming(%s) = %v, %d; want %v, %d", tc.method, f, n, tc.wantFraming, tc.wantLen)
			}
			if r.Interim() != tc.wantInterim {
				t.Errorf("Interim = %v", r.Interim())
			}
		})
	}
}

func TestAppendForwardedResponse(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		closeConn bool
		want      string
	}{
		{
			name: "content-length",
			in:   resp("Content-Type: text/plain\r\nContent-Length: 5\r\n"),
			want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVia: 1.1 rampart\r\nContent-Length: 5\r\n\r\n",
		},
		{
			name: "hop-by-hop fields removed, trailer kept",
			in: resp("Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
				"TE: trailers\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nProxy-Authentication-Info: x\r\n" +
				"Server: o\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n"),
			want: "HTTP/1.1 200 OK\r\nServer: o\r\nTrailer: X-Sum\r\nVia: 1.1 rampart\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name: "connection cannot remove framing or via",
			in:   resp("Connection: content-length, via, Set-Cookie\r\nSet-Cookie: a=1\r\nContent-Length: 3\r\nVia: 1.1 inner\r\n"),
			want: "HTTP/1.1 200 OK\r\nVia: 1.1 rampart\r\nContent-Length: 3\r\n\r\n",
		},
		{
			name: "via appended with the received protocol",
			in:   "HTTP/1.0 404 Not Found\r\nVia: 1.0 a, 1.1 b\r\nvia: 1.1 c\r\nContent-Length: 0\r\n\r\n",
			want: "HTTP/1.1 404 Not Found\r\nVia: 1.0 a, 1.1 b, 1.1 c, 1.0 rampart\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name: "framing normalised",
			in:   resp("content-length: 0007\r\n"),
			want: "HTTP/1.1 200 OK\r\nVia: 1.1 rampart\r\nContent-Length: 7\r\n\r\n",
		},
		{
			name: "chunked normalised",
			in:   resp("transfer-encoding: Chunked\r\n"),
			want: "HTTP/1.1 200 OK\r\nVia: 1.1 rampart\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name: "204 loses its content-length",
			in:   "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
			want: "HTTP/1.1 204 No Content\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "interim",
			in:   "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
			want: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nVia: 1.1 rampart\r\n\r\n",
		},
		{
			name: "304 keeps its content-length",
			in:   "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n",
			want: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nVia: 1.1 rampart\r\nContent-Length: 99\r\n\r\n",
		},
		{
			name:      "close-delimited",
			in:        "HTTP/1.0 200 OK\r\n\r\n",
			closeConn: true,
			want:      "HTTP/1.1 200 OK\r\nVia: 1.0 rampart\r\nConnection: close\r\n\r\n",
		},
		{
			name:      "close chosen by the caller",
			in:        resp("Connection: keep-alive\r\nContent-Length: 0\r\n"),
			closeConn: true,
			want:      "HTTP/1.1 200 OK\r\nVia: 1.1 rampart\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		},
		{
			name: "empty reason",
			in:   "HTTP/1.1 204\r\n\r\n",
			want: "HTTP/1.1 204 \r\nVia: 1.1 rampart\r\n\r\n",
		},
	}
	p := testParser(t, DefaultLimits)
	r := NewResponse(DefaultLimits)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.ParseResponse([]byte(tc.in), r); err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			got := AppendForwardedResponse([]byte("prefix"), r, "rampart", tc.closeConn)
			if string(got[:6]) != "prefix" {
				t.Fatalf("dst prefix overwritten: %q", got)
			}
			if string(got[6:]) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got[6:], tc.want)
			}
			checkForwardedResponse(t, r, got[6:], "rampart", tc.closeConn)
		})
	}
}

// hopByHopResponse lists the fields a forwarded response never carries
// from the origin, written apart from the implementation on purpose.
var hopByHopResponse = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authentication-Info",
}

// rewrittenResponse lists the fields the edge writes itself.
var rewrittenResponse = []string{"Content-Length", "Transfer-Encoding", "Via"}

// checkForwardedResponse checks that out, the forwarded head of orig,
// parses again with ParseResponse and with net/http to orig's status,
// reason, framing and end-to-end fields, plus Via, and that it carries no
// hop-by-hop field.
func checkForwardedResponse(t *testing.T, orig *Response, out []byte, via string, closeConn bool) {
	t.Helper()
	l := DefaultLimits
	l.MaxHeaders = maxHeadersCap
	l.MaxHeaderBytes = maxHeaderBytesCap
	l.MaxRequestLine = maxRequestLineCap
	p := testParser(t, l)
	r := NewResponse(l)
	n, err := p.ParseResponse(out, r)
	if err != nil || n != len(out) {
		t.Fatalf("forwarded head does not parse again: %d of %d, %v\n%q", n, len(out), err, out)
	}
	if r.Status != orig.Status || string(r.Reason) != string(orig.Reason) || r.Minor != 1 {
		t.Fatalf("status line %d %q HTTP/1.%d, want %d %q HTTP/1.1", r.Status, r.Reason, r.Minor, orig.Status, orig.Reason)
	}
	bodyless := orig.Status < 200 || orig.Status == 204
	wantCL, wantChunked := orig.ContentLength, orig.Chunked
	if bodyless {
		wantCL, wantChunked = -1, false
	}
	if r.ContentLength != wantCL || r.Chunked != wantChunked {
		t.Fatalf("framing cl=%d chunked=%v, want %d %v", r.ContentLength, r.Chunked, wantCL, wantChunked)
	}
	if r.KeepAlive == closeConn {
		t.Fatalf("KeepAlive %v with closeConn %v", r.KeepAlive, closeConn)
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
	var want, origVia []string
	for _, h := range orig.Headers {
		k := http.CanonicalHeaderKey(string(h.Name))
		if k == "Via" && len(h.Value) > 0 && !slices.Contains(options, k) {
			origVia = append(origVia, string(h.Value))
		}
		if slices.Contains(hopByHopResponse, k) || slices.Contains(rewrittenResponse, k) || slices.Contains(options, k) {
			continue
		}
		want = append(want, k+": "+string(h.Value))
	}
	var got []string
	counts := map[string]int{}
	for _, h := range r.Headers {
		k := http.CanonicalHeaderKey(string(h.Name))
		counts[k]++
		if k == "Connection" && closeConn && string(h.Value) == "close" {
			continue
		}
		if slices.Contains(hopByHopResponse, k) {
			t.Fatalf("hop-by-hop field %q forwarded\n%q", h.Name, out)
		}
		if slices.Contains(options, k) && !slices.Contains(rewrittenResponse, k) {
			t.Fatalf("field %q named in Connection forwarded\n%q", h.Name, out)
		}
		if slices.Contains(rewrittenResponse, k) {
			continue
		}
		got = append(got, k+": "+string(h.Value))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("end-to-end fields\n%q\nwant\n%q", got, want)
	}
	wantVia := strings.Join(append(origVia, "1."+string(rune('0'+orig.Minor))+" "+via), ", ")
	if counts["Via"] != 1 || string(r.Get("via")) != wantVia {
		t.Fatalf("Via %q (%d fields), want %q", r.Get("via"), counts["Via"], wantVia)
	}

	// net/http reads the same.
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("net/http rejects the forwarded head: %v\n%q", err, out)
	}
	if res.StatusCode != r.Status {
		t.Fatalf("net/http status %d, want %d", res.StatusCode, r.Status)
	}
	compareNetHTTPHeaders(t, r.Headers, res.Header)
}

// compareNetHTTPHeaders checks that net/http read the fields in ours, minus
// those it moves or drops: Transfer-Encoding, Trailer and Connection.
func compareNetHTTPHeaders(t *testing.T, ours []Header, header http.Header) {
	t.Helper()
	o := http.Header{}
	for _, h := range ours {
		o.Add(string(h.Name), string(h.Value))
	}
	theirs := header.Clone()
	for _, k := range []string{"Transfer-Encoding", "Trailer", "Connection"} {
		o.Del(k)
		theirs.Del(k)
	}
	if o.Get("Cache-Control") == "" {
		theirs.Del("Cache-Control") // added by net/http for Pragma: no-cache
	}
	if len(o) != len(theirs) {
		t.Fatalf("headers %q vs net/http %q", o, theirs)
	}
	for k, v := range o {
		if !slices.Equal(v, theirs[k]) {
			t.Fatalf("header %s: %q vs net/http %q", k, v, theirs[k])
		}
	}
}

func TestOriginZeroAlloc(t *testing.T) {
	p := testParser(t, DefaultLimits)
	r := NewResponse(DefaultLimits)
	inputs := [][]byte{
		[]byte(benchResponse),
		[]byte(resp("Transfer-Encoding: chunked\r\nConnection: close, X-A\r\nX-A: 1\r\nTrailer: X-Sum\r\n")),
		[]byte(resp("Content-Length: 5\r\nContent-Length: 5\r\n")), // rejected
		[]byte("HTTP/1.1 200 OK\r\nServer: a"),                     // incomplete
		[]byte("<html>"),                                           // rejected early
	}
	dst := make([]byte, 0, 4096)
	for _, in := range inputs {
		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.ParseResponse(in, r); err != nil {
				return
			}
			_, _ = r.BodyFraming([]byte("GET"))
			dst = AppendForwardedResponse(dst[:0], r, "rampart", true)
		}); allocs != 0 {
			t.Errorf("ParseResponse, BodyFraming, AppendForwardedResponse(%q) allocate %v times", in, allocs)
		}
	}
}

// benchResponse is a typical origin response head (about 400 bytes, 9
// fields).
const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 24 Nov 2025 09:00:00 GMT\r\n" +
	"Server: origin/1.0\r\n" +
	"Content-Type: application/javascript; charset=utf-8\r\n" +
	"Content-Length: 48213\r\n" +
	"Cache-Control: public, max-age=31536000, immutable\r\n" +
	"ETag: \"5f1e-62c9b0c1a7e40\"\r\n" +
	"Last-Modified: Fri, 21 Nov 2025 17:12:01 GMT\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

// BenchmarkParseResponse compares ParseResponse with net/http's
// ReadResponse on the same head.
func BenchmarkParseResponse(b *testing.B) {
	in := []byte(benchResponse)
	b.Run("baseline-net-http", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		rd := bytes.NewReader(in)
		br := bufio.NewReader(rd)
		req := &http.Request{Method: "GET"}
		for b.Loop() {
			rd.Reset(in)
			br.Reset(rd)
			if _, err := http.ReadResponse(br, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rampart", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		p := testParser(b, DefaultLimits)
		r := NewResponse(DefaultLimits)
		method := []byte("GET")
		for b.Loop() {
			if _, err := p.ParseResponse(in, r); err != nil {
				b.Fatal(err)
			}
			if f, _ := r.BodyFraming(method); f != FramingLength {
				b.Fatal(f)
			}
		}
	})
}

// BenchmarkForwardResponse compares AppendForwardedResponse with what a
// net/http based proxy does per response.
func BenchmarkForwardResponse(b *testing.B) {
	in := []byte(benchResponse)
	b.Run("baseline-net-http-header-write", func(b *testing.B) {
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			h := res.Header.Clone()
			for _, k := range hopByHopResponse {
				h.Del(k)
			}
			h.Add("Via", "1.1 rampart")
			out.WriteString("HTTP/1.1 " + res.Status + "\r\n")
			if err := h.Write(&out); err != nil {
				b.Fatal(err)
			}
			out.WriteString("\r\n")
		}
	})
	b.Run("rampart", func(b *testing.B) {
		p := testParser(b, DefaultLimits)
		r := NewResponse(DefaultLimits)
		if _, err := p.ParseResponse(in, r); err != nil {
			b.Fatal(err)
		}
		dst := make([]byte, 0, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			dst = AppendForwardedResponse(dst[:0], r, "rampart", false)
		}
	})
}
