package origin_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two pooled origin connections are reset while a GET is in the same epoll
// batch: both writes fail synchronously inside attach.
func TestRegressionPooledResetSyncWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []*net.TCPConn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c.(*net.TCPConn))
			mu.Unlock()
			go func() {
				r := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					if strings.HasPrefix(req.URL.Path, "/warm") {
						time.Sleep(100 * time.Millisecond)
					}
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				}
			}()
		}
	}()
	for round := 0; round < 6; round++ {
		e := startEdgeOneLoop(t, 0, fast(), ln.Addr().String())
		mu.Lock()
		conns = nil
		mu.Unlock()
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); rawGet(e.addr, "/warm", 2*time.Second) }()
		}
		wg.Wait()
		time.Sleep(20 * time.Millisecond)
		busy, _ := net.Dial("tcp", e.addr)
		target, _ := net.Dial("tcp", e.addr)
		var batch strings.Builder
		for batch.Len() < 256<<10 {
			batch.WriteString("GET / HTTP/1.1\r\nHost: nobody.example\r\n\r\n")
		}
		go func() { busy.Write([]byte(batch.String())) }()
		time.Sleep(300 * time.Microsecond)
		fmt.Fprintf(target, "GET /x HTTP/1.1\r\nHost: site.example\r\n\r\n")
		mu.Lock()
		for _, c := range conns {
			c.SetLinger(0)
			c.Close()
		}
		mu.Unlock()
		target.SetDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(target), nil)
		if err != nil {
			t.Logf("round %d: %v", round, err)
		} else {
			t.Logf("round %d: %d", round, resp.StatusCode)
		}
		busy.Close()
		target.Close()
	}
}
