package http1

import (
	"errors"
	"strings"
	"testing"
)

// decodeAll runs d over in the way an event loop would: the input arrives
// step bytes at a time into a buffer that keeps unconsumed bytes, and out
// holds at most outCap bytes per call.
func decodeAll(l Limits, in string, step, outCap int) (body string, used int, err error) {
	var d ChunkedDecoder
	d.Reset(l)
	var buf []byte
	var got []byte
	out := make([]byte, outCap)
	fed := 0
	for {
		if fed < len(in) {
			end := min(fed+step, len(in))
			buf = append(buf, in[fed:end]...)
			fed = end
		}
		c, p, done, err := d.Decode(buf, out)
		got = append(got, out[:p]...)
		buf = buf[c:]
		used += c
		if err != nil || done {
			return string(got), used, err
		}
		if c == 0 && p == 0 && fed == len(in) {
			return string(got), used, ErrIncomplete
		}
	}
}

func TestChunkedDecode(t *testing.T) {
	tests := []struct {
		name     string
		limits   *Limits
		in       string
		wantBody string
		wantErr  error // an *Error, ErrIncomplete, or nil
	}{
		{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", wantBody: "hello"},
		{name: "two chunks uppercase hex", in: "3\r\nhel\r\nA\r\nlo world!!\r\n0\r\n\r\n", wantBody: "hello world!!"},
		{name: "empty body", in: "0\r\n\r\n"},
		{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", wantBody: "hello"},
		{name: "extensions", in: "5;a=b;c;d=\"x\\\"y z\"\r\nhello\r\n0;last\r\n\r\n", wantBody: "hello"},
		{name: "trailers", in: "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\r\n\r\n", wantBody: "hello"},

		{name: "truncated", in: "5\r\nhel", wantBody: "hel", wantErr: ErrIncomplete},
		{name: "no final CRLF", in: "0\r\n", wantErr: ErrIncomplete},
		{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "signed size", in: "+5\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "0x prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "leading space", in: " 5\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "trailing space", in: "5 \r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "space before extension", in: "5 ;a\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "trailing garbage", in: "5g\r\nhello\r\n0\r\n\r\n", wantErr: errChunkSize},
		{name: "overflow", in: "10000000000000000\r\n", wantErr: errChunkTooLarge},
		{name: "too large", in: "1000000000000000\r\n", wantErr: errChunkTooLarge},
		{name: "empty extension name", in: "5;\r\nhello\r\n0\r\n\r\n", wantErr: errChunkExt},
		{name: "empty extension value", in: "5;a=\r\nhello\r\n0\r\n\r\n", wantErr: errChunkExt},
		{name: "unterminated quoted extension", in: "5;a=\"x\r\nhello\r\n0\r\n\r\n", wantErr: errChunkExt},
		{name: "size line too long", in: "5;a=" + strings.Repeat("b", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n", wantErr: errChunkLineTooLong},
		{name: "too much overhead", in: strings.Repeat("1;"+strings.Repeat("e", 900)+"\r\nx\r\n", 20) + "0\r\n\r\n", wantBody: strings.Repeat("x", 18), wantErr: errChunkOverhead},
		{name: "bare LF after size", in: "5\nhello\r\n0\r\n\r\n", wantErr: errBareLF},
		{name: "bare CR after size", in: "5\rhello\r\n0\r\n\r\n", wantErr: errBareCR},
		{name: "data longer than size", in: "5\r\nhello!\r\n0\r\n\r\n", wantBody: "hello", wantErr: errChunkDataCRLF},
		{name: "LF after data", in: "5\r\nhello\n0\r\n\r\n", wantBody: "hello", wantErr: errChunkDataCRLF},
		{name: "bare LF final", in: "0\r\n\n", wantErr: errBareLF},
		{name: "trailer obs-fold", in: "0\r\nX: a\r\n b\r\n\r\n", wantErr: errObsFold},
		{name: "trailer bad name", in: "0\r\nX Y: a\r\n\r\n", wantErr: errSpaceBeforeColon},
		{name: "trailer NUL", in: "0\r\nX: a\x00\r\n\r\n", wantErr: errHeaderValue},
		{name: "trailer content-length", in: "0\r\nContent-Length: 5\r\n\r\n", wantErr: errForbiddenTrailer},
		{name: "trailer transfer-encoding", in: "0\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errForbiddenTrailer},
		{name: "too many trailers", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 100, MaxHeaders: 1}, in: "0\r\nA: 1\r\nB: 2\r\n\r\n", wantErr: errTooManyTrailers},
		{name: "trailers too large", limits: &Limits{MaxRequestLine: 64, MaxHeaderBytes: 10, MaxHeaders: 10}, in: "0\r\nA: 12345678\r\n\r\n", wantErr: errTrailersTooLarge},
	}
	for _, tc := range tests {
		l := DefaultLimits
		if tc.limits != nil {
			l = *tc.limits
		}
		for _, feed := range []struct {
			name      string
			step, out int
		}{{"whole", 1 << 20, 1 << 20}, {"byte-by-byte", 1, 1 << 20}, {"small-out", 1 << 20, 3}} {
			t.Run(tc.name+"/"+feed.name, func(t *testing.T) {
				body, used, err := decodeAll(l, tc.in, feed.step, feed.out)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if body != tc.wantBody {
					t.Errorf("body = %q, want %q", body, tc.wantBody)
				}
				if tc.wantErr == nil && used != len(tc.in) {
					t.Errorf("consumed %d, want %d", used, len(tc.in))
				}
			})
		}
	}
}

func TestChunkedPipelined(t *testing.T) {
	var d ChunkedDecoder
	d.Reset(DefaultLimits)
	in := []byte("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n")
	out := make([]byte, 16)
	c, p, done, err := d.Decode(in, out)
	if err != nil || !done || string(out[:p]) != "abc" || string(in[c:]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("Decode = %d, %d, %v, %v", c, p, done, err)
	}
}

func TestChunkedZeroAlloc(t *testing.T) {
	in := []byte("5;x=y\r\nhello\r\n0\r\nX: y\r\n\r\n")
	out := make([]byte, 64)
	var d ChunkedDecoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(DefaultLimits)
		_, _, _, _ = d.Decode(in, out)
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times", allocs)
	}
}
