package origin_test

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// A client that sends Expect: 100-continue and resets: the edge's write of
// 100 Continue fails, gnet closes the connection inside Serve, and respond
// runs on cc.c == nil.
func TestRegressionExpectContinueReset(t *testing.T) {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {})
	e := startEdgeOneLoop(t, 0, fast(), hostport(o))
	req := []byte("POST / HTTP/1.1\r\nHost: site.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		tc.SetLinger(0)
		tc.Write(req)
		tc.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if got := rawGet(e.addr, "/alive", 2*time.Second); got != "200 " {
		t.Logf("after resets: %q", got)
	}
}
