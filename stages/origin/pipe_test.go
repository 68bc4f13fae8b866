package origin_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/stages/zone"
)

// pipeOrigin is an HTTP/1.1 origin written for pipelining tests: it reads
// requests one after another on each connection and answers each with
// its path as the body, but answer decides, by the request's index on its
// connection, whether to answer normally, answer with "Connection: close"
// and close, or close without answering.
type pipeOrigin struct {
	addr     string
	conns    atomic.Int64
	requests atomic.Int64
	batched  atomic.Int64 // requests already buffered when the one before was answered
}

type rawAnswer int

const (
	answerKeepAlive rawAnswer = iota
	answerThenClose
	closeSilently
)

func startPipeOrigin(t *testing.T, answer func(index int) rawAnswer) *pipeOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &pipeOrigin{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			wg.Go(func() { o.serve(c, answer) })
		}
	})
	return o
}

func (o *pipeOrigin) serve(c net.Conn, answer func(int) rawAnswer) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		o.requests.Add(1)
		if r.Buffered() > 0 {
			o.batched.Add(1)
		}
		a := answer(i)
		if a == closeSilently {
			return
		}
		conn := ""
		if a == answerThenClose {
			conn = "Connection: close\r\n"
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", len(req.URL.Path), conn, req.URL.Path)
		if a == answerThenClose {
			return
		}
	}
}

func pipelined(depth int) zone.Settings {
	s := fast()
	s.ResponseTimeout = 5 * time.Second
	s.PipelineDepth = depth
	return s
}

// getMany runs clients concurrent keep-alive clients doing each GETs with
// paths of their own, and returns each path's status and body mismatch.
func getMany(t *testing.T, addr string, clients, each int) (ok, failed int, wrong []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(conn)
			for i := range each {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: site.example\r\n\r\n", path)
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Errorf("client %d request %d: %v", c, i, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				mu.Lock()
				switch {
				case resp.StatusCode == 200 && string(body) == path:
					ok++
				case resp.StatusCode == 200:
					wrong = append(wrong, fmt.Sprintf("%s got %q", path, body))
				default:
					failed++
				}
				mu.Unlock()
				if resp.Close {
					return
				}
			}
		})
	}
	wg.Wait()
	return ok, failed, wrong
}

func TestPipelineSharesConnectionsInOrder(t *testing.T) {
	o := startPipeOrigin(t, func(int) rawAnswer { return answerKeepAlive })
	e := startEdgeOneLoop(t, 0, pipelined(8), o.addr)
	ok, failed, wrong := getMany(t, e.addr, 32, 50)
	if len(wrong) > 0 || failed > 0 || ok != 32*50 {
		t.Fatalf("%d right, %d failed, wrong: %v", ok, failed, wrong)
	}
	// 32 clients at once need 4 connections of depth 8; a few more may
	// open while the first ones fill.
	if n := o.conns.Load(); n > 8 {
		t.Errorf("origin saw %d connections for 32 clients at depth 8", n)
	}
	if o.batched.Load() == 0 {
		t.Error("no request arrived behind another: nothing was pipelined")
	}
	t.Logf("%d connections, %d of %d requests arrived behind another", o.conns.Load(), o.batched.Load(), o.requests.Load())
}

func TestPipelineDepthOneSendsOneAtATime(t *testing.T) {
	o := startPipeOrigin(t, func(int) rawAnswer { return answerKeepAlive })
	e := startEdgeOneLoop(t, 0, pipelined(1), o.addr)
	ok, failed, wrong := getMany(t, e.addr, 16, 20)
	if len(wrong) > 0 || failed > 0 || ok != 16*20 {
		t.Fatalf("%d right, %d failed, wrong: %v", ok, failed, wrong)
	}
	if n := o.batched.Load(); n != 0 {
		t.Fatalf("%d requests arrived behind another with pipeline_depth 1", n)
	}
}

// An origin that says "Connection: close" on every third response: the
// requests written behind it are sent again elsewhere, and every client
// still gets its own answer.
func TestPipelineRequeuesAfterConnectionClose(t *testing.T) {
	o := startPipeOrigin(t, func(i int) rawAnswer {
		if i == 2 {
			return answerThenClose
		}
		return answerKeepAlive
	})
	e := startEdgeOneLoop(t, 0, pipelined(8), o.addr)
	ok, failed, wrong := getMany(t, e.addr, 16, 30)
	if len(wrong) > 0 || failed > 0 || ok != 16*30 {
		t.Fatalf("%d right, %d failed, wrong: %v", ok, failed, wrong)
	}
}

// An origin that drops every connection after its first answer, without
// warning: requests caught behind get another try, a 502 when that breaks
// too, and never another client's response.
func TestPipelineOriginDropsConnections(t *testing.T) {
	o := startPipeOrigin(t, func(i int) rawAnswer {
		if i >= 1 {
			return closeSilently
		}
		return answerKeepAlive
	})
	e := startEdgeOneLoop(t, 0, pipelined(8), o.addr)
	ok, failed, wrong := getMany(t, e.addr, 16, 10)
	if len(wrong) > 0 {
		t.Fatalf("responses for other requests: %v", wrong)
	}
	if ok == 0 || ok+failed != 16*10 {
		t.Fatalf("%d right, %d failed of %d", ok, failed, 16*10)
	}
	t.Logf("%d answered, %d failed with 502", ok, failed)
}

// Clients that leave while their requests wait behind others' take only
// their own requests with them.
func TestPipelineClientsLeaving(t *testing.T) {
	o := startPipeOrigin(t, func(int) rawAnswer { return answerKeepAlive })
	e := startEdgeOneLoop(t, 0, pipelined(8), o.addr)
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", e.addr, time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(conn, "GET /gone%d HTTP/1.1\r\nHost: site.example\r\n\r\n", c)
			conn.Close()
		})
	}
	ok, failed, wrong := getMany(t, e.addr, 16, 20)
	wg.Wait()
	if len(wrong) > 0 || failed > 0 || ok != 16*20 {
		t.Fatalf("%d right, %d failed, wrong: %v", ok, failed, wrong)
	}
	if got := strings.Count(fmt.Sprint(wrong), "gone"); got != 0 {
		t.Fatalf("a departed client's response reached another: %v", wrong)
	}
}

// An origin that answers, closes after answering or drops the connection
// at random, under many clients at several depths: whatever fails, no
// client ever gets a response meant for another.
func TestPipelineChaosNeverMixesResponses(t *testing.T) {
	for _, depth := range []int{2, 5, 16} {
		t.Run(fmt.Sprint("depth", depth), func(t *testing.T) {
			var n atomic.Uint64
			o := startPipeOrigin(t, func(i int) rawAnswer {
				x := n.Add(1) * 0x9e3779b97f4a7c15
				switch x >> 58 { // 0..63
				case 0, 1, 2:
					return answerThenClose
				case 3:
					return closeSilently
				}
				return answerKeepAlive
			})
			e := startEdgeOneLoop(t, 0, pipelined(depth), o.addr)
			ok, failed, wrong := getMany(t, e.addr, 24, 25)
			if len(wrong) > 0 {
				t.Fatalf("responses for other requests: %v", wrong)
			}
			if ok+failed != 24*25 || ok < 24*25/2 {
				t.Fatalf("%d right, %d failed of %d", ok, failed, 24*25)
			}
			t.Logf("%d right, %d failed (502)", ok, failed)
		})
	}
}
