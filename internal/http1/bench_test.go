package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// benchGET is a typical browser GET head (about 450 bytes, 9 fields).
const benchGET = "GET /static/app.js?v=1234 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://www.example.com/index.html\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: max-age=0\r\n" +
	"\r\n"

// BenchmarkParseGET compares Parse with net/http's ReadRequest on the same
// head; the ratio is the figure to watch.
func BenchmarkParseGET(b *testing.B) {
	in := []byte(benchGET)
	b.Run("baseline-net-http", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		rd := bytes.NewReader(in)
		br := bufio.NewReader(rd)
		for b.Loop() {
			rd.Reset(in)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rampart", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		p := testParser(b, DefaultLimits)
		r := NewRequest(DefaultLimits)
		for b.Loop() {
			if _, err := p.Parse(in, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkChunked(b *testing.B) {
	var enc bytes.Buffer
	for range 16 {
		enc.WriteString("400\r\n")
		enc.Write(bytes.Repeat([]byte{'x'}, 0x400))
		enc.WriteString("\r\n")
	}
	enc.WriteString("0\r\n\r\n")
	in := enc.Bytes()
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
}
