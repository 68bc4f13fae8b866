package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
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
		if n < len("A / HTTP/1.0\r\n\r\n") || n > len(buf) || n > l.MaxRequestLine+2+l.MaxHeaderBytes || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
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

		rd := bytes.NewReader(data)
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
