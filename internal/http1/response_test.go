package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
)

func hdr(name, value string) Header { return Header{Name: []byte(name), Value: []byte(value)} }

func TestAppendResponseHead(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		cl      int64
		headers []Header
		want    string
	}{
		{name: "ok with length", status: 200, cl: 5, headers: []Header{hdr("Content-Type", "text/plain")},
			want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"},
		{name: "empty body has length zero", status: 404, cl: 0,
			want: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"},
		{name: "chunked", status: 200, cl: BodyChunked, headers: []Header{hdr("X-A", "1"), hdr("X-B", "")},
			want: "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: \r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "caller framing fields skipped", status: 502, cl: 3,
			headers: []Header{hdr("content-length", "99"), hdr("Transfer-Encoding", "chunked"), hdr("Connection", "close")},
			want:    "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 3\r\n\r\n"},
		{name: "no framing for 204", status: 204, cl: 10, want: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "no framing for 304", status: 304, cl: BodyChunked, want: "HTTP/1.1 304 Not Modified\r\n\r\n"},
		{name: "no framing for 100", status: 100, cl: 0, want: "HTTP/1.1 100 Continue\r\n\r\n"},
		{name: "negative length other than chunked writes no framing", status: 200, cl: -7,
			want: "HTTP/1.1 200 OK\r\n\r\n"},
		{name: "unregistered status has empty reason", status: 599, cl: 0,
			want: "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"},
		{name: "status out of range becomes 500", status: 42, cl: 0,
			want: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendResponseHead([]byte("x"), tc.status, tc.cl, tc.headers...)
			if string(got) != "x"+tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got[1:], tc.want)
			}
		})
	}
}

func TestChunkEncoding(t *testing.T) {
	tests := []struct {
		name     string
		chunks   []string
		trailers []Header
		want     string
	}{
		{name: "empty body", want: "0\r\n\r\n"},
		{name: "one chunk", chunks: []string{"hello"}, want: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "empty chunk skipped", chunks: []string{"ab", "", "c"}, want: "2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"},
		{name: "hex size", chunks: []string{strings.Repeat("z", 0x1a2)},
			want: "1a2\r\n" + strings.Repeat("z", 0x1a2) + "\r\n0\r\n\r\n"},
		{name: "trailers with forbidden ones skipped", chunks: []string{"x"},
			trailers: []Header{hdr("X-Sum", "42"), hdr("Content-Length", "1"), hdr("Host", "h"), hdr("Server-Timing", "db;dur=5")},
			want:     "1\r\nx\r\n0\r\nX-Sum: 42\r\nServer-Timing: db;dur=5\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			for _, c := range tc.chunks {
				got = AppendChunk(got, []byte(c))
			}
			got = AppendLastChunk(got, tc.trailers...)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			// This package's decoder reads it back.
			body, used, err := decodeAll(DefaultLimits, string(got), 1, 64)
			if err != nil || used != len(got) || body != strings.Join(tc.chunks, "") {
				t.Fatalf("decode: %q %d %v", body, used, err)
			}
		})
	}
}

// TestResponseRoundTrip writes heads and bodies and reads them back with
// net/http's ReadResponse.
func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		chunked     bool
		headers     []Header
		chunks      []string
		trailers    []Header
		wantHeaders http.Header
		wantTrailer http.Header
	}{
		{name: "content-length", status: 200,
			headers:     []Header{hdr("Content-Type", "text/html"), hdr("Set-Cookie", "a=1"), hdr("Set-Cookie", "b=2")},
			chunks:      []string{"<p>hi</p>"},
			wantHeaders: http.Header{"Content-Type": {"text/html"}, "Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"9"}}},
		{name: "chunked with trailers", status: 201, chunked: true,
			headers:     []Header{hdr("Trailer", "X-Sum"), hdr("Cache-Control", "no-store")},
			chunks:      []string{"abc", strings.Repeat("d", 4000), "e"},
			trailers:    []Header{hdr("X-Sum", "7")},
			wantHeaders: http.Header{"Cache-Control": {"no-store"}},
			wantTrailer: http.Header{"X-Sum": {"7"}}},
		{name: "chunked empty", status: 503, chunked: true,
			wantHeaders: http.Header{}},
		{name: "empty length body", status: 404,
			wantHeaders: http.Header{"Content-Length": {"0"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Join(tc.chunks, "")
			cl := int64(len(body))
			if tc.chunked {
				cl = BodyChunked
			}
			out := AppendResponseHead(nil, tc.status, cl, tc.headers...)
			if tc.chunked {
				for _, c := range tc.chunks {
					out = AppendChunk(out, []byte(c))
				}
				out = AppendLastChunk(out, tc.trailers...)
			} else {
				out = append(out, body...)
			}
			br := bufio.NewReader(bytes.NewReader(out))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("ReadResponse: %v\n%q", err, out)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tc.status || resp.Status != strconv.Itoa(tc.status)+" "+StatusText(tc.status) {
				t.Fatalf("status %q", resp.Status)
			}
			if string(got) != body {
				t.Fatalf("body %q, want %q", got, body)
			}
			if br.Buffered() != 0 {
				t.Fatalf("%d bytes left after the response", br.Buffered())
			}
			if tc.chunked != (len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked") {
				t.Fatalf("TransferEncoding %q", resp.TransferEncoding)
			}
			h := resp.Header.Clone()
			h.Del("Trailer") // net/http moves it into resp.Trailer
			if !equalHeader(h, tc.wantHeaders) {
				t.Fatalf("headers %q, want %q", h, tc.wantHeaders)
			}
			if len(tc.wantTrailer) > 0 && !equalHeader(resp.Trailer, tc.wantTrailer) {
				t.Fatalf("trailers %q, want %q", resp.Trailer, tc.wantTrailer)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

// TestStatusText compares the reason phrases with net/http's, which still
// uses a few RFC 7231 names where RFC 9110 renamed them.
func TestStatusText(t *testing.T) {
	renamed := map[int]string{
		413: "Request Entity Too Large",
		414: "Request URI Too Long",
		416: "Requested Range Not Satisfiable",
		422: "Unprocessable Entity",
	}
	for code := 100; code < 600; code++ {
		want := http.StatusText(code)
		if old, ok := renamed[code]; ok && want == old {
			continue
		}
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, net/http says %q", code, got, want)
		}
	}
}

func TestAppendErrorResponse(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "bare LF", err: errBareLF,
			want: "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nConnection: close\r\n\r\nbare LF line ending\n"},
		{name: "too many headers", err: errTooManyHeaders,
			want: "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\nConnection: close\r\n\r\ntoo many header fields\n"},
		{name: "nil error", err: nil,
			want: "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendErrorResponse(nil, tc.err); string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestErrorResponsesReadBack answers what the parser rejects and reads each
// answer back with net/http.
func TestErrorResponsesReadBack(t *testing.T) {
	inputs := []string{
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nExpect: gzip\r\n\r\n",
		"GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n",
		get("X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n"),
		get("Transfer-Encoding: gzip\r\n"),
	}
	l := Limits{MaxRequestLine: 64, MaxHeaderBytes: 512, MaxHeaders: 3}
	p := testParser(t, l)
	r := NewRequest(l)
	for _, in := range inputs {
		_, err := p.Parse([]byte(in), r)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%q: want *Error, got %v", in, err)
		}
		out := AppendErrorResponse(nil, e)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("%s: ReadResponse: %v", e.Reason, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != e.Status || !resp.Close || string(body) != e.Reason+"\n" ||
			resp.Status != strconv.Itoa(e.Status)+" "+StatusText(e.Status) {
			t.Fatalf("%s: read back %q close=%v body %q", e.Reason, resp.Status, resp.Close, body)
		}
	}
}

func TestResponseZeroAlloc(t *testing.T) {
	dst := make([]byte, 0, 4096)
	data := bytes.Repeat([]byte{'x'}, 1024)
	headers := []Header{hdr("Content-Type", "text/html"), hdr("Cache-Control", "max-age=60")}
	trailers := []Header{hdr("X-Sum", "1")}
	tests := []struct {
		name string
		fn   func()
	}{
		{"AppendResponseHead", func() { dst = AppendResponseHead(dst[:0], 200, 1024, headers...) }},
		{"AppendResponseHead chunked", func() { dst = AppendResponseHead(dst[:0], 200, BodyChunked, headers...) }},
		{"AppendChunk", func() { dst = AppendChunk(dst[:0], data) }},
		{"AppendLastChunk", func() { dst = AppendLastChunk(dst[:0], trailers...) }},
		{"AppendErrorResponse", func() { dst = AppendErrorResponse(dst[:0], errHeadersTooLarge) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
				t.Fatalf("%v allocs per run, want 0", n)
			}
		})
	}
}

func BenchmarkResponseHead(b *testing.B) {
	b.Run("baseline-net-http-header-write", func(b *testing.B) {
		h := http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"max-age=60"}, "Content-Length": {"1024"}}
		var out bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			out.WriteString("HTTP/1.1 200 OK\r\n")
			if err := h.Write(&out); err != nil {
				b.Fatal(err)
			}
			out.WriteString("\r\n")
		}
	})
	b.Run("rampart", func(b *testing.B) {
		headers := []Header{hdr("Content-Type", "text/html"), hdr("Cache-Control", "max-age=60")}
		dst := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			dst = AppendResponseHead(dst[:0], 200, 1024, headers...)
		}
	})
}

func BenchmarkChunkEncode(b *testing.B) {
	data := bytes.Repeat([]byte{'x'}, 1024)
	b.Run("baseline-httputil-chunked-writer", func(b *testing.B) {
		var out bytes.Buffer
		out.Grow(4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			out.Reset()
			w := httputil.NewChunkedWriter(&out)
			if _, err := w.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			out.WriteString("\r\n")
		}
	})
	b.Run("rampart", func(b *testing.B) {
		dst := make([]byte, 0, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			dst = AppendChunk(dst[:0], data)
			dst = AppendLastChunk(dst)
		}
	})
}

// FuzzResponse checks that any valid head and body written with
// AppendResponseHead, AppendChunk and AppendLastChunk is read back by
// net/http to the same status, field and body.
func FuzzResponse(f *testing.F) {
	f.Add(uint16(200), false, "X-A", "1", []byte("hello"), uint8(2))
	f.Add(uint16(201), true, "Cache-Control", "no-store", []byte("hello, world"), uint8(5))
	f.Add(uint16(599), true, "X-Empty", "", []byte{}, uint8(0))
	f.Add(uint16(404), false, "Content-Length", "3", []byte("a"), uint8(0))
	dst := make([]byte, 0, 1<<16)
	f.Fuzz(func(t *testing.T, status uint16, chunked bool, name, value string, body []byte, split uint8) {
		st := int(status)
		if st < 200 || st > 999 || st == 204 || st == 304 || !isToken([]byte(name)) {
			return // bodyless statuses are covered by the table tests
		}
		v := []byte(value)
		if !bytes.Equal(trimOWS(v), v) {
			return
		}
		for _, c := range v {
			if classes[c]&classValue == 0 {
				return
			}
		}
		k := http.CanonicalHeaderKey(name)
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
			return // framing is the writer's, tested apart
		}
		cl := int64(len(body))
		if chunked {
			cl = BodyChunked
		}
		dst = AppendResponseHead(dst[:0], st, cl, Header{Name: []byte(name), Value: v})
		if chunked {
			n := int(split) % (len(body) + 1)
			dst = AppendChunk(dst, body[:n])
			dst = AppendChunk(dst, body[n:])
			dst = AppendLastChunk(dst)
		} else {
			dst = append(dst, body...)
		}
		br := bufio.NewReader(bytes.NewReader(dst))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("ReadResponse: %v\n%q", err, dst)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) || br.Buffered() != 0 {
			t.Fatalf("body %q, %v, %d left; want %q", got, err, br.Buffered(), body)
		}
		if resp.StatusCode != st {
			t.Fatalf("status %d, want %d", resp.StatusCode, st)
		}
		if vs := resp.Header.Values(k); len(vs) != 1 || vs[0] != value {
			t.Fatalf("field %s = %q, want %q", k, vs, value)
		}
	})
}
