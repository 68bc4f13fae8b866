package http1

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// decodeAll runs d over in the way an event loop would: the input arrives
// step bytes at a time into a buffer that keeps unconsumed bytes, and out
// holds at most outCap bytes per call.
func decodeAll(l Limits, in string, step, outCap int) (body string, used int, err error) {
	body, used, _, err = runChunked(l, in, step, outCap, false)
	return body, used, err
}

// runChunked is decodeAll, or with scan the same loop over Scan, which
// returns no body. trailers is the trailer section Trailers locates in the
// last input once done.
func runChunked(l Limits, in string, step, outCap int, scan bool) (body string, used int, trailers string, err error) {
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
		var c, p int
		var done bool
		if scan {
			c, done, err = d.Scan(buf)
		} else {
			c, p, done, err = d.Decode(buf, out)
		}
		got = append(got, out[:p]...)
		if done {
			start, end := d.Trailers()
			if start > end || end+2 != c || string(buf[end:c]) != "\r\n" {
				return string(got), used + c, "", fmt.Errorf("Trailers() = %d, %d with consumed %d of %q", start, end, c, buf)
			}
			trailers = string(buf[start:end])
		}
		buf = buf[c:]
		used += c
		if err != nil || done {
			return string(got), used, trailers, err
		}
		if c == 0 && p == 0 && fed == len(in) {
			return string(got), used, "", ErrIncomplete
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
		{name: "largest accepted size", in: "0fffffffffffffff\r\n", wantErr: ErrIncomplete},
		{name: "sign bit", in: "8000000000000000\r\n", wantErr: errChunkTooLarge},
		{name: "all ones", in: "ffffffffffffffff\r\nx\r\n0\r\n\r\n", wantErr: errChunkTooLarge},
		{name: "more than 16 digits", in: "00000000000000000fffffffffffffff\r\n", wantErr: errChunkTooLarge},
		{name: "17 zero digits", in: "00000000000000000\r\n\r\n", wantErr: errChunkTooLarge},
		{name: "16 digits", in: "0000000000000005\r\nhello\r\n0\r\n\r\n", wantBody: "hello"},
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
				// Scan agrees byte for byte: what it forwards is what
				// Decode consumes, and it fails where Decode does.
				_, scanUsed, _, scanErr := runChunked(l, tc.in, feed.step, 0, true)
				if scanErr != err || scanUsed != used {
					t.Errorf("Scan consumed %d, %v; Decode %d, %v", scanUsed, scanErr, used, err)
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

func TestChunkedTrailers(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "none", in: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "one", in: "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", want: "X-Sum: 1\r\n"},
		{name: "two with extension", in: "0;x=y\r\nA: 1\r\nB:\t2 \r\n\r\n", want: "A: 1\r\nB:\t2 \r\n"},
	}
	for _, tc := range tests {
		for _, scan := range []bool{false, true} {
			for _, step := range []int{1, 3, 1 << 20} {
				t.Run(fmt.Sprintf("%s/scan=%v/step=%d", tc.name, scan, step), func(t *testing.T) {
					_, used, trailers, err := runChunked(DefaultLimits, tc.in, step, 64, scan)
					if err != nil || used != len(tc.in) || trailers != tc.want {
						t.Fatalf("used %d, trailers %q, %v; want %d, %q", used, trailers, err, len(tc.in), tc.want)
					}
				})
			}
		}
	}
}

// TestChunkedScanHoldsTrailers checks that trailer lines are not consumed,
// so not forwarded, until the whole section has been checked: a forbidden
// trailer after good ones must not leave the good ones already sent.
func TestChunkedScanHoldsTrailers(t *testing.T) {
	var d ChunkedDecoder
	d.Reset(DefaultLimits)
	in := []byte("3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n")
	c, done, err := d.Scan(in)
	if err != nil || done || string(in[:c]) != "3\r\nabc\r\n0\r\n" {
		t.Fatalf("Scan = %d (%q), %v, %v", c, in[:c], done, err)
	}
	in = append(in[c:], "Content-Length: 5\r\n\r\n"...)
	c, done, err = d.Scan(in)
	if err != errForbiddenTrailer || done || c != 0 {
		t.Fatalf("Scan = %d, %v, %v; want 0, false, %v", c, done, err, errForbiddenTrailer)
	}
}

func TestChunkedScanPipelined(t *testing.T) {
	var d ChunkedDecoder
	d.Reset(DefaultLimits)
	in := []byte("3;e\r\nabc\r\n0\r\nX: 1\r\n\r\nGET / HTTP/1.1\r\n")
	c, done, err := d.Scan(in)
	if err != nil || !done || string(in[c:]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("Scan = %d, %v, %v", c, done, err)
	}
	if s, e := d.Trailers(); string(in[s:e]) != "X: 1\r\n" {
		t.Fatalf("Trailers = %q", in[s:e])
	}
	// Done stays done, consuming nothing more.
	if c, done, err := d.Scan(in[c:]); c != 0 || !done || err != nil {
		t.Fatalf("Scan after done = %d, %v, %v", c, done, err)
	}
}

func TestChunkedScanZeroAlloc(t *testing.T) {
	in := []byte("5;x=y\r\nhello\r\n0\r\nX: y\r\n\r\n")
	var d ChunkedDecoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(DefaultLimits)
		_, _, _ = d.Scan(in)
		_, _ = d.Trailers()
	})
	if allocs != 0 {
		t.Errorf("Scan allocates %v times", allocs)
	}
}

// chunkedBody is a 16 KiB body in 1 KiB chunks with one trailer.
func chunkedBody() []byte {
	var enc bytes.Buffer
	for range 16 {
		enc.WriteString("400\r\n")
		enc.Write(bytes.Repeat([]byte{'x'}, 0x400))
		enc.WriteString("\r\n")
	}
	enc.WriteString("0\r\nX-Sum: 1\r\n\r\n")
	return enc.Bytes()
}

// BenchmarkChunkedScan compares checking a body for verbatim forwarding
// with decoding it (the copy Scan saves).
func BenchmarkChunkedScan(b *testing.B) {
	in := chunkedBody()
	b.Run("baseline-decode", func(b *testing.B) {
		out := make([]byte, 16<<10)
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		var d ChunkedDecoder
		for b.Loop() {
			d.Reset(DefaultLimits)
			if _, _, done, err := d.Decode(in, out); !done || err != nil {
				b.Fatal(done, err)
			}
		}
	})
	b.Run("rampart-scan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		var d ChunkedDecoder
		for b.Loop() {
			d.Reset(DefaultLimits)
			if _, done, err := d.Scan(in); !done || err != nil {
				b.Fatal(done, err)
			}
		}
	})
}
