package pipeline

import (
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rampart-edge/rampart/flowtable"
)

// memConn is a gnet.Conn over memory: the runner's request path without
// sockets, so that allocations and cost of one request through the stages
// can be measured alone.
type memConn struct {
	gnet.Conn // methods the runner does not use panic
	in        []byte
	out       []byte
	ctx       any
	remote    net.Addr
	local     net.Addr
}

func (m *memConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(m.in) {
		n = len(m.in)
	}
	return m.in[:n], nil
}

func (m *memConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(m.in) {
		n = len(m.in)
	}
	m.in = m.in[n:]
	return n, nil
}

func (m *memConn) Write(p []byte) (int, error) { m.out = append(m.out, p...); return len(p), nil }
func (m *memConn) OutboundBuffered() int       { return 0 }
func (m *memConn) Fd() int                     { return -1 }
func (m *memConn) Context() any                { return m.ctx }
func (m *memConn) SetContext(c any)            { m.ctx = c }
func (m *memConn) RemoteAddr() net.Addr        { return m.remote }
func (m *memConn) LocalAddr() net.Addr         { return m.local }

func memEngine(tb testing.TB, withTables bool, stages ...Stage) (*loop, *memConn) {
	cfg := DefaultConfig()
	cfg.Listeners = []string{"127.0.0.1:8080"}
	cfg.Loops = 1
	opts := Options{Config: cfg, Stages: stages}
	if withTables {
		flows, err := flowtable.NewFlows(1 << 12)
		if err != nil {
			tb.Fatal(err)
		}
		visitors, err := flowtable.NewVisitors(1 << 12)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { flows.Close(); visitors.Close() })
		opts.Flows, opts.Visitors = flows, visitors
	}
	e, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	l := &loop{e: e, wheel: newWheel(4096, cfg.Tick, now), now: now, scratch: make([]byte, 0, 4<<10)}
	l.conns.init()
	mc := &memConn{
		remote: &net.TCPAddr{IP: net.IPv4(198, 18, 0, 9), Port: 40000},
		local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		out:    make([]byte, 0, 64<<10),
	}
	if a := l.accept(mc); a != gnet.None {
		tb.Fatalf("accept: %v", a)
	}
	return l, mc
}

var benchRequest = []byte("GET /products/42?color=blue HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n")

func TestRequestThroughStagesAllocatesNothing(t *testing.T) {
	for _, tables := range []bool{false, true} {
		_, mc := memEngine(t, tables, &helloStage{body: []byte("hello\n")})
		cc := mc.ctx.(*clientConn)
		allocs := testing.AllocsPerRun(1000, func() {
			mc.in = benchRequest
			mc.out = mc.out[:0]
			if cc.onTraffic() != gnet.None || len(mc.out) == 0 {
				t.Fatal("request not answered")
			}
		})
		if allocs != 0 {
			t.Fatalf("tables=%v: %v allocations per request", tables, allocs)
		}
	}
}

func BenchmarkRequestThroughStages(b *testing.B) {
	for _, tc := range []struct {
		name   string
		tables bool
	}{{"no_tables", false}, {"flow_and_visitor_tables", true}} {
		b.Run(tc.name, func(b *testing.B) {
			_, mc := memEngine(b, tc.tables, &helloStage{body: []byte("hello\n")})
			cc := mc.ctx.(*clientConn)
			b.ReportAllocs()
			b.SetBytes(int64(len(benchRequest)))
			for b.Loop() {
				mc.in = benchRequest
				mc.out = mc.out[:0]
				cc.onTraffic()
			}
		})
	}
}
