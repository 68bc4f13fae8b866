package origin_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// BenchmarkProxyLargeDownload streams a 16 MiB response through the edge
// to a client that reads as fast as it can: the pipeline's backpressure
// (pause the origin while the client is over its buffer limit, resume
// when it drained) must not cap the transfer rate.
func BenchmarkProxyLargeDownload(b *testing.B) {
	const size = 16 << 20
	chunk := bytes.Repeat([]byte("d"), 256<<10)
	o := originServer(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for i := 0; i < size/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	e := startEdge(b, fast(), hostport(o))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 256<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: site.example\r\n\r\n")); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
			b.Fatalf("read %d of %d: %v", n, size, err)
		}
	}
}
