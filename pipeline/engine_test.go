package pipeline

import (
	"bufio"
	"context"

	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

// helloStage answers every request itself.
type helloStage struct{ body []byte }

func (h *helloStage) Name() string { return "hello" }

func (h *helloStage) Serve(x *Exchange) Action {
	x.Status, x.Body = 200, h.body
	return Respond
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Listeners = []string{freePort(t)}
	c.Loops = 2
	c.HeaderTimeout = 300 * time.Millisecond
	c.IdleTimeout = 2 * time.Second
	c.ShutdownTimeout = 2 * time.Second
	return c
}

func startEngine(t *testing.T, cfg Config, stages ...Stage) *Engine {
	t.Helper()
	e, err := New(Options{Config: cfg, Stages: stages})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func TestEngineServesKeepAliveAndPipelined(t *testing.T) {
	cfg := testConfig(t)
	startEngine(t, cfg, &helloStage{body: []byte("hello\n")})
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := client.Get("http://" + cfg.Listeners[0] + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello\n" {
			t.Fatalf("got %d %q", resp.StatusCode, b)
		}
	}
	// Three pipelined requests in one write, answered in order.
	c, err := net.DialTimeout("tcp", cfg.Listeners[0], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("response %d: status %d", i, resp.StatusCode)
		}
		if i == 2 && !resp.Close {
			t.Fatalf("last response does not announce close")
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}
}

func TestEngineRejectsMalformedAndTimesOut(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBodyBytes = 1000
	startEngine(t, cfg, &helloStage{body: []byte("ok")})
	cases := []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"too long line", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 101) + "\r\n", 431},
		{"header section too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 33<<10) + "\r\n\r\n", 431},
		{"body over max_body_bytes", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413},
		{"non-numeric Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", cfg.Listeners[0], time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(tc.req))
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("connection left open: %v", err)
			}
		})
	}
	t.Run("header timeout", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", cfg.Listeners[0], time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("GET / HTTP/1.1\r\nHost:"))
		start := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 408 {
			t.Fatalf("status %d, want 408", resp.StatusCode)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("timeout took %v", d)
		}
	})
}

func TestEngineConnectionLimits(t *testing.T) {
	visitors, err := flowtable.NewVisitors(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	defer visitors.Close()
	flows, err := flowtable.NewFlows(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	defer flows.Close()
	cfg := testConfig(t)
	cfg.MaxConnsPerSource = 2
	e, err := New(Options{Config: cfg, Stages: []Stage{&helloStage{body: []byte("ok")}}, Flows: flows, Visitors: visitors})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())

	get := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		io.ReadAll(resp.Body)
		return nil
	}
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", cfg.Listeners[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatalf("connection %d within the limit: %v", i, err)
		}
		open = append(open, c)
	}
	third, err := net.Dial("tcp", cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if err := get(third); err == nil {
		t.Fatal("a third connection from one source was served past max_conns_per_source=2")
	}
	// The visitor and flow tables saw the two served connections.
	v, ok := visitors.Get(flowtable.NewVisitorKey(netip.MustParseAddr("127.0.0.1")))
	if !ok || v.Connections != 2 {
		t.Fatalf("visitor record %+v (found %v), want 2 connections", v, ok)
	}
	if flows.Len() != 2 {
		t.Fatalf("%d flows, want 2", flows.Len())
	}
	// Closing one frees a slot.
	open[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", cfg.Listeners[0])
		if err != nil {
			t.Fatal(err)
		}
		err = get(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("closing a connection did not free its source's slot")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEngineHTTP10KeepAlive(t *testing.T) {
	cfg := testConfig(t)
	startEngine(t, cfg, &helloStage{body: []byte("ok")})
	c, err := net.Dial("tcp", cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		c.Write([]byte("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		if resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("request %d: Connection %q, want keep-alive", i, resp.Header.Get("Connection"))
		}
	}
}
