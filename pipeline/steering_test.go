package pipeline

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/pipeline/steer"
)

// loopStage answers with the index of the loop that ran the exchange.
type loopStage struct{}

func (loopStage) Name() string { return "loop" }

func (loopStage) Serve(x *Exchange) Action {
	x.Status, x.Body = 200, strconv.AppendInt(nil, int64(x.Loop().Index()), 10)
	return Respond
}

// TestSteeringPicksLoopOfReceivingCPU connects from a thread pinned to each
// CPU in turn: on loopback the SYN is processed on the sender's CPU, so
// with steering every connection must be served by that CPU's loop.
func TestSteeringPicksLoopOfReceivingCPU(t *testing.T) {
	cpus := runtime.NumCPU()
	if cpus < 2 {
		t.Skip("steering needs at least 2 CPUs")
	}
	cfg := testConfig(t)
	cfg.Loops = cpus
	cfg.Steering = "cpu"
	startEngine(t, cfg, loopStage{})
	const perCPU = 25
	for cpu := 0; cpu < cpus; cpu++ {
		got := make([]int, 0, perCPU)
		var err error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The thread stays pinned: it exits with the goroutine still
			// locked, so the runtime never reuses it.
			runtime.LockOSThread()
			if err = steer.PinThread(cpu); err != nil {
				return
			}
			for i := 0; i < perCPU; i++ {
				var idx int
				idx, err = loopOfNewConnection(cfg.Listeners[0])
				if err != nil {
					return
				}
				got = append(got, idx)
			}
		}()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, idx := range got {
			if idx != cpu {
				t.Fatalf("connections from CPU %d landed on loops %v", cpu, got)
			}
		}
	}
}

func loopOfNewConnection(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// parkStage parks every exchange and answers it after a delay, from the
// loop, as an origin would.
type parkStage struct{ delay time.Duration }

func (parkStage) Name() string { return "park" }

func (p parkStage) Serve(x *Exchange) Action {
	l := x.Loop().(*loop)
	time.AfterFunc(p.delay, func() {
		l.el.Execute(context.Background(), runnable(func() {
			x.Client().Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate"))
			x.Finish(true)
		}))
	})
	return Park
}

type runnable func()

func (r runnable) Run(context.Context) error { r(); return nil }

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	cfg := testConfig(t)
	e, err := New(Options{Config: cfg, Stages: []Stage{parkStage{delay: 400 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	// One idle keep-alive connection and one with a request in flight.
	idle, err := net.Dial("tcp", cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	busy.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	for e.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- e.Shutdown(context.Background()) }()

	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "late" {
		t.Fatalf("in-flight response %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	idle.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection not closed: %v", err)
	}
	if _, err := net.DialTimeout("tcp", cfg.Listeners[0], time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
