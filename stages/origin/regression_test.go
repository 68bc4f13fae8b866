package origin_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/identity"
	"github.com/rampart-edge/rampart/stages/origin"
	"github.com/rampart-edge/rampart/stages/zone"
)

func startEdgeOneLoop(t testing.TB, maxWaiting int, settings zone.Settings, origins ...string) *edge {
	t.Helper()
	zc := zone.Config{Zones: []zone.Spec{{Name: "site", Hosts: []string{"site.example"}, Origins: origins, Settings: settings}}}
	table, err := zone.NewTable(zc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.DefaultConfig()
	cfg.Listeners = []string{freePort(t)}
	cfg.Loops = 1
	cfg.ShutdownTimeout = 1 * time.Second
	cfg.MaxBufferedBytes = 64 << 10
	org, err := origin.New(origin.Options{Loops: 1, Limits: cfg.Limits(), MaxWaiting: maxWaiting})
	if err != nil {
		t.Fatal(err)
	}
	e, err := pipeline.New(pipeline.Options{Config: cfg, Stages: []pipeline.Stage{identity.New(table), org}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return &edge{addr: cfg.Listeners[0], engine: e}
}

// rawGet sends one GET on a fresh connection and returns status and body
// (or the error text).
func rawGet(addr, path string, timeout time.Duration) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: site.example\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "err: " + err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Sprintf("%d %q body err: %v", resp.StatusCode, b, err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

func pathOrigin(t *testing.T) string {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		if r.URL.Path == "/trunc" {
			hj := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
			time.Sleep(20 * time.Millisecond)
			c.Close()
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	return hostport(o)
}

// twoAtOnce sends /slow-d and /slow-e concurrently and checks each gets its own.
func twoAtOnce(t *testing.T, addr string) {
	var wg sync.WaitGroup
	got := make([]string, 2)
	for i, p := range []string{"/slow-d", "/slow-e"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = rawGet(addr, p, 3*time.Second)
		}()
		time.Sleep(30 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("d: %s | e: %s", got[0], got[1])
	if got[0] != "200 /slow-d" || got[1] != "200 /slow-e" {
		t.Errorf("cross-wired or lost: d=%q e=%q", got[0], got[1])
	}
}

// An aborted exchange (origin dies mid-body) puts its task on the free
// list twice.
func TestRegressionAbortDoublePut(t *testing.T) {
	s := fast()
	s.ResponseTimeout = 2 * time.Second
	e := startEdgeOneLoop(t, 0, s, pathOrigin(t))
	t.Logf("trunc: %s", rawGet(e.addr, "/trunc", 2*time.Second))
	twoAtOnce(t, e.addr)
}

// A synchronous failure inside Serve (503 waiters full) leaves the conn
// marked parked on a recycled task.
func TestRegressionSyncFailInServe(t *testing.T) {
	s := fast()
	s.ResponseTimeout = 2 * time.Second
	s.MaxConnsPerOrigin = 1
	s.MaxIdlePerOrigin = 1
	e := startEdgeOneLoop(t, 1, s, pathOrigin(t))
	var wg sync.WaitGroup
	res := make([]string, 3)
	for i, p := range []string{"/slow-a", "/slow-b", "/c"} {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = rawGet(e.addr, p, 3*time.Second) }()
		time.Sleep(30 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("a,b,c: %q", res)
	// A task released twice would now serve both of the next two
	// exchanges at once; MaxConns 1 makes e wait for d's connection.
	twoAtOnce(t, e.addr)
}

// A client that goes away while its request is at the origin leaks a pool slot.
func TestRegressionClientCloseLeaksPoolSlot(t *testing.T) {
	s := fast()
	s.MaxConnsPerOrigin = 1
	s.MaxIdlePerOrigin = 1
	e := startEdgeOneLoop(t, 0, s, pathOrigin(t))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /slow-x HTTP/1.1\r\nHost: site.example\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	time.Sleep(500 * time.Millisecond) // origin done long ago
	// A leaked slot (pool at its limit forever) would turn these into 502s.
	for i := 0; i < 2; i++ {
		if got := rawGet(e.addr, "/next", 3*time.Second); got != "200 /next" {
			t.Errorf("after a client left mid-request: %q", got)
		}
	}
}

// A large upload that arrives while its request waits for a connection
// pauses the client with no one to resume it.
func TestRegressionUploadPausedWhileWaiting(t *testing.T) {
	s := fast()
	s.ResponseTimeout = 2 * time.Second
	s.MaxConnsPerOrigin = 1
	s.MaxIdlePerOrigin = 1
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %d", r.URL.Path, n)
	})
	e := startEdgeOneLoop(t, 0, s, hostport(o))
	go rawGet(e.addr, "/slow-a", 3*time.Second)
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	body := bytes.Repeat([]byte("u"), 1<<20)
	go func() {
		fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: site.example\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body)
	}()
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("upload: %v after %v", err, time.Since(start))
	}
	b, _ := io.ReadAll(resp.Body)
	t.Logf("upload: %d %q after %v", resp.StatusCode, b, time.Since(start))
	if resp.StatusCode != 200 {
		t.Errorf("upload while waiting: %d %q", resp.StatusCode, b)
	}
}
