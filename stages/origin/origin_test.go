package origin_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/identity"
	"github.com/rampart-edge/rampart/stages/origin"
	"github.com/rampart-edge/rampart/stages/zone"
)

// edge is a pipeline with the identity and origin stages in front of the
// given origins, on loopback.
type edge struct {
	addr   string
	engine *pipeline.Engine
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startEdge(t testing.TB, settings zone.Settings, origins ...string) *edge {
	return startEdgeWith(t, nil, settings, origins...)
}

func startEdgeWith(t testing.TB, configure func(*pipeline.Config), settings zone.Settings, origins ...string) *edge {
	t.Helper()
	zc := zone.Config{Zones: []zone.Spec{{Name: "site", Hosts: []string{"site.example"}, Origins: origins, Settings: settings}}}
	table, err := zone.NewTable(zc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.DefaultConfig()
	cfg.Listeners = []string{freePort(t)}
	cfg.Loops = 2
	cfg.ShutdownTimeout = 3 * time.Second
	cfg.MaxBufferedBytes = 64 << 10
	if configure != nil {
		configure(&cfg)
	}
	org, err := origin.New(origin.Options{Loops: 2, Limits: cfg.Limits()})
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &edge{addr: cfg.Listeners[0], engine: e}
}

func originServer(t testing.TB, h http.HandlerFunc, configure ...func(*http.Server)) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	for _, c := range configure {
		c(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func hostport(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func fast() zone.Settings {
	return zone.Settings{ConnectTimeout: 500 * time.Millisecond, ResponseTimeout: 700 * time.Millisecond}
}

func do(t *testing.T, c *http.Client, method, url string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "site.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, b
}

func TestProxyKeepAliveBodiesAndHeaders(t *testing.T) {
	var conns atomic.Int32
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
			w.Header().Set("X-Seen-Via", r.Header.Get("Via"))
			w.Header().Set("X-Seen-TE", fmt.Sprint(r.TransferEncoding))
			w.Header().Set("X-Seen-Conn", r.Header.Get("Connection")+r.Header.Get("X-Hop"))
			w.Write(b)
		case "/chunked":
			f := w.(http.Flusher)
			for i := 0; i < 5; i++ {
				fmt.Fprintf(w, "part %d\n", i)
				f.Flush()
			}
		case "/big":
			w.Write(big)
		default:
			w.Write([]byte("hello"))
		}
	}, func(srv *http.Server) {
		srv.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	})
	e := startEdge(t, fast(), hostport(o))
	c := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + e.addr

	for i := 0; i < 50; i++ {
		resp, b := do(t, c, "GET", base+"/", nil)
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Fatalf("GET: %d %q", resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("50 sequential requests opened %d origin connections; keep-alive pooling should need 1 per loop", n)
	}

	// A Content-Length body and the forwarding headers.
	req, _ := http.NewRequest("POST", base+"/echo", strings.NewReader("ping body"))
	req.Host = "site.example"
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ping body" {
		t.Fatalf("echo: %q", b)
	}
	if got := resp.Header.Get("X-Seen-XFF"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For at origin %q", got)
	}
	if got := resp.Header.Get("X-Seen-Via"); !strings.Contains(got, "rampart") {
		t.Errorf("Via at origin %q", got)
	}
	if got := resp.Header.Get("X-Seen-Conn"); got != "" {
		t.Errorf("hop-by-hop fields reached the origin: %q", got)
	}
	if !strings.Contains(resp.Header.Get("Via"), "rampart") {
		t.Errorf("response Via %q", resp.Header.Get("Via"))
	}

	// A chunked request body (unknown length) is forwarded chunked.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 4; i++ {
			fmt.Fprintf(pw, "chunk%d;", i)
		}
		pw.Close()
	}()
	resp, b = do(t, c, "POST", base+"/echo", pr)
	if string(b) != "chunk0;chunk1;chunk2;chunk3;" || resp.Header.Get("X-Seen-TE") != "[chunked]" {
		t.Fatalf("chunked upload: %q TE %s", b, resp.Header.Get("X-Seen-TE"))
	}

	// A chunked response.
	resp, b = do(t, c, "GET", base+"/chunked", nil)
	if string(b) != "part 0\npart 1\npart 2\npart 3\npart 4\n" {
		t.Fatalf("chunked response: %q", b)
	}

	// A large body each way.
	resp, b = do(t, c, "GET", base+"/big", nil)
	if !bytes.Equal(b, big) {
		t.Fatalf("big response: %d bytes, want %d", len(b), len(big))
	}
	resp, b = do(t, c, "POST", base+"/echo", bytes.NewReader(big))
	if sha256.Sum256(b) != sha256.Sum256(big) {
		t.Fatalf("big upload echoed %d bytes", len(b))
	}

	// HEAD has no body even with a Content-Length.
	resp, b = do(t, c, "HEAD", base+"/big", nil)
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("HEAD: %d, %d body bytes", resp.StatusCode, len(b))
	}
}

func TestProxyPipelinedAndHTTP10(t *testing.T) {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, r.URL.Path)
	})
	e := startEdge(t, fast(), hostport(o))
	conn, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var reqs strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&reqs, "GET /p%d HTTP/1.1\r\nHost: site.example\r\n\r\n", i)
	}
	conn.Write([]byte(reqs.String()))
	r := bufio.NewReader(conn)
	for i := 0; i < 10; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "/p"+strconv.Itoa(i) {
			t.Fatalf("pipelined response %d: %q", i, b)
		}
	}

	// An HTTP/1.0 client gets a chunked origin response decoded, ended by close.
	c2, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	c2.Write([]byte("GET /chunked HTTP/1.0\r\nHost: site.example\r\n\r\n"))
	all, _ := io.ReadAll(c2)
	if !bytes.HasSuffix(all, []byte("\r\n\r\n/chunked")) || bytes.Contains(all, []byte("chunked\r\n")) {
		t.Fatalf("HTTP/1.0 response:\n%s", all)
	}
}

func TestProxyUnknownHostAndSmuggling(t *testing.T) {
	var hits atomic.Int32
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	e := startEdge(t, fast(), hostport(o))
	for _, tc := range []struct{ req, status string }{
		{"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n", "421"},
		{"POST / HTTP/1.1\r\nHost: site.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: site.example\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", "400"},
		{"POST / HTTP/1.1\r\nHost: site.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: site.example\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: site.example\r\nX: a\r\n  folded\r\n\r\n", "400"},
	} {
		conn, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte(tc.req))
		all, _ := io.ReadAll(conn)
		conn.Close()
		if !bytes.HasPrefix(all, []byte("HTTP/1.1 "+tc.status)) {
			t.Errorf("%q: got %q", tc.req, all)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d rejected requests reached the origin", n)
	}
}

func TestProxyOriginFailures(t *testing.T) {
	down := freePort(t) // nothing listens there
	slow := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	good := originServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	c := &http.Client{Timeout: 10 * time.Second}

	t.Run("down gives 502", func(t *testing.T) {
		e := startEdge(t, fast(), down)
		resp, _ := do(t, c, "GET", "http://"+e.addr+"/", nil)
		if resp.StatusCode != 502 {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	})
	t.Run("slow gives 504", func(t *testing.T) {
		e := startEdge(t, fast(), hostport(slow))
		start := time.Now()
		resp, _ := do(t, c, "GET", "http://"+e.addr+"/", nil)
		if resp.StatusCode != 504 {
			t.Fatalf("status %d, want 504", resp.StatusCode)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("504 after %v", d)
		}
	})
	t.Run("failover to the next origin", func(t *testing.T) {
		e := startEdge(t, fast(), down, hostport(good))
		for i := 0; i < 6; i++ {
			resp, b := do(t, c, "GET", "http://"+e.addr+"/", nil)
			if resp.StatusCode != 200 || string(b) != "good" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
			}
		}
	})
}

func TestProxyRetriesStalePooledConnection(t *testing.T) {
	// The origin closes every connection after one response without
	// saying so: the pooled connection is dead when the next GET uses it.
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				if _, err := http.ReadRequest(r); err != nil {
					return
				}
				n.Add(1)
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(50 * time.Millisecond)
			}()
		}
	}()
	e := startEdge(t, fast(), ln.Addr().String())
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for i := 0; i < 3; i++ {
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: site.example\r\n\r\n"))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		time.Sleep(150 * time.Millisecond) // the origin has closed by now
	}
}

func TestProxySlowClientBackpressure(t *testing.T) {
	const total = 32 << 20
	var written atomic.Int64
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(total))
		for i := 0; i < total/len(chunk); i++ {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	e := startEdge(t, fast(), hostport(o))
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: site.example\r\n\r\n"))
	time.Sleep(time.Second) // the client reads nothing meanwhile
	// Without backpressure the edge would have drained the whole 32 MiB
	// from the origin into its own memory by now; with it, the origin is
	// stuck after the socket buffers and the edge's bounded queue.
	stuck := written.Load()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != total {
		t.Fatalf("read %d of %d bytes: %v", got, total, err)
	}
	if stuck > 16<<20 {
		t.Fatalf("origin wrote %d MiB while the client read nothing", stuck>>20)
	}
	t.Logf("origin wrote %d KiB before the edge stopped reading", stuck>>10)
}

func TestProxyExpectContinueAndTrailers(t *testing.T) {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body with a trailer")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Checksum", "abc123")
		default:
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}
	})
	e := startEdge(t, fast(), hostport(o))

	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("POST /echo HTTP/1.1\r\nHost: site.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q: %v", line, err)
	}
	if blank, _ := r.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("interim response not ended: %q", blank)
	}
	conn.Write([]byte("hello"))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("after 100-continue: %d %q", resp.StatusCode, b)
	}

	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+e.addr+"/trailers", nil)
	req.Host = "site.example"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body with a trailer" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Fatalf("trailers: body %q trailer %v", b, resp.Trailer)
	}
}

func TestProxyPoolLimitQueuesRequests(t *testing.T) {
	var active, peak atomic.Int32
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "done")
	})
	settings := fast()
	settings.ResponseTimeout = 5 * time.Second
	settings.MaxConnsPerOrigin = 1
	settings.MaxIdlePerOrigin = 1
	e := startEdgeWith(t, func(c *pipeline.Config) { c.Loops = 1 }, settings, hostport(o))
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			c := &http.Client{Timeout: 10 * time.Second}
			req, _ := http.NewRequest("GET", "http://"+e.addr+"/", nil)
			req.Host = "site.example"
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "done" {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, b)
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 1 {
		t.Fatalf("origin saw %d concurrent requests with max_conns_per_origin=1", p)
	}
}

// TestEarlyResponseSurvivesUnreadUpload: the edge refuses a request whose
// body it will not read (unknown host) while the client is still
// uploading; closing at once would reset the connection and could destroy
// the response. The client must read the whole 421.
func TestEarlyResponseSurvivesUnreadUpload(t *testing.T) {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {})
	e := startEdge(t, fast(), hostport(o))
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		const size = 4 << 20
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: elsewhere.example\r\nContent-Length: %d\r\n\r\n", size)
		go func() {
			chunk := bytes.Repeat([]byte("u"), 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("attempt %d: response lost: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil || resp.StatusCode != 421 || len(b) == 0 {
			t.Fatalf("attempt %d: %d %q %v", i, resp.StatusCode, b, err)
		}
	}
}
