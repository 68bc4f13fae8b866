package origin_test

import (
	"bytes"

	"github.com/rampart-edge/rampart/pipeline"
	"net"
	"runtime"
	"testing"
	"time"
)

// rawOrigin answers every request on a connection with the same bytes,
// reading into one buffer: it allocates nothing per request itself.
func rawOrigin(t *testing.T, response []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				var pending []byte
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					pending = append(pending[:0], buf[:n]...)
					for bytes.Contains(pending, []byte("\r\n\r\n")) {
						i := bytes.Index(pending, []byte("\r\n\r\n"))
						pending = pending[:copy(pending, pending[i+4:])]
						if _, err := c.Write(response); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProxyAllocatesNothingPerRequest sends keep-alive requests through
// the identity and origin stages over real sockets, with clients and an
// origin that reuse their buffers, and counts the process's allocations:
// one client at a time, and four at once over pipelined origin
// connections.
func TestProxyAllocatesNothingPerRequest(t *testing.T) {
	t.Run("one client", func(t *testing.T) { measureProxyAllocs(t, 1, 1) })
	t.Run("pipelined", func(t *testing.T) { measureProxyAllocs(t, 8, 4) })
}

func measureProxyAllocs(t *testing.T, depth, clients int) {
	body := bytes.Repeat([]byte("b"), 1024)
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n"), body...)
	// A 1 s tick keeps the loops' timer ticks (each reaches its loop
	// through gnet's Execute, which allocates a closure and a queue node)
	// out of the count.
	settings := fast()
	settings.ResponseTimeout = 10 * time.Second // a loaded CI machine is not a slow origin
	settings.PipelineDepth = depth
	e := startEdgeWith(t, func(c *pipeline.Config) { c.Tick = time.Second }, settings, rawOrigin(t, resp))
	req := []byte("GET /item?id=7 HTTP/1.1\r\nHost: site.example\r\nUser-Agent: alloc-test\r\nAccept: */*\r\n\r\n")
	// Each client runs rounds of round trips on its own goroutine, made
	// before the count starts; channels start and end each round.
	start := make(chan int)
	done := make(chan error)
	for range clients {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		buf := make([]byte, 64<<10)
		go func() {
			for n := range start {
				var err error
				for i := 0; i < n && err == nil; i++ {
					if _, err = c.Write(req); err != nil {
						break
					}
					got := 0
					for got < 1024 || !bytes.HasSuffix(buf[:got], body[:64]) {
						var k int
						if k, err = c.Read(buf[got:]); err != nil {
							break
						}
						got += k
					}
				}
				done <- err
			}
		}()
	}
	defer close(start)
	round := func(each int) {
		for range clients {
			start <- each
		}
		for range clients {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	round(2000 / clients) // warm the pools, buffers and tables
	n := 5000 / clients * clients
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	began := time.Now()
	round(n / clients)
	elapsed := time.Since(began)
	runtime.ReadMemStats(&after)
	allocs := after.Mallocs - before.Mallocs
	// One allocation per request would be 5000; the few seen come from
	// ticks and the runtime, not from requests.
	allowed := uint64(n / 100)
	t.Logf("%d allocations for %d proxied requests from %d clients in %v", allocs, n, clients, elapsed)
	if allocs > allowed {
		t.Fatalf("%d allocations for %d proxied requests (%.3f each), want none per request", allocs, n, float64(allocs)/float64(n))
	}
}
