package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// seeds are valid requests and the classic smuggling attempts.
var seeds = []string{
	get(""),
	"POST /form HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello",
	"POST /up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
	"GET http://b.example/p HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"\r\n" + get(""),
	"\r\n\r\n" + get(""),
	"\n" + get(""),
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
}

// numLeadingCRorLF is net/http's server tolerance for old clients.
func numLeadingCRorLF(v []byte) (n int) {
	for _, b := range v {
		if b != '\r' && b != '\n' {
			break
		}
		n++
	}
	return n
}

// inside reports whether s is empty or lies within buf.
func inside(s, buf []byte) bool {
	if len(s) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(buf))
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	l := Limits{MaxRequestLine: 256, MaxHeaderBytes: 512, MaxHeaders: 8}
	p := testParser(f, l)
	r := NewRequest(l)
	f.Fuzz(func(t *testing.T, buf []byte) {
		n, err := p.Parse(buf, r)
		if err != nil {
			var e *Error
			if n != 0 || !errors.Is(err, ErrIncomplete) && !errors.As(err, &e) {
				t.Fatalf("Parse = %d, %v", n, err)
			}
			if e != nil && (e.Status < 400 || e.Status > 599 || e.Reason == "") {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		// +2+2: the request line's CRLF and one skipped leading empty line.
		if n < len("A / HTTP/1.0\r\n\r\n") || n > len(buf) || n > 2+l.MaxRequestLine+2+l.MaxHeaderBytes || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
			t.Fatalf("n = %d of %d", n, len(buf))
		}
		if len(r.Headers) > l.MaxHeaders || cap(r.Headers) != l.MaxHeaders {
			t.Fatalf("%d headers, cap %d", len(r.Headers), cap(r.Headers))
		}
		head := buf[:n]
		for _, s := range [][]byte{r.Method, r.Target, r.Version, r.Host} {
			if !inside(s, head) {
				t.Fatalf("slice %q outside head", s)
			}
		}
		for _, h := range r.Headers {
			if !inside(h.Name, head) || !inside(h.Value, head) || len(h.Name) == 0 {
				t.Fatalf("header %q: %q outside head", h.Name, h.Value)
			}
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatal("both chunked and Content-Length")
		}
		// Every strict prefix is incomplete: a head is never accepted early.
		if _, err := p.Parse(buf[:n-1], r); err != ErrIncomplete {
			t.Fatalf("prefix of an accepted head: %v", err)
		}
	})
}

// FuzzDifferential checks that whatever Rampart accepts, net/http reads the
// same way, and that they agree on where the message ends.
func FuzzDifferential(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	l := DefaultLimits
	p := testParser(f, l)
	r := NewRequest(l)
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := p.Parse(data, r)
		if err != nil {
			return
		}
		var body []byte
		end := n
		switch {
		case r.Chunked:
			var d ChunkedDecoder
			d.Reset(l)
			out := make([]byte, len(data))
			c, pr, done, err := d.Decode(data[n:], out)
			if err != nil || !done {
				return // rejected, or not all here: nothing to compare
			}
			body, end = out[:pr], n+c
		default:
			if r.BodyLength() > int64(len(data)-n) {
				return
			}
			body = data[n : n+int(r.BodyLength())]
			end = n + len(body)
		}

		// Rampart skips one leading CRLF (RFC 9112 section 2.2). So does
		// net/http's server, but before ReadRequest: it discards up to
		// four leading CR or LF bytes after a POST. Do what it does.
		skip := 0
		if bytes.HasPrefix(data, []byte("\r\n")) {
			skip = numLeadingCRorLF(data[:min(4, len(data))])
		}
		rd := bytes.NewReader(data[skip:])
		br := bufio.NewReaderSize(rd, len(data)+8192)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("Rampart accepts, net/http rejects: %v\n%q", err, data)
		}
		goBody, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("net/http body: %v\n%q", err, data)
		}
		if goEnd := len(data) - br.Buffered() - rd.Len(); goEnd != end {
			t.Fatalf("framing: Rampart ends at %d, net/http at %d\n%q", end, goEnd, data)
		}
		if !bytes.Equal(goBody, body) {
			t.Fatalf("body: %q vs net/http %q", body, goBody)
		}
		if req.Method != string(r.Method) || req.RequestURI != string(r.Target) || req.Host != string(r.Host) {
			t.Fatalf("line: %q %q %q vs net/http %q %q %q", r.Method, r.Target, r.Host, req.Method, req.RequestURI, req.Host)
		}
		if req.Close == r.KeepAlive {
			t.Fatalf("keep-alive %v vs net/http close %v", r.KeepAlive, req.Close)
		}
		ours := http.Header{}
		for _, h := range r.Headers {
			ours.Add(string(h.Name), string(h.Value))
		}
		theirs := req.Header.Clone()
		for _, h := range []string{"Host", "Transfer-Encoding", "Trailer"} { // net/http moves these out of Header
			ours.Del(h)
			theirs.Del(h)
		}
		// net/http adds Cache-Control: no-cache for Pragma: no-cache.
		if ours.Get("Cache-Control") == "" {
			theirs.Del("Cache-Control")
		}
		if len(ours) != len(theirs) {
			t.Fatalf("headers %q vs net/http %q", ours, theirs)
		}
		for k, v := range ours {
			if !slices.Equal(v, theirs[k]) {
				t.Fatalf("header %s: %q vs net/http %q", k, v, theirs[k])
			}
		}
	})
}

// chunkedSeeds are chunked bodies, good and bad, with what may follow them.
var chunkedSeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"3;a=b;c\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other:\r\n\r\nGET / HTTP/1.1\r\n",
	"0\r\n\r\n",
	"5\nhello\r\n0\r\n\r\n",
	"5\r\nhello!\r\n0\r\n\r\n",
	"0\r\nContent-Length: 5\r\n\r\n",
	"0\r\nX: a\r\n b\r\n\r\n",
	"1;" + strings.Repeat("e", 900) + "\r\nx\r\n0\r\n\r\n",
	"5;a=\"x\\\"y\"\r\nhello\r\n0\r\n\r\n",
	"fffffffffffffff\r\n",
}

// FuzzChunked checks that Scan and Decode agree on every input, whole or
// split in two, that Trailers locates a checked section, and that whatever
// they accept net/http decodes to the same body, ending at the same byte.
func FuzzChunked(f *testing.F) {
	for i, s := range chunkedSeeds {
		f.Add([]byte(s), uint16(i*3))
	}
	// Small limits, so that trailer limits are reached too.
	l := Limits{MaxRequestLine: 64, MaxHeaderBytes: 64, MaxHeaders: 3}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var d ChunkedDecoder
		d.Reset(l)
		out := make([]byte, len(data))
		c, p, done, err := d.Decode(data, out)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("Decode error %v is not an *Error", err)
		}
		if c > len(data) || p > c || done && err != nil {
			t.Fatalf("Decode = %d, %d, %v, %v of %d", c, p, done, err, len(data))
		}
		var trailers []byte
		if done {
			start, end := d.Trailers()
			if start > end || end+2 != c || string(data[end:c]) != "\r\n" {
				t.Fatalf("Trailers = %d, %d with consumed %d", start, end, c)
			}
			trailers = data[start:end]
			for len(trailers) > 0 {
				line, next, err := nextLine(trailers, 0, len(trailers), errTrailersTooLarge)
				if err != nil {
					t.Fatalf("trailer section %q: %v", trailers, err)
				}
				if _, _, err := parseFieldLine(line); err != nil {
					t.Fatalf("trailer %q: %v", line, err)
				}
				trailers = trailers[next:]
			}
		}

		d.Reset(l)
		sc, sdone, serr := d.Scan(data)
		if sc != c || sdone != done || serr != err {
			t.Fatalf("Scan = %d, %v, %v; Decode = %d, %v, %v", sc, sdone, serr, c, done, err)
		}

		// Split in two: the result once everything has arrived is the
		// same, whichever call sees it and whatever out holds.
		want := ErrIncomplete
		if done || err != nil {
			want = err
		}
		step := int(split) % (len(data) + 1)
		if step == 0 {
			step = len(data) + 1
		}
		for _, scan := range []bool{false, true} {
			body, used, _, err := runChunked(l, string(data), step, 1+int(split)%7, scan)
			if err != want || used != c || !scan && body != string(out[:p]) {
				t.Fatalf("split at %d (scan %v): %d, %v, %q; whole: %d, %v, %q", step, scan, used, err, body, c, want, out[:p])
			}
		}

		if !done {
			return
		}
		head := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		rd := bytes.NewReader(append([]byte(head), data...))
		br := bufio.NewReaderSize(rd, len(head)+len(data)+8192)
		req, rerr := http.ReadRequest(br)
		if rerr != nil {
			t.Fatalf("net/http: %v", rerr)
		}
		goBody, rerr := io.ReadAll(req.Body)
		if rerr != nil {
			t.Fatalf("Rampart accepts, net/http body: %v\n%q", rerr, data)
		}
		if goEnd := len(head) + len(data) - br.Buffered() - rd.Len(); goEnd != len(head)+c {
			t.Fatalf("framing: Rampart ends at %d, net/http at %d\n%q", c, goEnd-len(head), data)
		}
		if !bytes.Equal(goBody, out[:p]) {
			t.Fatalf("body %q vs net/http %q", out[:p], goBody)
		}
	})
}

// responseSeeds are origin responses, good and bad, with their bodies.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;e\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\n\r\nread until close",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n",
	"HTTP/1.1 204\r\nConnection: close, X-A\r\nX-A: 1\r\nVia: 1.0 a\r\nKeep-Alive: timeout=5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
}

// FuzzParseResponse checks ParseResponse's invariants and that every head
// it accepts forwards, through AppendForwardedResponse, to a head that
// parses again, with ParseResponse and net/http, to the same status,
// framing and end-to-end fields.
func FuzzParseResponse(f *testing.F) {
	for i, s := range responseSeeds {
		f.Add([]byte(s), i%2 == 0)
	}
	l := Limits{MaxRequestLine: 64, MaxHeaderBytes: 256, MaxHeaders: 8}
	p := testParser(f, l)
	r := NewResponse(l)
	dst := make([]byte, 0, 4096)
	f.Fuzz(func(t *testing.T, buf []byte, closeConn bool) {
		n, err := p.ParseResponse(buf, r)
		if err != nil {
			var e *Error
			if n != 0 || !errors.Is(err, ErrIncomplete) && !errors.As(err, &e) {
				t.Fatalf("ParseResponse = %d, %v", n, err)
			}
			if e != nil && (e.Status != 502 || e.Reason == "") {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		if n < len("HTTP/1.1 200\r\n\r\n") || n > len(buf) || n > l.MaxRequestLine+2+l.MaxHeaderBytes || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
			t.Fatalf("n = %d of %d", n, len(buf))
		}
		if len(r.Headers) > l.MaxHeaders || cap(r.Headers) != l.MaxHeaders {
			t.Fatalf("%d headers, cap %d", len(r.Headers), cap(r.Headers))
		}
		head := buf[:n]
		for _, s := range [][]byte{r.Version, r.Reason} {
			if !inside(s, head) {
				t.Fatalf("slice %q outside head", s)
			}
		}
		for _, h := range r.Headers {
			if !inside(h.Name, head) || !inside(h.Value, head) || len(h.Name) == 0 {
				t.Fatalf("header %q: %q outside head", h.Name, h.Value)
			}
		}
		if r.Status < 100 || r.Status > 599 || r.Chunked && r.ContentLength >= 0 {
			t.Fatalf("status %d, chunked %v, cl %d", r.Status, r.Chunked, r.ContentLength)
		}
		if _, err := p.ParseResponse(buf[:n-1], r); err != ErrIncomplete {
			t.Fatalf("prefix of an accepted head: %v", err)
		}
		if _, err := p.ParseResponse(buf, r); err != nil {
			t.Fatal(err)
		}
		dst = AppendForwardedResponse(dst[:0], r, "edge-1", closeConn)
		checkForwardedResponse(t, r, dst, "edge-1", closeConn)
	})
}

// FuzzDifferentialResponse checks that whatever response ParseResponse
// accepts, net/http's ReadResponse reads the same way: same status line,
// fields, connection reuse, and body ending at the same byte, for a GET
// and for a HEAD.
func FuzzDifferentialResponse(f *testing.F) {
	for i, s := range responseSeeds {
		f.Add([]byte(s), i%3 == 0)
	}
	l := DefaultLimits
	p := testParser(f, l)
	r := NewResponse(l)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		n, err := p.ParseResponse(data, r)
		if err != nil {
			return
		}
		method := "GET"
		if head {
			method = "HEAD"
		}
		framing, length := r.BodyFraming([]byte(method))
		var body []byte
		end := n
		switch framing {
		case FramingLength:
			if length > int64(len(data)-n) {
				return
			}
			body, end = data[n:n+int(length)], n+int(length)
		case FramingChunked:
			var d ChunkedDecoder
			d.Reset(l)
			out := make([]byte, len(data))
			c, pr, done, err := d.Decode(data[n:], out)
			if err != nil || !done {
				return
			}
			body, end = out[:pr], n+c
		case FramingClose:
			body, end = data[n:], len(data)
		}

		rd := bytes.NewReader(data)
		br := bufio.NewReaderSize(rd, len(data)+8192)
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("Rampart accepts, net/http rejects: %v\n%q", err, data)
		}
		goBody, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("net/http body: %v\n%q", err, data)
		}
		if goEnd := len(data) - br.Buffered() - rd.Len(); goEnd != end {
			t.Fatalf("framing %v: Rampart ends at %d, net/http at %d\n%q", framing, end, goEnd, data)
		}
		if !bytes.Equal(goBody, body) {
			t.Fatalf("body: %q vs net/http %q", body, goBody)
		}
		statusLine := data[:bytes.IndexByte(data, '\r')]
		if res.StatusCode != r.Status || res.Status != string(statusLine[len("HTTP/1.1 "):]) || res.ProtoMinor != r.Minor {
			t.Fatalf("status %d %q HTTP/1.%d vs net/http %d %q HTTP/1.%d", r.Status, r.Reason, r.Minor, res.StatusCode, res.Status, res.ProtoMinor)
		}
		if framing == FramingChunked && !slices.Equal(res.TransferEncoding, []string{"chunked"}) {
			t.Fatalf("chunked, net/http Transfer-Encoding %q", res.TransferEncoding)
		}
		if framing == FramingLength && res.ContentLength != length || framing == FramingClose && res.ContentLength != -1 {
			t.Fatalf("framing %v %d, net/http Content-Length %d", framing, length, res.ContentLength)
		}
		if reuse := r.KeepAlive && framing != FramingClose; framing != FramingTunnel && reuse == res.Close {
			t.Fatalf("reuse %v (framing %v) vs net/http close %v", reuse, framing, res.Close)
		}
		compareNetHTTPHeaders(t, r.Headers, res.Header)
	})
}
